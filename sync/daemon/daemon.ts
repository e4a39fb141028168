/**
 * The daemon's lifecycle: take the home lock, recover from whatever a crash left, then keep
 * the mirror converged — webhooks trigger single repositories, a full reconcile every
 * interval is the safety net. Stop drains running fetches and releases everything.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { listRepos } from "../catalog/bitbucketRest";
import { decidePurge, selectRepos } from "../catalog/select";
import { Scheduler, SchedulerEvent } from "../scheduler/scheduler";
import { Throttle } from "../scheduler/throttle";
import { DiskFacts, DiskSpace, isNoSpace } from "../store/diskSpace";
import { RepoStore, TEMP_MIN_AGE_MS } from "../store/repoStore";
import { homePath } from "../homeLayout";
import { partitionRepoIds } from "../repoName";
import { parseRepoKey, RepoId, RepoKey, repoKey, SyncReason } from "../types";
import { knownHostsText } from "../upstream/hostKeys";
import { makeRefFilter } from "../upstream/refFilter";
import { closeControlMaster, isPrimaryUnreachable, knownHostsPath, removeFallbackControlDir, upstreamGitEnv } from "../upstream/openssh";
import { UpstreamPool } from "../upstream/upstreamPool";
import { SessionCache } from "../upstream/sessionCache";
import type { RefMove } from "../store/repoStore";
import { ChangeLike, mergeMoves, movesFromChanges } from "./refMoves";
import { SeedSource, SyncEngine, SyncOutcome } from "./engine";
import { SyncResult, SyncWaiters } from "./syncWaiters";
import { forEachLimit } from "./forEachLimit";
import { acquireHomeLock } from "./lock";
import { DaemonSettings, DEFAULT_ACTIVE_WINDOW_MS, DEFAULT_WEBHOOK_REFRESH_MIN_MS } from "./settings";
import { ScanLedger, ScanRound } from "./scanLedger";

/** What the daemon reports to (the status board, metrics, logs). */
export interface DaemonObserver {
  /** `lastSyncedAt` tells when a repository already on disk was last synced (restarts). */
  catalogChanged(keys: RepoKey[], lastSyncedAt: (key: RepoKey) => number | undefined): void;
  /** Names from the catalog (or on disk) the mirror cannot carry, each with its reason; the rest syncs. */
  catalogSkipped(skipped: Array<{ key: RepoKey; problem: string }>): void;
  syncStarted(key: RepoKey, reason: SyncReason): void;
  syncSucceeded(key: RepoKey, reason: SyncReason, durationMs: number, outcome: SyncOutcome): void;
  syncFailed(key: RepoKey, reason: SyncReason, error: Error, durationMs: number, retryInMs: number | undefined): void;
  /** The primary has changes for `key` that we do not hold yet (seen by a scan). */
  behind(key: RepoKey, sinceMs: number): void;
  primaryReachable(reachable: boolean, error?: string): void;
  /** Free space on the home's file system, measured (every DISK_CHECK_MS, and before syncs). */
  diskChecked(facts: DiskFacts): void;
  /**
   * A round ended. `unasked`: repositories on disk not yet compared with the primary since the
   * start (a large catalog's first comparison is spread over rounds by the scan budget).
   */
  reconcileDone(r: { durationMs: number; checked: number; changed: number; unasked: number; error?: string }): void;
  /** A round's plan: how many it asks, the targets and the worst-case notice of a missed webhook. */
  scanPlanned?(round: ScanRound): void;
  log(level: "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>): void;
}

/**
 * What a farm (sync/farm) adds to the syncs: an announcement before new refs are published, a
 * peer as a first clone's source. Without hooks the daemon is a single node.
 */
export interface DaemonHooks {
  beforePublish?(key: RepoKey, moves: RefMove[] | undefined): Promise<void>;
  /** `env`: the daemon's git environment, which the source's own settings go on top of. */
  seedSource?(id: RepoId, env: NodeJS.ProcessEnv): SeedSource | undefined;
  /**
   * Of the repositories on disk, those whose change-detection scan this node owns (a farm
   * shares the scans among its nodes up, sync/farm/scanShare.ts); the others learn of changes
   * from their owner's announcement. Asked once per reconcile round. Absent: all of them.
   */
  scanShare?(keys: RepoKey[]): RepoKey[];
}

/** How a resync() ended. */
export interface ResyncResult {
  ok: boolean;
  error?: string;
}

/** One successful sync, as onSynced listeners get it. */
export interface SyncedNotice {
  key: RepoKey;
  id: RepoId;
  reason: SyncReason;
  durationMs: number;
  outcome: SyncOutcome;
  /** When the sync finished (ms since epoch). */
  at: number;
}

export class Daemon {
  readonly scheduler: Scheduler<SyncOutcome>;
  private readonly store: RepoStore;
  private readonly pool: UpstreamPool;
  private readonly engine: SyncEngine;
  private readonly env: NodeJS.ProcessEnv;
  private catalog = new Map<RepoKey, RepoId>();
  private releaseLock?: () => void;
  private timer?: NodeJS.Timeout;
  private reconciling?: Promise<void>;
  private stopped = false;
  private readonly controlPath: string;
  private readonly disk: DiskSpace;
  private diskTimer?: NodeJS.Timeout;
  /** The start's second temp-file sweep, once files too young for the first have aged. */
  private tempSweepTimer?: NodeJS.Timeout;
  private readonly webhookRefresh: Throttle;
  private readonly waiters = new SyncWaiters();
  /** Warm v2 sessions for the webhook fast path (sessionCache.ts). */
  private readonly sessions: SessionCache;
  /** Ref moves webhooks announced, per repository, until its next sync job takes them. */
  private readonly pendingMoves = new Map<RepoKey, RefMove[] | "unknown">();
  /** syncNow callers that gave moves: settled as soon as a job applied exactly those (see syncNow). */
  private readonly movesWaiters = new Map<RepoKey, { moves: RefMove[]; settle: () => void }[]>();
  /** Who the reconcile asks and how fast (scanLedger.ts). */
  private readonly scans: ScanLedger;
  /** Said once: the budget cannot keep the idle bound at this catalog size. */
  /** Where the next round's slice of maintainUnowned starts. */
  private unownedCursor = 0;
  private overBudgetSaid = false;
  /** Aborts a paced scan's wait at stop. */
  private readonly stopSignal = new AbortController();
  /** DaemonHooks.scanShare: whose scans this node owns (undefined: a single node owns all). */
  private readonly scanShare?: (keys: RepoKey[]) => RepoKey[];

  constructor(
    private readonly s: DaemonSettings,
    private readonly obs: DaemonObserver,
    hooks: DaemonHooks = {},
  ) {
    this.store = new RepoStore(s.home, s.excludeRefs, { firstCloneStepBytes: s.firstCloneStepBytes });
    this.scanShare = hooks.scanShare;
    this.disk = new DiskSpace(s.home, s.disk?.minFreeBytes ?? 0);
    const b = s.scanBudget;
    this.scans = new ScanLedger({ maxPerSecond: b?.maxPerSecond ?? Number.POSITIVE_INFINITY, roundMs: s.intervalMs, idleBoundMs: b?.idleBoundMs ?? s.intervalMs, activeWindowMs: b?.activeWindowMs ?? DEFAULT_ACTIVE_WINDOW_MS });
    this.webhookRefresh = new Throttle(() => this.reconcileAfterRunning(), { minIntervalMs: s.webhookRefreshMinMs ?? DEFAULT_WEBHOOK_REFRESH_MIN_MS });
    ({ env: this.env, controlPath: this.controlPath } = upstreamGitEnv(s.home, s.upstream.keyFile));
    this.pool = new UpstreamPool(
      { host: s.upstream.host, port: s.upstream.port, user: s.upstream.user, privateKey: fs.readFileSync(s.upstream.keyFile), pinned: s.upstream.pinned },
      { connections: s.scanConnections, channelsPerConnection: 8, connectTimeoutMs: 15000, scanTimeoutMs: 60000 },
    );
    this.sessions = new SessionCache((p, signal) => this.pool.openSession(p, signal), { max: WARM_SESSIONS, idleMs: WARM_SESSION_IDLE_MS });
    this.engine = new SyncEngine({
      store: this.store,
      scanner: this.pool,
      keep: makeRefFilter(s.excludeRefs),
      env: this.env,
      sshBase: `ssh://${s.upstream.user}@${s.upstream.host}:${s.upstream.port}`,
      maintenance: s.maintenance,
      disk: this.disk,
      trackRefChanges: s.trackRefChanges,
      sessions: this.sessions,
      takeMoves: (id) => {
        const key = repoKey(id);
        const m = this.pendingMoves.get(key);
        this.pendingMoves.delete(key);
        return m;
      },
      onFallback: (id, why) => this.obs.log("info", "fast path not taken; running git fetch", { repo: repoKey(id), why }),
      onMovesApplied: (id, moves) => this.movesApplied(repoKey(id), moves),
      beforePublish: hooks.beforePublish && ((id, moves) => hooks.beforePublish!(repoKey(id), moves)),
      seedSource: hooks.seedSource && ((id) => hooks.seedSource!(id, this.env)),
      othersWaiting: () => {
        const c = this.scheduler.counts();
        return c.queued + c.running > 1;
      },
    });
    this.scheduler = new Scheduler<SyncOutcome>({
      sync: (key, reason, signal) => this.engine.sync(this.catalog.get(key) ?? parseRepoKey(key), reason, signal),
      concurrency: s.concurrency,
      timeoutMs: s.timeoutMs,
      backoff: s.backoff,
      onEvent: (e) => this.onSchedulerEvent(e),
    });
  }

  /**
   * Take the lock, recover, and start syncing. Resolves once the first reconcile was started.
   * Nothing here needs free space (a full disk must not keep the mirror from serving): the lock
   * falls back to an empty file, other writes are skipped when unchanged and tolerated on ENOSPC.
   */
  async start(): Promise<void> {
    this.releaseLock = acquireHomeLock(this.s.home);
    this.checkDisk();
    this.diskTimer = setInterval(() => this.checkDisk(), DISK_CHECK_MS);
    this.diskTimer.unref();
    const rec = this.store.recover();
    if (rec.removedIncoming > 0 || rec.keptIncoming > 0 || rec.removedLocks.length > 0 || rec.removedTemp.length > 0) {
      const tempBytes = rec.removedTemp.reduce((n, t) => n + t.bytes, 0);
      this.obs.log("warn", "recovered from an unclean stop", { discardedFirstClones: rec.removedIncoming, resumableFirstClones: rec.keptIncoming, staleLocks: rec.removedLocks.length, tempFiles: rec.removedTemp.length, tempBytes });
    }
    this.tempSweepTimer = setTimeout(() => {
      const swept = this.store.sweepTemp();
      if (swept.length > 0) this.obs.log("warn", "removed temporary files of killed fetches", { tempFiles: swept.length, tempBytes: swept.reduce((n, t) => n + t.bytes, 0) });
    }, TEMP_MIN_AGE_MS + 1000);
    this.tempSweepTimer.unref();
    this.writeTolerant("known_hosts", knownHostsPath(this.s.home), knownHostsText(this.s.upstream.host, this.s.upstream.port, this.s.upstream.pinned), 0o644);
    // Until the primary answers, serve (and count) what is on disk. With nothing on disk the
    // catalog stays unknown (status STARTING) until the first catalog arrives.
    // A static catalog is known at once (no primary needed): use it, so /status never reports
    // a partial set of repositories as SYNCHRONIZED after a restart.
    if (this.s.catalog.kind === "static") await this.refreshCatalog();
    else {
      for (const id of this.store.listLocal()) this.catalog.set(repoKey(id), id);
      if (this.catalog.size > 0) this.obs.catalogChanged([...this.catalog.keys()], (k) => this.lastSyncedAt(k));
    }
    this.restoreScanLedger();
    this.reconciling = this.reconcile().finally(() => (this.reconciling = undefined));
    this.timer = setInterval(() => {
      if (!this.reconciling && !this.stopped) this.reconciling = this.reconcile().finally(() => (this.reconciling = undefined));
    }, this.s.intervalMs);
    this.timer.unref();
  }

  /** A webhook said this repository changed on the primary: it is behind until a sync lands. */
  refsChanged(key: RepoKey, changes?: readonly ChangeLike[]): "queued" | "unknown" {
    this.obs.behind(key, Date.now());
    if (this.catalog.has(key)) {
      // Bounded by the catalog: one entry per known repository, taken by its next job.
      this.pendingMoves.set(key, mergeMoves(this.pendingMoves.get(key), movesFromChanges(changes)));
      this.scans.changed(key, Date.now());
      this.scheduler.trigger(key, "webhook");
      return "queued";
    }
    // A repository we don't know yet (new on the primary): refresh the catalog now.
    this.refreshSoon();
    return "unknown";
  }

  /**
   * Fetch this repository from the primary now, coalesced with a queued or running sync of it
   * (the webhook's path through the scheduler, reason "demand"); resolves when the first run
   * that starts after this call has ended. Never rejects. `changes`: the ref moves, when known.
   */
  syncNow(key: RepoKey, changes?: readonly ChangeLike[]): Promise<SyncResult> {
    if (!this.catalog.has(key)) return Promise.resolve({ ok: false, error: new Error(`${key} is not in the mirror's catalog`) });
    // Known ref moves (a push the mirror forwarded) let the sync fetch exactly those tips, as a webhook's do.
    if (changes) this.pendingMoves.set(key, mergeMoves(this.pendingMoves.get(key), movesFromChanges(changes)));
    const outcome = this.scheduler.trigger(key, "demand");
    if (outcome === "ignored") return Promise.resolve({ ok: false, error: new Error("the mirror is stopping") });
    if (outcome === "deferred") return Promise.resolve({ ok: false, error: new Error(this.scheduler.repo(key)?.lastError ?? "the repository's syncs are backing off") });
    // trigger() never starts a run synchronously: registering now cannot miss its start.
    const ran = this.waiters.wait(key);
    const moves = changes ? movesFromChanges(changes) : "unknown";
    if (moves === "unknown") return ran;
    // The moves are served as soon as the job applied and recorded them (before its convergence
    // check, a few round trips to the primary later): settle then, or when the job ends.
    return new Promise<SyncResult>((resolve) => {
      const entry = { moves, settle: () => resolve({ ok: true }) };
      const list = this.movesWaiters.get(key) ?? [];
      list.push(entry);
      this.movesWaiters.set(key, list);
      void ran.then((r) => {
        this.dropMovesWaiter(key, entry);
        resolve(r);
      });
    });
  }

  /** A job applied `moves`: settle the syncNow callers whose every move is among them (same ref, same new value). */
  private movesApplied(key: RepoKey, moves: readonly RefMove[]): void {
    const list = this.movesWaiters.get(key);
    if (!list) return;
    const applied = new Map(moves.map((m) => [m.ref, m.new]));
    for (const w of [...list]) {
      if (w.moves.every((m) => applied.get(m.ref) === m.new)) {
        this.dropMovesWaiter(key, w);
        w.settle();
      }
    }
  }

  private dropMovesWaiter(key: RepoKey, w: { moves: RefMove[]; settle: () => void }): void {
    const list = this.movesWaiters.get(key)?.filter((x) => x !== w) ?? [];
    if (list.length > 0) this.movesWaiters.set(key, list);
    else this.movesWaiters.delete(key);
  }

  /**
   * Do this repository's refs on the mirror differ from the primary's right now (one scan over
   * the kept SSH connections)? Rejects when the primary cannot be asked.
   */
  async refsBehind(key: RepoKey, signal?: AbortSignal): Promise<boolean> {
    const id = this.catalog.get(key) ?? parseRepoKey(key);
    try {
      const behind = await this.engine.refsBehind(id, signal);
      if (behind) this.obs.behind(key, Date.now());
      return behind;
    } catch (e) {
      if (isPrimaryUnreachable(e)) this.obs.primaryReachable(false, (e as Error).message);
      throw e;
    }
  }

  /**
   * A webhook says the catalog changed (a renamed, new or unknown repository): reconcile soon.
   * Throttled (at most one refresh per webhookRefreshMinMs, the last request kept as a trailing
   * run), since anyone holding the webhook secret, or a busy primary, could otherwise start a
   * full reconcile per request.
   */
  refreshSoon(): void {
    this.webhookRefresh.request();
  }

  /**
   * Be told after every successful sync of a repository (synced events out, long-poll waiters).
   * Listeners run synchronously on the scheduler's event: they must only queue work. Returns
   * the unsubscribe function.
   */
  onSynced(listener: (n: SyncedNotice) => void): () => void {
    this.syncedListeners.add(listener);
    return () => this.syncedListeners.delete(listener);
  }

  private readonly syncedListeners = new Set<(n: SyncedNotice) => void>();

  /** Catalog refreshes that webhooks started (after throttling). */
  get webhookRefreshes(): number {
    return this.webhookRefresh.runs;
  }

  /** Reconcile now, or right after the running one (which may have listed the catalog too early). */
  private reconcileAfterRunning(): void {
    if (this.stopped) return;
    if (!this.reconciling) this.reconciling = this.reconcile().finally(() => (this.reconciling = undefined));
    else void this.reconciling.then(() => this.reconcileAfterRunning());
  }

  /** When the copy on disk was last synced: the fingerprint is written after every sync. */
  private lastSyncedAt(key: RepoKey): number | undefined {
    return this.store.fingerprintTime(parseRepoKey(key));
  }

  /** Free space above the threshold (as last measured); serving uses the disk only then (pack cache). */
  diskOk(): boolean {
    return (this.disk.facts?.state ?? "ok") === "ok";
  }

  isServed(key: RepoKey): boolean {
    return this.catalog.has(key) && this.store.exists(parseRepoKey(key));
  }

  repoDir(key: RepoKey): string {
    return this.store.dir(parseRepoKey(key));
  }

  catalogKeys(): RepoKey[] {
    return [...this.catalog.keys()];
  }

  /**
   * Sync one repository now, fetching even when the fingerprints agree (`verify --resync`: the
   * copy may differ from what its fingerprint file says). Resolves when that sync has ended;
   * undefined when the repository is not in the catalog.
   */
  resync(key: RepoKey): Promise<ResyncResult> | undefined {
    if (!this.catalog.has(key)) return undefined;
    if (this.scheduler.trigger(key, "manual") === "ignored") return Promise.resolve({ ok: false, error: "the daemon is stopping" });
    // trigger() never starts a run synchronously: registering now cannot miss its start.
    return this.waiters.wait(key).then((r) => (r.ok ? { ok: true } : { ok: false, error: r.error.message }));
  }

  async idle(): Promise<void> {
    while (this.reconciling) await this.reconciling;
    await this.scheduler.idle();
  }

  async stop(graceMs = 10000): Promise<void> {
    this.stopped = true;
    this.stopSignal.abort();
    if (this.timer) clearInterval(this.timer);
    if (this.diskTimer) clearInterval(this.diskTimer);
    if (this.tempSweepTimer) clearTimeout(this.tempSweepTimer);
    this.webhookRefresh.cancel();
    // Every step runs even if an earlier one fails: the lock must be released in the end.
    const step = async (what: string, fn: () => unknown) => {
      try {
        await fn();
      } catch (e) {
        this.obs.log("warn", `stop: ${what} failed`, { error: (e as Error).message });
      }
    };
    await step("drain", () => this.scheduler.drain(graceMs));
    await step("close warm sessions", () => this.sessions.close());
    await step("close upstream connections", () => this.pool.close());
    // Bounded: a reconcile stuck on the network must not hold the stop.
    await step("wait for the reconcile", () => Promise.race([this.reconciling?.catch(() => undefined), new Promise((r) => setTimeout(r, 5000).unref())]));
    await step("save the scan ledger", () => this.saveScanLedger());
    await step("close the ControlMaster", () => closeControlMaster(this.controlPath, this.env));
    await step("remove the ControlMaster dir", () => removeFallbackControlDir(this.controlPath));
    this.releaseLock?.();
  }

  /**
   * Catalog refresh, purge, then the round's scans (scanLedger.ts: active repositories every
   * round, idle ones swept within their bound, paced by mirror.scan.maxPerSecond); changed
   * ones get a sync job. Repositories not on disk get their first clone without a scan.
   * In a farm the round scans only this node's share (hooks.scanShare); the ledger plans and
   * counts only those, so `checked` and `unasked` are about what this node is responsible for.
   */
  async reconcile(): Promise<void> {
    const t0 = Date.now();
    let checked = 0;
    let changed = 0;
    let unasked = 0;
    this.checkDisk(false);
    try {
      await this.refreshCatalog();
      const onDisk: RepoKey[] = [];
      for (const [key, id] of this.catalog) {
        if (this.store.exists(id)) onDisk.push(key);
        else {
          // Not on disk yet: the initial sync job scans it anyway; a scan here would cost the
          // primary one more SSH session per new repository.
          changed++;
          this.scheduler.trigger(key, "initial");
        }
      }
      this.scans.retain((k) => this.catalog.has(k));
      const owned = this.scanShare ? this.scanShare(onDisk) : onDisk;
      if (owned.length < onDisk.length) this.maintainUnowned(onDisk, new Set(owned));
      // A repository new to the ledger (a start) synced within the active window counts as active at once.
      const round = this.scans.plan(owned, t0, (k) => this.lastSyncedAt(k));
      unasked = round.unasked;
      if (round.targets.overBudget && !this.overBudgetSaid) {
        this.overBudgetSaid = true;
        this.obs.log("warn", "mirror.scan.maxPerSecond cannot check every idle repository within mirror.scan.idleBound; scanning faster to keep the bound", { neededPerSecond: Math.ceil(round.targets.perSecond), repos: onDisk.length });
      }
      this.obs.scanPlanned?.(round);
      await forEachLimit(round.scan, this.s.scanParallelism, async (key) => {
        await this.scans.take(this.stopSignal.signal);
        if (this.stopped) return;
        const id = this.catalog.get(key) ?? parseRepoKey(key);
        try {
          const { fp } = await this.engine.scan(id);
          checked++;
          this.scans.scanned(key, Date.now());
          if (this.engine.differs(id, fp)) {
            changed++;
            this.scans.changed(key, Date.now());
            this.obs.behind(key, Date.now());
            this.scheduler.trigger(key, this.store.exists(id) ? "reconcile" : "initial");
          } else if (this.engine.maintenanceDue(id)) {
            this.scheduler.trigger(key, "reconcile");
          }
        } catch (e) {
          if (isPrimaryUnreachable(e)) throw e;
          // One repository failing its scan is that repository's problem: let its job record it.
          this.scheduler.trigger(key, this.store.exists(id) ? "reconcile" : "initial");
        }
      });
      this.saveScanLedger();
      // Only a scan (or the REST catalog) actually talked to the primary.
      if (checked > 0 || this.s.catalog.kind === "rest") this.obs.primaryReachable(true);
      this.obs.reconcileDone({ durationMs: Date.now() - t0, checked, changed, unasked });
    } catch (e) {
      const msg = (e as Error).message;
      this.obs.primaryReachable(false, msg);
      this.obs.reconcileDone({ durationMs: Date.now() - t0, checked, changed, unasked, error: msg });
      this.obs.log("error", "reconcile failed; keeping the last good copies", { error: msg });
    }
  }

  /**
   * Repositories another farm node scans still get their local maintenance when it is due (a
   * check of files on disk; the sync job that runs it reads the primary's refs once, as a
   * single node's does).
   */
  /**
   * Maintenance of repositories another node scans, at the pace owned idle ones get it: each is
   * looked at at least once per mirror.scan.idleBound (a rotating slice per round), not all of
   * them every round (a few synchronous stats each: ~270,000 per round at 100,000 on 3 nodes).
   * Without a scan budget, every round looks at all of them, as a round scans all it owns.
   */
  private maintainUnowned(onDisk: readonly RepoKey[], owned: ReadonlySet<RepoKey>): void {
    const unowned = onDisk.filter((k) => !owned.has(k));
    const b = this.s.scanBudget;
    const n = b ? Math.min(unowned.length, Math.ceil((unowned.length * this.s.intervalMs) / b.idleBoundMs)) : unowned.length;
    for (let i = 0; i < n; i++) {
      const key = unowned[(this.unownedCursor + i) % unowned.length];
      if (this.engine.maintenanceDue(this.catalog.get(key) ?? parseRepoKey(key))) this.scheduler.trigger(key, "reconcile");
    }
    this.unownedCursor = unowned.length > 0 ? (this.unownedCursor + n) % unowned.length : 0;
  }

  private async refreshCatalog(): Promise<void> {
    const c = this.s.catalog;
    const listed = c.kind === "static" ? c.repos : await listRepos({ baseUrl: c.baseUrl, token: c.token, ca: c.ca });
    // One name the mirror cannot carry must not stop the others: skip it and say so.
    const { valid: all, invalid } = partitionRepoIds(listed);
    this.obs.catalogSkipped(invalid.map((b) => ({ key: repoKey(b.id), problem: b.problem })));
    const selected = selectRepos(all, this.s.projects);
    const selectionChanged = this.recordSelection();
    const decision = decidePurge(this.store.listLocal(), selected, { ...this.s.purge, selectionChanged });
    if (decision.refused) this.obs.log("warn", "purge refused", { why: decision.refused });
    const next = new Map<RepoKey, RepoId>(selected.map((id) => [repoKey(id), id]));
    // Refused purges keep the repos in service: a wrong catalog must not make clones fail.
    if (decision.refused) for (const id of this.store.listLocal()) if (!next.has(repoKey(id))) next.set(repoKey(id), id);
    for (const id of decision.remove) {
      this.scheduler.forget(repoKey(id));
      this.store.remove(id);
      this.obs.log("info", "removed repository no longer on the primary", { repo: repoKey(id) });
    }
    for (const key of this.catalog.keys()) if (!next.has(key)) this.scheduler.forget(key);
    this.catalog = next;
    this.obs.catalogChanged([...next.keys()], (k) => this.lastSyncedAt(k));
  }

  /** Remember the project selection; a change is an intended shrink that the purge guard allows. */
  private recordSelection(): boolean {
    const file = homePath(this.s.home, "selection");
    const now = JSON.stringify(this.s.projects);
    let before: string | undefined;
    try {
      before = fs.readFileSync(file, "utf8");
    } catch {
      /* first start */
    }
    if (before !== now) this.writeTolerant("the project selection", file, now, 0o644);
    return before !== undefined && before !== now;
  }

  /** Measure free space; back above the threshold after being low: reconcile now (recover by itself). */
  private checkDisk(reconcileOnRecovery = true): void {
    const before = this.disk.facts?.state;
    let facts: DiskFacts;
    try {
      facts = this.disk.check();
    } catch (e) {
      this.obs.log("warn", "cannot measure free space", { error: (e as Error).message });
      return;
    }
    this.obs.diskChecked(facts);
    if (reconcileOnRecovery && before !== undefined && before !== "ok" && facts.state === "ok") this.refreshSoon();
  }

  /**
   * Write a small state file unless it already holds `content`; a full disk only costs a
   * warning (the file is rewritten at the next start): serving must not depend on it.
   */
  private writeTolerant(what: string, file: string, content: string, mode: number): void {
    try {
      if (fs.readFileSync(file, "utf8") === content) return;
    } catch {
      /* missing: write it */
    }
    this.writeOrKeep(what, file, content, mode);
  }

  /** Write atomically; on a full disk keep the previous file and say so. */
  private writeOrKeep(what: string, file: string, content: string, mode: number): void {
    try {
      writeFileAtomic(file, content, mode);
    } catch (e) {
      if (!isNoSpace(e)) throw e;
      this.obs.log("error", `cannot write ${what}: the disk is full; keeping the previous file`, { file, error: (e as Error).message });
    }
  }

  /** Private to the daemon's account (it lists the repositories). */
  private saveScanLedger(): void {
    // Not writeTolerant's read-and-compare: the times change every round (4 MB at 100,000 repositories).
    this.writeOrKeep("scan ledger", homePath(this.s.home, "scanLedger"), this.scans.serialize(Date.now()), 0o600);
  }

  /** The last run's scan times (a missing file is a first start: everything is compared). */
  private restoreScanLedger(): void {
    const file = homePath(this.s.home, "scanLedger");
    let text: string;
    try {
      text = fs.readFileSync(file, "utf8");
    } catch {
      return;
    }
    const r = this.scans.restore(text, Date.now());
    if ("problem" in r) this.obs.log("warn", "scan ledger unreadable; comparing every repository with the primary again", { file, problem: r.problem });
  }

  /** Repositories whose last syncs in a row did not converge (see "succeeded"). */
  private readonly unconverged = new Map<RepoKey, number>();

  private onSchedulerEvent(e: SchedulerEvent<SyncOutcome>): void {
    this.observe(e);
    // After the observer: a waiter that reads /status next sees this run's result.
    this.waiters.onEvent(e);
  }

  private observe(e: SchedulerEvent<SyncOutcome>): void {
    switch (e.type) {
      case "started":
        this.obs.syncStarted(e.key, e.reason);
        break;
      case "succeeded": {
        const outcome = e.result;
        // A sync read the primary's refs: as good as a scan; one that fetched saw a change.
        this.scans.scanned(e.key, Date.now());
        if (outcome.fetched) this.scans.changed(e.key, Date.now());
        this.obs.syncSucceeded(e.key, e.reason, e.durationMs, outcome);
        // A fetch talked to the primary: it is reachable (a failed one marks it unreachable
        // above; without this a first start showed "not checked" until the second reconcile).
        if (outcome.fetched) this.obs.primaryReachable(true);
        const notice: SyncedNotice = { key: e.key, id: this.catalog.get(e.key) ?? parseRepoKey(e.key), reason: e.reason, durationMs: e.durationMs, outcome, at: Date.now() };
        for (const listener of this.syncedListeners) {
          try {
            listener(notice);
          } catch (err) {
            // A listener's bug must not break the sync loop.
            this.obs.log("error", "a sync listener failed", { repo: e.key, error: (err as Error).message });
          }
        }
        // Not converged: the primary moved while we fetched. Follow up, but only a couple of
        // times in a row, so a ref the fetch cannot store can never make a busy loop.
        const streak = outcome.converged ? 0 : (this.unconverged.get(e.key) ?? 0) + 1;
        if (streak === 0) this.unconverged.delete(e.key);
        else this.unconverged.set(e.key, streak);
        if (streak > 0 && streak <= 2) this.scheduler.trigger(e.key, "retry");
        else if (streak > 2) this.obs.log("warn", "repository does not converge with the primary's advertisement; waiting for the next reconcile", { repo: e.key });
        break;
      }
      case "failed":
        if (isPrimaryUnreachable(e.error)) this.obs.primaryReachable(false, e.error.message);
        this.obs.syncFailed(e.key, e.reason, e.error, e.durationMs, e.retryInMs);
        break;
      default:
        break;
    }
  }
}

function writeFileAtomic(file: string, content: string, mode: number): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    fs.writeFileSync(tmp, content, { mode });
  } catch (e) {
    fs.rmSync(tmp, { force: true }); // a half-written temp file must not take the last blocks
    throw e;
  }
  fs.renameSync(tmp, file);
}

/**
 * Warm v2 sessions kept for the webhook fast path: each holds an idle upload-pack on the
 * primary and a channel of a pooled connection (scanConnections x 8 channels in all).
 */
export const WARM_SESSIONS = 4;
export const WARM_SESSION_IDLE_MS = 120_000;

/** How often free space is measured between syncs (a statfs call: microseconds). */
export const DISK_CHECK_MS = 10_000;
