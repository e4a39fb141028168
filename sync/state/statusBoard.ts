/**
 * What the daemon knows about itself, in one place: per-repo sync status plus daemon-wide facts
 * (catalog, initial sync, primary reachability, last reconcile, setup info). The sync loop
 * writes it through a few verbs; /status, /status/repos, /status/delayed and /metrics read it.
 *
 * Memory: one small object per repo (key string, a few numbers, a bounded error string); for
 * 10,000 repos that is a few MB. Counts are computed on demand in one pass (microseconds for
 * 10k entries) rather than kept incrementally, so they can never drift from the entries.
 */
import type { DiskFacts } from "../store/diskSpace";
import { MirrorState, RepoKey, RepoStatus } from "../types";
import { describeError, failureKind, FailureKind } from "./failureKind";
import { MirrorMetrics, MetricsSource, ReconcileResult } from "./metrics";
import { DelayReason, delayOf, delayReason, MirrorFacts, mirrorState } from "./mirrorState";

/** Setup facts shown on /status (Bitbucket's setup.displayName, setup.baseUrl, upstream URL). */
export interface MirrorInfo {
  displayName?: string;
  baseUrl?: string;
  upstreamUrl?: string;
  version?: string;
}

export interface StatusBoardOptions {
  info?: MirrorInfo;
  /** A repo behind the primary for this long is "delayed" (default 10 minutes). */
  delayedAfterMs?: number;
  /** Clock (ms since epoch); tests pass a fake one. */
  now?: () => number;
  /** Register prom-client's default process/Node.js metrics (default true). */
  defaultMetrics?: boolean;
}

export interface ReconcileRecord {
  at: number;
  durationMs: number;
  /** Repos found to differ from the primary (and queued for sync). */
  changed: number;
  /** Repos compared. */
  checked: number;
  result: ReconcileResult;
  error?: string;
  /** Repos on disk not yet compared since the start (a large catalog's first comparison spans rounds). */
  unasked?: number;
}

/** The reconcile's scan targets (scheduler/scanPlan.ts), for /status/detail and metrics. */
export interface ScanFactsView {
  active: number;
  idle: number;
  asked: number;
  perSecond: number;
  overBudget: boolean;
  activeEveryMs: number;
  idleEveryMs: number;
  noticeActiveMs: number;
  noticeIdleMs: number;
}

export interface PrimaryFacts {
  reachable: boolean | undefined;
  checkedAt?: number;
  lastError?: string;
  lastErrorAt?: number;
}

export interface BoardSummary {
  now: number;
  state: MirrorState;
  facts: MirrorFacts;
  byState: Record<RepoStatus["state"], number>;
  delayed: number;
  /** ms since the oldest change on the primary we do not have yet (0 if none). */
  maxLagMs: number;
  primaryReachable: boolean | undefined;
  /** Catalog names the mirror cannot carry (skipped, not synced). */
  skippedRepos: number;
  /** Free space on the home's file system (undefined until measured). */
  disk?: DiskFacts;
}

/** At most this many skipped names are kept with their reasons (the count is exact). */
const MAX_SKIPPED_LISTED = 100;

export interface SkippedRepo {
  key: RepoKey;
  problem: string;
}

export interface BoardSnapshot extends BoardSummary {
  info: MirrorInfo;
  startedAt: number;
  delayedAfterMs: number;
  initialSync: { done: number; total: number; complete: boolean; completedAt?: number };
  primary: PrimaryFacts;
  lastReconcile?: ReconcileRecord;
  scan?: ScanFactsView;
  /** The first MAX_SKIPPED_LISTED skipped names with their reasons (summary.skippedRepos counts all). */
  skipped: SkippedRepo[];
  /** The node drains (or is drained): readiness is 503 whatever the state (serve/drain.ts). */
  draining?: boolean;
}

export interface DelayedRepo extends RepoStatus {
  reason: DelayReason;
  /** Since when the repository is out of sync (the change or the first failure it waits for). */
  since: number;
  /** ms since the primary first had changes we lack (when behind). */
  lagMs?: number;
}

/** Matches RepoStatus.state exactly (a repo being retried is "syncing"; /status/delayed still lists it). */
export type RepoFilter = RepoStatus["state"];

interface Entry extends RepoStatus {
  /** When the running (or last) attempt started; decides whether behindSince is covered. */
  startedAt?: number;
}

function newEntry(key: RepoKey): Entry {
  // One literal shape for every entry keeps V8's hidden classes shared (smaller, faster).
  return { key, state: "new", lastSyncedAt: undefined, behindSince: undefined, lastError: undefined, consecutiveFailures: 0, failingSince: undefined, nextRetryAt: undefined, startedAt: undefined };
}

function publicView(e: Entry): RepoStatus {
  const r: RepoStatus = { key: e.key, state: e.state, consecutiveFailures: e.consecutiveFailures };
  if (e.lastSyncedAt !== undefined) r.lastSyncedAt = e.lastSyncedAt;
  if (e.behindSince !== undefined) r.behindSince = e.behindSince;
  if (e.lastError !== undefined) r.lastError = e.lastError;
  if (e.failingSince !== undefined) r.failingSince = e.failingSince;
  if (e.nextRetryAt !== undefined) r.nextRetryAt = e.nextRetryAt;
  return r;
}

export const DEFAULT_DELAYED_AFTER_MS = 10 * 60 * 1000;

export class StatusBoard implements MetricsSource {
  readonly metrics: MirrorMetrics;
  readonly startedAt: number;
  private readonly now: () => number;
  private readonly delayedAfterMs: number;
  private info: MirrorInfo;
  /** Sorted by key (rebuilt by setCatalog), so listings page in a stable order. */
  private repos = new Map<RepoKey, Entry>();
  private catalogKnown = false;
  /** Catalog repos never synced; kept incrementally so each success can check "all done" in O(1). */
  private neverSynced = 0;
  private initialSyncCompletedAt: number | undefined;
  private primary: PrimaryFacts = { reachable: undefined };
  private lastReconcile: ReconcileRecord | undefined;
  private scan: ScanFactsView | undefined;
  /** See MirrorFacts.caughtUp. */
  private caughtUp = false;
  /** After the first good reconcile of this start: the repos it left to sync (see firstRound*). */
  private firstRound: Set<RepoKey> | undefined;
  private skipped: SkippedRepo[] = [];
  private disk: DiskFacts | undefined;
  private skippedCount = 0;
  private draining = false;

  constructor(opts: StatusBoardOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.delayedAfterMs = opts.delayedAfterMs ?? DEFAULT_DELAYED_AFTER_MS;
    this.info = { ...opts.info };
    this.startedAt = this.now();
    this.metrics = new MirrorMetrics(this, { defaultMetrics: opts.defaultMetrics });
  }

  setInfo(info: MirrorInfo): void {
    this.info = { ...this.info, ...info };
  }

  /**
   * The repos the mirror should hold (from the catalog). Known repos keep their status; new ones
   * start as "new"; repos gone from the catalog are forgotten. Once the initial sync is complete,
   * a repo appearing later is marked behind (the primary has content we lack), so it shows up in
   * the delayed list if it does not get synced in time.
   */
  setCatalog(keys: Iterable<RepoKey>, opts: { lastSyncedAt?: (key: RepoKey) => number | undefined } = {}): void {
    const now = this.now();
    const sorted = [...new Set(keys)].sort();
    const next = new Map<RepoKey, Entry>();
    let neverSynced = 0;
    for (const key of sorted) {
      let e = this.repos.get(key);
      if (!e) {
        e = newEntry(key);
        // A copy already on disk from an earlier run (the daemon restarted): it was synced then.
        const restored = opts.lastSyncedAt?.(key);
        if (restored !== undefined) {
          e.lastSyncedAt = restored;
          e.state = "synced";
        } else if (this.initialSyncCompletedAt !== undefined) e.behindSince = now;
      }
      if (e.lastSyncedAt === undefined) neverSynced++;
      next.set(key, e);
    }
    this.repos = next;
    this.neverSynced = neverSynced;
    this.catalogKnown = true;
    this.latchInitialSync(now);
    if (this.firstRound) for (const key of this.firstRound) if (!next.has(key)) this.firstRoundDone(key);
  }

  /** Catalog names skipped by the name rule (sync/repoName.ts), with why. */
  setSkipped(skipped: readonly SkippedRepo[]): void {
    this.skippedCount = skipped.length;
    this.skipped = skipped.slice(0, MAX_SKIPPED_LISTED).map((s) => ({ key: s.key.slice(0, 300), problem: s.problem.slice(0, 300) }));
  }

  setDisk(facts: DiskFacts): void {
    this.disk = { ...facts };
  }

  syncStarted(key: RepoKey): void {
    const e = this.repos.get(key);
    if (!e) return; // not (or no longer) in the catalog: nothing to show
    e.state = "syncing";
    e.startedAt = this.now();
  }

  syncSucceeded(key: RepoKey, r: { durationMs: number; bytes?: number; changed: boolean }): void {
    this.metrics.syncSucceeded(r.durationMs, r.changed, r.bytes);
    const e = this.repos.get(key);
    if (!e) return;
    const now = this.now();
    const startedAt = e.startedAt ?? now - r.durationMs;
    const wasSynced = e.lastSyncedAt !== undefined;
    // Only changes seen before this fetch started are surely in it; a push announced while
    // the fetch ran may have missed it, so the repo stays behind for the next round.
    if (e.behindSince !== undefined && e.behindSince <= startedAt) {
      // Lag is observed for incremental syncs only: the hours of a first full sync are not lag.
      if (wasSynced) this.metrics.lagObserved(now - e.behindSince);
      e.behindSince = undefined;
    }
    e.state = "synced";
    e.lastSyncedAt = now;
    e.consecutiveFailures = 0;
    e.failingSince = undefined;
    e.lastError = undefined;
    e.nextRetryAt = undefined;
    e.startedAt = undefined;
    if (!wasSynced) {
      this.neverSynced--;
      this.latchInitialSync(now);
    }
    // Still behind: a push arrived during this fetch; the follow-up sync finishes the round.
    if (e.behindSince === undefined) this.firstRoundDone(key);
  }

  /** `kind` overrides the classification of `error` (see failureKind). */
  syncFailed(key: RepoKey, error: unknown, r: { nextRetryAt?: number; durationMs?: number; kind?: FailureKind } = {}): void {
    this.metrics.syncFailed(r.kind ?? failureKind(error), r.durationMs);
    const e = this.repos.get(key);
    if (!e) return;
    e.state = "failing";
    if (e.consecutiveFailures === 0) e.failingSince = this.now();
    e.consecutiveFailures++;
    e.lastError = describeError(error);
    e.nextRetryAt = r.nextRetryAt;
    e.startedAt = undefined;
    // A failure ends the repo's part of the round: it is reported as failing (DEGRADED) instead.
    this.firstRoundDone(key);
  }

  /** The primary has changes for `key` since `since` (webhook or reconcile); the earliest wins. */
  markBehind(key: RepoKey, since: number = this.now()): void {
    const e = this.repos.get(key);
    if (!e) return;
    if (e.behindSince === undefined || since < e.behindSince) e.behindSince = since;
  }

  primaryReachable(reachable: boolean, error?: unknown): void {
    const now = this.now();
    this.primary = { ...this.primary, reachable, checkedAt: now };
    if (error !== undefined) {
      this.primary.lastError = describeError(error);
      this.primary.lastErrorAt = now;
    }
  }

  reconcileDone(r: { durationMs: number; changed: number; checked: number; unasked?: number; error?: unknown }): void {
    const at = this.now();
    const result: ReconcileResult = r.error === undefined ? "ok" : "error";
    this.lastReconcile = { at, durationMs: r.durationMs, changed: r.changed, checked: r.checked, result };
    if (r.unasked) this.lastReconcile.unasked = r.unasked;
    if (r.error !== undefined) this.lastReconcile.error = describeError(r.error);
    this.metrics.reconciled(result, r.durationMs, at);
    // A large catalog's first comparison is spread over rounds by the scan budget: the first
    // round counts once no repository on disk is left uncompared.
    if (result === "ok" && (r.unasked ?? 0) === 0 && !this.caughtUp && this.firstRound === undefined) {
      // The reconcile compared every repo with the primary and queued a sync for each one that
      // differs (marked behind) or is missing (never synced); running ones may predate it.
      this.firstRound = new Set();
      for (const e of this.repos.values()) if (e.lastSyncedAt === undefined || e.behindSince !== undefined || e.state === "syncing") this.firstRound.add(e.key);
      this.firstRoundDone(undefined);
    }
  }

  scanPlanned(v: ScanFactsView): void {
    this.scan = v;
    this.metrics.scanPlanned(v.perSecond, v.noticeActiveMs, v.noticeIdleMs);
  }

  /** `key` finished its part of the first round after this start (undefined: just check). */
  private firstRoundDone(key: RepoKey | undefined): void {
    if (!this.firstRound) return;
    if (key !== undefined) this.firstRound.delete(key);
    if (this.firstRound.size === 0) {
      this.firstRound = undefined;
      this.caughtUp = true;
    }
  }

  /** One repo's status (a copy), or undefined if it is not in the catalog. */
  repo(key: RepoKey): RepoStatus | undefined {
    const e = this.repos.get(key);
    return e && publicView(e);
  }

  /** Counts and the MirrorState, in one pass over the repos. */
  summary(): BoardSummary {
    const now = this.now();
    const complete = this.initialSyncCompletedAt !== undefined;
    const byState: Record<RepoStatus["state"], number> = { new: 0, syncing: 0, synced: 0, failing: 0 };
    let failing = 0;
    let firstCopiesPending = 0;
    let delayed = 0;
    let oldestBehind = Infinity;
    for (const e of this.repos.values()) {
      byState[e.state]++;
      if (e.consecutiveFailures > 0) failing++;
      else if (e.lastSyncedAt === undefined) firstCopiesPending++;
      if (delayReason(e, now, this.delayedAfterMs, complete)) delayed++;
      if (e.behindSince !== undefined && (e.lastSyncedAt !== undefined || complete) && e.behindSince < oldestBehind) oldestBehind = e.behindSince;
    }
    const facts: MirrorFacts = {
      catalogKnown: this.catalogKnown,
      totalRepos: this.repos.size,
      everSynced: this.repos.size - this.neverSynced,
      failing,
      delayed,
      initialSyncComplete: complete,
      primaryReachable: this.primary.reachable,
      caughtUp: this.caughtUp,
      diskLow: this.disk !== undefined && this.disk.state !== "ok",
      firstCopiesPending,
    };
    return {
      now,
      state: mirrorState(facts),
      facts,
      byState,
      delayed,
      maxLagMs: oldestBehind === Infinity ? 0 : Math.max(0, now - oldestBehind),
      primaryReachable: this.primary.reachable,
      skippedRepos: this.skippedCount,
      ...(this.disk ? { disk: { ...this.disk } } : {}),
    };
  }

  /** Everything /status shows. */
  snapshot(): BoardSnapshot {
    const s = this.summary();
    return {
      ...s,
      info: { ...this.info },
      startedAt: this.startedAt,
      delayedAfterMs: this.delayedAfterMs,
      initialSync: {
        done: s.facts.everSynced,
        total: s.facts.totalRepos,
        complete: this.initialSyncCompletedAt !== undefined,
        ...(this.initialSyncCompletedAt !== undefined ? { completedAt: this.initialSyncCompletedAt } : {}),
      },
      primary: { ...this.primary },
      ...(this.lastReconcile ? { lastReconcile: { ...this.lastReconcile } } : {}),
      ...(this.scan ? { scan: { ...this.scan } } : {}),
      skipped: this.skipped.map((x) => ({ ...x })),
      draining: this.draining,
    };
  }

  /** The node started draining (true) or a drain was cancelled (false); see serve/drain.ts. */
  setDraining(draining: boolean): void {
    this.draining = draining;
  }

  /** A page of repos in key order, optionally only those in one state. */
  listRepos(q: { state?: RepoFilter; start?: number; limit?: number } = {}): { values: RepoStatus[]; matched: number } {
    const start = q.start ?? 0;
    const limit = q.limit ?? Infinity;
    const values: RepoStatus[] = [];
    let matched = 0;
    for (const e of this.repos.values()) {
      if (q.state !== undefined && e.state !== q.state) continue;
      if (matched >= start && values.length < limit) values.push(publicView(e));
      matched++;
    }
    return { values, matched };
  }

  /** The delayed-sync list, worst first (out of sync longest, then most failures, then key). */
  delayed(): DelayedRepo[] {
    const now = this.now();
    const complete = this.initialSyncCompletedAt !== undefined;
    const out: DelayedRepo[] = [];
    for (const e of this.repos.values()) {
      const delay = delayOf(e, now, this.delayedAfterMs, complete);
      if (!delay) continue;
      const d: DelayedRepo = { ...publicView(e), reason: delay.reason, since: delay.since };
      if (e.behindSince !== undefined) d.lagMs = Math.max(0, now - e.behindSince);
      out.push(d);
    }
    return out.sort((a, b) => a.since - b.since || b.consecutiveFailures - a.consecutiveFailures || (a.key < b.key ? -1 : 1));
  }

  get delayedThresholdMs(): number {
    return this.delayedAfterMs;
  }

  private latchInitialSync(now: number): void {
    if (this.initialSyncCompletedAt === undefined && this.catalogKnown && this.neverSynced === 0) this.initialSyncCompletedAt = now;
  }
}
