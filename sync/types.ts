/**
 * Shapes shared between the daemon's modules. Each module owns its own logic; this file
 * only names what crosses module boundaries.
 */

// A repository's name and the rule for which names the mirror accepts live together in repoName.ts.
export { parseRepoKey, repoKey } from "./repoName";
export type { RepoId, RepoKey } from "./repoName";
import type { RepoKey } from "./repoName";

/**
 * Why a sync of one repository was asked for (shown in logs and metrics). "demand": a client
 * of the mirror needs it now (a want the mirror lacks, or a ref advertisement behind the
 * primary: sync/serve/git/freshness.ts).
 */
export type SyncReason = "initial" | "reconcile" | "webhook" | "retry" | "manual" | "demand";

/** What the daemon knows about one repository; the source of /status and /metrics. */
export interface RepoStatus {
  key: RepoKey;
  /** "new": never synced; "synced": last attempt succeeded; "failing": last attempt failed. */
  state: "new" | "syncing" | "synced" | "failing";
  /** ms since epoch of the last successful sync (undefined if never). */
  lastSyncedAt?: number;
  /** ms since epoch the primary was last seen to have changes we do not have yet. */
  behindSince?: number;
  lastError?: string;
  consecutiveFailures: number;
  /** ms since epoch of the first failure of the current streak (undefined when not failing). */
  failingSince?: number;
  /** ms since epoch of the next retry, when backing off. */
  nextRetryAt?: number;
}

/** The daemon as a whole, as /status shows it (Bitbucket mirror states, plus ours). */
export type MirrorState = "STARTING" | "INITIAL_SYNC" | "SYNCHRONIZED" | "DEGRADED" | "ERROR";
