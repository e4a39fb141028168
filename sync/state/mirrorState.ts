/**
 * Pure decisions about the mirror's health: the daemon-wide MirrorState and whether one
 * repository counts as "delayed". The StatusBoard gathers the facts; these functions only
 * judge them, so every rule here is table-tested without clocks or I/O.
 */
import { MirrorState, RepoStatus } from "../types";

/** What mirrorState() needs to know; the StatusBoard computes it in one pass over the repos. */
export interface MirrorFacts {
  /** The catalog (which repos exist on the primary) has been read at least once. */
  catalogKnown: boolean;
  totalRepos: number;
  /** Repos synced successfully at least once (their content can be served). */
  everSynced: number;
  /** Repos whose latest attempt failed, including ones being retried right now. */
  failing: number;
  /** Repos in the delayed-sync list (see delayReason). */
  delayed: number;
  /** Latched: every repo of the catalog was synced once. Repos added later do not undo it. */
  initialSyncComplete: boolean;
  /** undefined until the first probe of the primary answered one way or the other. */
  primaryReachable: boolean | undefined;
  /**
   * Latched: since this start, a reconcile completed and every repository it found behind (or
   * never synced, or syncing) has finished a sync since. Until then the copies on disk are of
   * unknown age (the daemon may have been down for days), so the mirror is not SYNCHRONIZED.
   */
  caughtUp: boolean;
  /** Free space is below mirror.disk.minFreeMb: syncs that grow the disk are paused. */
  diskLow?: boolean;
  /** Repos never synced whose first copy is still to be made (not failing): work in progress. */
  firstCopiesPending?: number;
}

/**
 * The order of the rules is the contract (first match wins):
 *
 * 1. Catalog never read: ERROR if the primary is known to be unreachable, else STARTING.
 * 2. ERROR ("nothing works"): repos exist, none was ever synced, and either the primary is
 *    unreachable or every repo's latest attempt failed (e.g. the mirror's key is not approved).
 *    Nothing can be served and nothing is getting better by itself.
 * 3. DEGRADED: the primary is unreachable (we serve what we have, possibly stale), the disk is
 *    low (syncs that grow it are paused), or some repos are failing or delayed. This wins over INITIAL_SYNC: a repo that keeps failing
 *    would otherwise hide behind "still syncing" forever.
 * 4. INITIAL_SYNC: until every repo of the catalog has been synced once, and after every start
 *    until the first reconcile round completed (caughtUp): copies restored from disk are
 *    served meanwhile (200), but are not claimed to be current.
 * 5. SYNCHRONIZED.
 */
export function mirrorState(f: MirrorFacts): MirrorState {
  if (!f.catalogKnown) return f.primaryReachable === false ? "ERROR" : "STARTING";
  const nothingServable = f.totalRepos > 0 && f.everSynced === 0;
  if (nothingServable && (f.primaryReachable === false || f.failing >= f.totalRepos)) return "ERROR";
  if (f.primaryReachable === false || f.diskLow === true || f.failing > 0 || f.delayed > 0) return "DEGRADED";
  if (!f.caughtUp || (!f.initialSyncComplete && f.everSynced < f.totalRepos)) return "INITIAL_SYNC";
  return "SYNCHRONIZED";
}

/**
 * Readiness: whether load balancers and the global name's health check should send clients
 * here. SYNCHRONIZED; or DEGRADED (serving current copies while some repositories fail or the
 * primary is away) once no first copy is still being made. A node joining a farm, or a new
 * mirror, whose first sync has one failing repository is DEGRADED, but most of its copies may
 * still be missing: clients sent there would fail. So it stays not ready until every
 * repository has either been copied once or failed (the initial sync latch covers restarts:
 * copies found on disk count as copied).
 */
export function isReady(state: MirrorState, f: Pick<MirrorFacts, "initialSyncComplete" | "firstCopiesPending">): boolean {
  if (state === "SYNCHRONIZED") return true;
  return state === "DEGRADED" && (f.initialSyncComplete || (f.firstCopiesPending ?? 0) === 0);
}

/** Why a repo is in the delayed-sync list. */
export type DelayReason = "failing" | "behind";

/**
 * A repo is delayed (Bitbucket's "delayed sync" list) when the daemon knows the primary has
 * something it lacks and that has lasted at least `thresholdMs` (mirror.status.delayedSyncTolerance):
 * - "failing": its latest attempts failed (also while the retry runs), for that long, counted
 *   from the first failure of the streak or from the change it was fetching, whichever came first;
 * - "behind": the primary had changes we do not have (webhook, or a reconcile saw new refs) for
 *   that long, measured from behindSince, not from the last sync: a repo synced an hour ago and
 *   pushed to a second ago is not late.
 * A never-synced repo is not "behind" while the initial sync is still running: the initial
 * sync progress reports it, and counting it here would turn a long first sync into DEGRADED.
 * A failure alone still makes the mirror DEGRADED at once (MirrorFacts.failing); the tolerance
 * only decides when it joins the list.
 */
export function delayOf(r: RepoStatus, now: number, thresholdMs: number, initialSyncComplete: boolean): { reason: DelayReason; since: number } | undefined {
  const behind = r.behindSince !== undefined && (r.lastSyncedAt !== undefined || initialSyncComplete) ? r.behindSince : undefined;
  if (r.consecutiveFailures > 0) {
    const since = Math.min(r.failingSince ?? now, behind ?? Infinity);
    return now - since >= thresholdMs ? { reason: "failing", since } : undefined;
  }
  if (behind === undefined) return undefined;
  return now - behind >= thresholdMs ? { reason: "behind", since: behind } : undefined;
}

export function delayReason(r: RepoStatus, now: number, thresholdMs: number, initialSyncComplete: boolean): DelayReason | undefined {
  return delayOf(r, now, thresholdMs, initialSyncComplete)?.reason;
}

/** HTTP status for GET /status: 503 when nothing can be served (so load balancers skip us). */
export function statusHttpCode(state: MirrorState): 200 | 503 {
  return state === "STARTING" || state === "ERROR" ? 503 : 200;
}
