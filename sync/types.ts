/**
 * Shapes shared between the daemon's modules. Each module owns its own logic; this file
 * only names what crosses module boundaries.
 */

/** A repository as the primary names it: Bitbucket project key + repository slug. */
export interface RepoId {
  /** Bitbucket project key, e.g. "PROJ" (kept as the primary spells it). */
  project: string;
  /** Repository slug, e.g. "my-repo" (without ".git"). */
  slug: string;
}

/** "PROJ/slug": the key used in maps, logs, metrics labels and the URL layout. */
export type RepoKey = string;

export function repoKey(r: RepoId): RepoKey {
  return `${r.project}/${r.slug}`;
}

export function parseRepoKey(key: RepoKey): RepoId {
  const i = key.indexOf("/");
  if (i <= 0 || i === key.length - 1 || key.indexOf("/", i + 1) !== -1) {
    throw new Error(`not a repository key (want PROJECT/slug): ${JSON.stringify(key)}`);
  }
  return { project: key.slice(0, i), slug: key.slice(i + 1) };
}

/** Why a sync of one repository was asked for (shown in logs and metrics). */
export type SyncReason = "initial" | "reconcile" | "webhook" | "retry" | "manual";

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
