/**
 * The daemon's Prometheus metrics, in a Registry of their own (never prom-client's global one:
 * tests build many boards, and a library must not fight its host over global names).
 *
 * Labels are small fixed sets (outcome, kind, result, state), never repository keys: with
 * 10,000 repos a per-repo label would mean 10,000 series per metric. Per-repo detail is what
 * GET /status/repos is for.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { MirrorState, RepoStatus } from "../types";
import type { FailureKind } from "./failureKind";

/** What the scrape-time gauges read; the StatusBoard provides it. */
export interface MetricsSource {
  summary(): {
    state: MirrorState;
    byState: Record<RepoStatus["state"], number>;
    delayed: number;
    maxLagMs: number;
    primaryReachable: boolean | undefined;
    skippedRepos: number;
    disk?: { state: string; freeBytes: number; totalBytes: number };
  };
}

export type SyncOutcome = "changed" | "unchanged" | "failed";
export type WebhookResult = "accepted" | "ping" | "catalog" | "ignored" | "unauthorized" | "disabled" | "too_large" | "malformed" | "error";
export type ReconcileResult = "ok" | "error";

const MIRROR_STATES: readonly MirrorState[] = ["STARTING", "INITIAL_SYNC", "SYNCHRONIZED", "DEGRADED", "ERROR"];
const REPO_STATES: readonly RepoStatus["state"][] = ["new", "syncing", "synced", "failing"];

export const METRIC_NAMES = {
  syncDuration: "smart_mirror_sync_duration_seconds",
  syncFailures: "smart_mirror_sync_failures_total",
  repos: "smart_mirror_repos",
  reposDelayed: "smart_mirror_repos_delayed",
  syncLag: "smart_mirror_sync_lag_seconds",
  syncLagMax: "smart_mirror_sync_lag_max_seconds",
  fetchBytes: "smart_mirror_fetch_bytes_total",
  webhooks: "smart_mirror_webhooks_total",
  reconcileDuration: "smart_mirror_reconcile_duration_seconds",
  reconcileLastSuccess: "smart_mirror_reconcile_last_success_timestamp_seconds",
  scanNoticeBound: "smart_mirror_scan_notice_bound_seconds",
  scanRate: "smart_mirror_scan_rate_per_second",
  primaryUp: "smart_mirror_primary_up",
  state: "smart_mirror_state",
  reposSkipped: "smart_mirror_repos_skipped",
  diskFree: "smart_mirror_disk_free_bytes",
  diskSize: "smart_mirror_disk_size_bytes",
  diskLow: "smart_mirror_disk_low",
} as const;

/**
 * Set an unlabelled gauge, or leave it out of the exposition while the value is unknown.
 * prom-client's reset() puts an unlabelled gauge back to 0, not to nothing: a primary never
 * probed read as "down" (smart_mirror_primary_up 0) and an unmeasured disk as full (free 0).
 */
function setOrAbsent(g: Gauge<string>, v: number | undefined): void {
  g.reset();
  if (v === undefined) g.remove();
  else g.set(v);
}

export class MirrorMetrics {
  readonly registry = new Registry();
  private readonly syncDuration: Histogram<"outcome">;
  private readonly syncFailures: Counter<"kind">;
  private readonly syncLag: Histogram<string>;
  private readonly fetchBytes: Counter<string>;
  private readonly webhooks: Counter<"result">;
  private readonly reconcileDuration: Histogram<"result">;
  private readonly reconcileLastSuccess: Gauge<string>;
  private readonly scanNoticeBound: Gauge<string>;
  private readonly scanRate: Gauge<string>;

  constructor(source: MetricsSource, opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.syncDuration = new Histogram({
      name: METRIC_NAMES.syncDuration,
      help: "Duration of one repository sync (fetch from the primary), by outcome.",
      labelNames: ["outcome"],
      // From a no-op fingerprint check to a first clone of a large repository.
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
      registers,
    });
    this.syncFailures = new Counter({
      name: METRIC_NAMES.syncFailures,
      help: "Failed repository syncs, by kind of failure.",
      labelNames: ["kind"],
      registers,
    });
    this.syncLag = new Histogram({
      name: METRIC_NAMES.syncLag,
      help: "Time from a change first seen on the primary to the mirror having it (incremental syncs only).",
      buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 180, 600, 1800, 3600],
      registers,
    });
    this.fetchBytes = new Counter({
      name: METRIC_NAMES.fetchBytes,
      help: "Bytes received from the primary by syncs.",
      registers,
    });
    this.webhooks = new Counter({
      name: METRIC_NAMES.webhooks,
      help: "Webhook requests received, by result.",
      labelNames: ["result"],
      registers,
    });
    this.reconcileDuration = new Histogram({
      name: METRIC_NAMES.reconcileDuration,
      help: "Duration of a full reconcile pass (compare every repo with the primary), by result.",
      labelNames: ["result"],
      buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900],
      registers,
    });
    this.reconcileLastSuccess = new Gauge({
      name: METRIC_NAMES.reconcileLastSuccess,
      help: "Unix time of the last successful reconcile pass (alert when it gets old).",
      registers,
    });

    this.scanNoticeBound = new Gauge({
      name: METRIC_NAMES.scanNoticeBound,
      help: "Worst case, in seconds, before the reconcile notices a push whose webhook was lost, for active and idle repositories (mirror.scan.*).",
      labelNames: ["repos"],
      registers,
    });
    this.scanRate = new Gauge({
      name: METRIC_NAMES.scanRate,
      help: "Ref scans per second the reconcile's targets cost the primary (at most mirror.scan.maxPerSecond unless the idle bound needs more).",
      registers,
    });

    // Gauges below are computed at scrape time from the board: no bookkeeping on the hot path.
    new Gauge({
      name: METRIC_NAMES.repos,
      help: "Repositories by sync state.",
      labelNames: ["state"],
      registers,
      collect() {
        const s = source.summary();
        for (const st of REPO_STATES) this.set({ state: st }, s.byState[st]);
      },
    });
    new Gauge({
      name: METRIC_NAMES.reposDelayed,
      help: "Repositories in the delayed-sync list (failing, or behind the primary for longer than the threshold).",
      registers,
      collect() {
        this.set(source.summary().delayed);
      },
    });
    new Gauge({
      name: METRIC_NAMES.syncLagMax,
      help: "Age of the oldest change on the primary the mirror does not have yet (0 when up to date).",
      registers,
      collect() {
        this.set(source.summary().maxLagMs / 1000);
      },
    });
    new Gauge({
      name: METRIC_NAMES.primaryUp,
      help: "1 if the primary answered the last probe, 0 if not (absent until the first probe).",
      registers,
      collect() {
        const up = source.summary().primaryReachable;
        setOrAbsent(this, up === undefined ? undefined : up ? 1 : 0);
      },
    });
    new Gauge({
      name: METRIC_NAMES.state,
      help: "The mirror's state (1 for the current one, 0 for the others).",
      labelNames: ["state"],
      registers,
      collect() {
        const current = source.summary().state;
        for (const st of MIRROR_STATES) this.set({ state: st }, st === current ? 1 : 0);
      },
    });

    new Gauge({
      name: METRIC_NAMES.reposSkipped,
      help: "Catalog repositories skipped because the mirror cannot carry their names (see the log for which and why).",
      registers,
      collect() {
        this.set(source.summary().skippedRepos);
      },
    });

    new Gauge({
      name: METRIC_NAMES.diskFree,
      help: "Free bytes on the mirror home's file system (absent until measured).",
      registers,
      collect() {
        setOrAbsent(this, source.summary().disk?.freeBytes);
      },
    });
    new Gauge({
      name: METRIC_NAMES.diskSize,
      help: "Size in bytes of the mirror home's file system (absent until measured); with the free bytes, how full the data volume is.",
      registers,
      collect() {
        setOrAbsent(this, source.summary().disk?.totalBytes);
      },
    });
    new Gauge({
      name: METRIC_NAMES.diskLow,
      help: "1 while free space is below mirror.disk.minFreeMb (syncs that grow the disk are paused, serving goes on), else 0.",
      registers,
      collect() {
        const d = source.summary().disk;
        setOrAbsent(this, d ? (d.state === "ok" ? 0 : 1) : undefined);
      },
    });

    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  syncSucceeded(durationMs: number, changed: boolean, bytes: number | undefined): void {
    this.syncDuration.observe({ outcome: changed ? "changed" : "unchanged" }, durationMs / 1000);
    if (bytes !== undefined && bytes > 0) this.fetchBytes.inc(bytes);
  }

  syncFailed(kind: FailureKind, durationMs: number | undefined): void {
    this.syncFailures.inc({ kind });
    if (durationMs !== undefined) this.syncDuration.observe({ outcome: "failed" }, durationMs / 1000);
  }

  lagObserved(lagMs: number): void {
    this.syncLag.observe(Math.max(0, lagMs) / 1000);
  }

  webhook(result: WebhookResult): void {
    this.webhooks.inc({ result });
  }

  reconciled(result: ReconcileResult, durationMs: number, at: number): void {
    this.reconcileDuration.observe({ result }, durationMs / 1000);
    if (result === "ok") this.reconcileLastSuccess.set(at / 1000);
  }

  scanPlanned(perSecond: number, noticeActiveMs: number, noticeIdleMs: number): void {
    this.scanRate.set(perSecond);
    this.scanNoticeBound.set({ repos: "active" }, noticeActiveMs / 1000);
    this.scanNoticeBound.set({ repos: "idle" }, noticeIdleMs / 1000);
  }

  /** Prometheus text exposition and its content type. */
  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
