/**
 * What the daemon needs to run, independent of where it came from (the properties file in
 * production, a test in tests). sync/runtimeOptions.ts maps the validated config onto this.
 */
import { ProjectSelection } from "../catalog/select";
import { BackoffPolicy } from "../scheduler/backoff";
import { RepoId } from "../types";
import { PinnedKey } from "../upstream/hostKeys";

export type CatalogSource =
  | { kind: "rest"; baseUrl: string; token?: string; ca?: string }
  | { kind: "static"; repos: RepoId[] };

export interface DaemonSettings {
  home: string;
  upstream: { host: string; port: number; user: string; keyFile: string; pinned: PinnedKey[] };
  catalog: CatalogSource;
  projects: ProjectSelection;
  /** Full reconcile period (the safety net behind webhooks). */
  intervalMs: number;
  concurrency: number;
  /** Per-repository sync timeout. */
  timeoutMs: number;
  excludeRefs: string[];
  backoff: BackoffPolicy;
  purge: { enabled: boolean; protectPercent: number };
  maintenance: { repackIntervalMs: number; fsckIntervalMs: number };
  /** Ref scans in flight at once during a reconcile (spread over the pooled connections). */
  scanParallelism: number;
  /**
   * The reconcile's budget on the primary (scheduler/scanPlan.ts): average scans per second,
   * the longest an idle repository goes unchecked, and how recent a change makes it active.
   * Absent: every repository every round, unpaced.
   */
  scanBudget?: { maxPerSecond: number; idleBoundMs: number; activeWindowMs: number };
  /** SSH connections kept to the primary for scans. */
  scanConnections: number;
  /** A first clone receiving more than this continues in resumable steps (default 64 MiB). */
  firstCloneStepBytes?: number;
  /** Free space below which syncs that grow the disk pause (mirror.disk.minFreeMb); default 0 = only a full disk pauses them. */
  disk?: { minFreeBytes: number };
  /** Webhook-triggered catalog refreshes: at most one per this long (default DEFAULT_WEBHOOK_REFRESH_MIN_MS). */
  webhookRefreshMinMs?: number;
  /** Report each fetch's ref changes in the sync outcome (for the synced event); default off. */
  trackRefChanges?: boolean;
}

/** 100 webhooks for unknown repositories: one refresh now, one 30 s later. */
export const DEFAULT_WEBHOOK_REFRESH_MIN_MS = 30_000;

/**
 * Reconcile scans: cheap (one small exec per repository over pooled connections), so many in
 * flight, over few connections to stay well under the primary sshd's default MaxSessions=10
 * per connection (bench/reconcile.ts measures the alternatives).
 */
export const DEFAULT_SCAN = { parallelism: 16, connections: 2 } as const;

/** A repository whose refs moved within a day is "active": checked every reconcile round. */
export const DEFAULT_ACTIVE_WINDOW_MS = 24 * 3600_000;

/** First retry delay of a failing repository; mirror.sync.retryMax caps the growth. */
export const RETRY_BASE_MS = 2000;
