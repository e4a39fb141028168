/**
 * The daemon's per-repository job scheduler. Generic: it runs the `sync(key, reason, signal)`
 * it is given and knows nothing of git; what the job resolves with (R) rides on its
 * "succeeded" event. What it guarantees:
 *
 * - at most one run per repository at a time; triggers coalesce (one queue entry per repo;
 *   any number of triggers during a run cause exactly one follow-up run);
 * - at most `concurrency` runs in flight, most urgent reason first, FIFO within a priority;
 * - failures back off exponentially with jitter; a success resets the record;
 * - every run gets an AbortSignal that fires on timeout, `forget` and `drain`.
 *
 * Every operation is O(1) except `snapshot()` (O(tracked repos)) and `drain()` (once). Only
 * repositories that are queued, running, or failing are tracked: a repo whose last run
 * succeeded is dropped, so memory follows the trouble, not the catalog.
 */
import type { RepoKey, SyncReason } from "../types";
import { backoffDelay, BackoffPolicy, MAX_TIMER_MS, RandomSource, validateBackoffPolicy } from "./backoff";
import { Fifo, FifoHandle } from "./fifo";
import { decideTrigger, Phase, PRIORITY_LEVELS, priorityOf } from "./policy";

/** The work itself. Must settle soon after `signal` aborts, or the slot stays taken. */
export type SyncJob<R = unknown> = (key: RepoKey, reason: SyncReason, signal: AbortSignal) => Promise<R>;

/** Time source; the default is the real clock with unref'd timers. */
export interface SchedulerClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * The real clock. Looks the globals up on every call (so jest fake timers apply), and unrefs
 * every timer: a pending retry or timeout must never keep the daemon process alive.
 */
export const realClock: SchedulerClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export interface SchedulerOptions<R = unknown> {
  sync: SyncJob<R>;
  /** Most runs in flight at once (integer >= 1); change later with setConcurrency. Default 4. */
  concurrency?: number;
  /** A run's signal aborts after this long and the run counts as failed. Default 10 min. */
  timeoutMs?: number;
  /** Default { baseMs: 5 s, maxMs: 5 min, jitter: "full" }. */
  backoff?: BackoffPolicy;
  clock?: SchedulerClock;
  random?: RandomSource;
  /** Called synchronously on every event; exceptions are turned into process warnings. */
  onEvent?: (event: SchedulerEvent<R>) => void;
}

/** Why the scheduler aborted a run (or dropped a queued one) itself. */
export type CancelCause = "drain" | "forget";

export type SchedulerEvent<R = unknown> =
  | { type: "started"; key: RepoKey; reason: SyncReason; /** 1 + consecutive failures so far */ attempt: number }
  | { type: "succeeded"; key: RepoKey; reason: SyncReason; durationMs: number; /** What the job resolved with. */ result: R }
  | {
      type: "failed";
      key: RepoKey;
      reason: SyncReason;
      error: Error;
      /** Consecutive failures including this one. */
      attempt: number;
      durationMs: number;
      /** Undefined when no retry is scheduled (draining). */
      retryInMs: number | undefined;
    }
  /** The run's signal was aborted for timeout; a "failed" follows once the run settles. */
  | { type: "timedOut"; key: RepoKey; reason: SyncReason; timeoutMs: number }
  /** A queued run dropped, or a running run aborted, by drain/forget; no failure is recorded. */
  | { type: "cancelled"; key: RepoKey; reason: SyncReason; cause: CancelCause; wasRunning: boolean };

/** What a trigger did; useful for webhook responses and logs. */
export type TriggerOutcome =
  | "queued" // now waiting in the queue (from idle, or a backoff cut short)
  | "merged" // was already queued; still one entry, reason possibly upgraded
  | "followUp" // running; one follow-up run is (already) scheduled
  | "deferred" // backing off; the pending retry covers it
  | "ignored"; // draining: no new work

/** One repository as /status shows it. */
export interface RepoSchedule {
  key: RepoKey;
  running: boolean;
  queued: boolean;
  /** Reason of the queued or running run. */
  reason: SyncReason | undefined;
  /** Reason of the follow-up run scheduled after the current one. */
  followUp: SyncReason | undefined;
  consecutiveFailures: number;
  lastError: string | undefined;
  /** ms since epoch (clock.now) of the next retry, while backing off. */
  nextRetryAt: number | undefined;
}

export interface SchedulerCounts {
  running: number;
  queued: number;
  backingOff: number;
  /** Repositories whose last run failed. */
  failing: number;
  concurrency: number;
  draining: boolean;
}

export interface SchedulerSnapshot {
  counts: SchedulerCounts;
  /** Tracked repositories only: a repo that is absent is idle and its last run succeeded. */
  repos: RepoSchedule[];
}

/** The error a run is failed with when it exceeds timeoutMs (also the signal's reason). */
export class SyncTimeoutError extends Error {
  override readonly name = "SyncTimeoutError";
  constructor(
    readonly key: RepoKey,
    readonly timeoutMs: number,
  ) {
    super(`sync of ${key} timed out after ${timeoutMs} ms`);
  }
}

/** The signal's reason when the scheduler aborts a run for drain or forget. */
export class SyncCancelledError extends Error {
  override readonly name = "SyncCancelledError";
  constructor(
    readonly key: RepoKey,
    readonly cancelledBy: CancelCause,
  ) {
    super(cancelledBy === "drain" ? `sync of ${key} aborted: scheduler draining` : `sync of ${key} aborted: repository forgotten`);
  }
}

interface Run {
  reason: SyncReason;
  controller: AbortController;
  startedAt: number;
  timer: unknown;
  /** Set when the scheduler aborted the run; from then on the run's own outcome is ignored. */
  abortedBy: "timeout" | CancelCause | undefined;
}

interface Entry {
  readonly key: RepoKey;
  queued: { reason: SyncReason; priority: number; handle: FifoHandle<Entry> } | undefined;
  run: Run | undefined;
  followUp: SyncReason | undefined;
  retry: { timer: unknown; at: number } | undefined;
  consecutiveFailures: number;
  lastError: string | undefined;
  lastDelayMs: number | undefined;
  /** forget() while running: drop the entry when the run settles (unless re-triggered). */
  forgetWhenDone: boolean;
  /** No longer in the map; late callbacks must leave it alone. */
  removed: boolean;
}

const DEFAULTS = {
  concurrency: 4,
  timeoutMs: 10 * 60_000,
  backoff: { baseMs: 5_000, maxMs: 5 * 60_000, jitter: "full" } as BackoffPolicy,
};

function validateConcurrency(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`scheduler concurrency must be an integer >= 1, got ${n}`);
}

function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

/** How a run settled: the job's result, or its error. */
type Settled<R> = { ok: true; result: R } | { ok: false; error: Error };

export class Scheduler<R = unknown> {
  private readonly sync: SyncJob<R>;
  private readonly timeoutMs: number;
  private readonly backoff: BackoffPolicy;
  private readonly clock: SchedulerClock;
  private readonly random: RandomSource;
  private readonly onEvent: ((event: SchedulerEvent<R>) => void) | undefined;
  private concurrency: number;

  private readonly entries = new Map<RepoKey, Entry>();
  /** One FIFO per priority: picking the next run is O(PRIORITY_LEVELS), not a scan. */
  private readonly queues: Fifo<Entry>[] = Array.from({ length: PRIORITY_LEVELS }, () => new Fifo<Entry>());
  private readonly running = new Set<Entry>();
  private queuedCount = 0;
  private backingOffCount = 0;
  private failingCount = 0;
  private draining = false;
  private pumpScheduled = false;
  private idleWaiters: Array<() => void> = [];

  constructor(options: SchedulerOptions<R>) {
    this.sync = options.sync;
    this.concurrency = options.concurrency ?? DEFAULTS.concurrency;
    validateConcurrency(this.concurrency);
    this.timeoutMs = options.timeoutMs ?? DEFAULTS.timeoutMs;
    if (!Number.isFinite(this.timeoutMs) || this.timeoutMs <= 0 || this.timeoutMs > MAX_TIMER_MS) {
      throw new RangeError(`scheduler timeoutMs must be between 1 and ${MAX_TIMER_MS} ms, got ${this.timeoutMs}`);
    }
    this.backoff = options.backoff ?? DEFAULTS.backoff;
    validateBackoffPolicy(this.backoff);
    this.clock = options.clock ?? realClock;
    this.random = options.random ?? Math.random;
    this.onEvent = options.onEvent;
  }

  /** Ask for a sync of one repository. Never starts it synchronously (see schedulePump). */
  trigger(key: RepoKey, reason: SyncReason): TriggerOutcome {
    if (this.draining) return "ignored";
    let entry = this.entries.get(key);
    if (!entry) {
      entry = {
        key,
        queued: undefined,
        run: undefined,
        followUp: undefined,
        retry: undefined,
        consecutiveFailures: 0,
        lastError: undefined,
        lastDelayMs: undefined,
        forgetWhenDone: false,
        removed: false,
      };
      this.entries.set(key, entry);
    }
    return this.apply(entry, reason);
  }

  /** Change the bound at runtime. Lowering it never aborts runs; it only delays new starts. */
  setConcurrency(n: number): void {
    validateConcurrency(n);
    this.concurrency = n;
    this.schedulePump();
  }

  /**
   * The repository left the catalog: drop its queue entry, retry timer and failure record.
   * A running run is aborted (cause "forget"); a trigger before it settles revives the repo
   * as a follow-up, so two runs of one repository never overlap. False if it was not tracked.
   */
  forget(key: RepoKey): boolean {
    const entry = this.entries.get(key);
    if (!entry) return false;
    if (entry.queued) this.emit({ type: "cancelled", key, reason: entry.queued.reason, cause: "forget", wasRunning: false });
    if (entry.run) {
      // Keep the entry until the run settles, so a re-trigger meanwhile becomes a follow-up
      // instead of a second, overlapping run of the same repository.
      this.clearRecord(entry);
      entry.followUp = undefined;
      entry.forgetWhenDone = true;
      this.abortRun(entry, entry.run, "forget");
    } else {
      this.remove(entry);
    }
    this.checkIdle();
    return true;
  }

  /**
   * Shut down: no new starts, queued runs and retry timers dropped, running runs given graceMs
   * to finish and then aborted (cause "drain"). Resolves when nothing runs, which needs every
   * run to honour its signal: the daemon keeps its own hard deadline. Triggers are ignored
   * from now on; there is no way back (make a new Scheduler).
   */
  drain(graceMs: number): Promise<void> {
    if (!(graceMs >= 0) || graceMs > MAX_TIMER_MS) throw new RangeError(`drain graceMs must be between 0 and ${MAX_TIMER_MS}, got ${graceMs}`);
    this.draining = true;
    for (const queue of this.queues) {
      for (let entry = queue.shift(); entry; entry = queue.shift()) {
        const reason = entry.queued!.reason;
        entry.queued = undefined;
        this.queuedCount--;
        this.emit({ type: "cancelled", key: entry.key, reason, cause: "drain", wasRunning: false });
        this.releaseIfClean(entry);
      }
    }
    for (const entry of this.entries.values()) {
      this.cancelRetry(entry);
      entry.followUp = undefined;
    }
    this.checkIdle();
    const done = this.idle();
    if (this.running.size > 0) {
      const timer = this.clock.setTimeout(() => {
        for (const entry of [...this.running]) this.abortRun(entry, entry.run!, "drain");
      }, graceMs);
      void done.then(() => this.clock.clearTimeout(timer));
    }
    return done;
  }

  /**
   * Resolves when nothing is queued and nothing runs. Repositories backing off do not count:
   * their retry is not work in hand (so "initial sync complete" does not wait for a dead repo).
   */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  counts(): SchedulerCounts {
    return {
      running: this.running.size,
      queued: this.queuedCount,
      backingOff: this.backingOffCount,
      failing: this.failingCount,
      concurrency: this.concurrency,
      draining: this.draining,
    };
  }

  /** One repository; undefined means idle with no failure on record. */
  repo(key: RepoKey): RepoSchedule | undefined {
    const entry = this.entries.get(key);
    return entry && this.describe(entry);
  }

  snapshot(): SchedulerSnapshot {
    const repos: RepoSchedule[] = [];
    for (const entry of this.entries.values()) repos.push(this.describe(entry));
    return { counts: this.counts(), repos };
  }

  // ---- internals -------------------------------------------------------------------------

  private phaseOf(entry: Entry): Phase {
    if (entry.run) return "running";
    if (entry.queued) return "queued";
    if (entry.retry) return "backoff";
    return "idle";
  }

  private apply(entry: Entry, reason: SyncReason): TriggerOutcome {
    const phase = this.phaseOf(entry);
    const decision = decideTrigger(phase, reason, phase === "queued" ? entry.queued!.reason : entry.followUp);
    switch (decision.action) {
      case "enqueue":
        this.cancelRetry(entry);
        this.enqueue(entry, decision.reason);
        return "queued";
      case "merge":
        if (decision.reason !== entry.queued!.reason) {
          // More urgent now: move to the tail of the more urgent queue (FIFO by urgency time).
          this.dequeue(entry);
          this.enqueue(entry, decision.reason);
        }
        return "merged";
      case "followUp":
        entry.followUp = decision.reason;
        entry.forgetWhenDone = false; // re-triggered after forget(): the repo is wanted again
        return "followUp";
      case "defer":
        return "deferred";
    }
  }

  private enqueue(entry: Entry, reason: SyncReason): void {
    const priority = priorityOf(reason);
    entry.queued = { reason, priority, handle: this.queues[priority].push(entry) };
    this.queuedCount++;
    this.schedulePump();
  }

  private dequeue(entry: Entry): void {
    this.queues[entry.queued!.priority].remove(entry.queued!.handle);
    entry.queued = undefined;
    this.queuedCount--;
  }

  private cancelRetry(entry: Entry): void {
    if (!entry.retry) return;
    this.clock.clearTimeout(entry.retry.timer);
    entry.retry = undefined;
    this.backingOffCount--;
  }

  /**
   * Starts happen in a microtask, never inside trigger(): triggers made in one tick are all
   * queued before the first start (so a webhook among a burst of reconciles goes first),
   * and a sync job that triggers from inside itself cannot re-enter the scheduler.
   */
  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    void Promise.resolve().then(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    while (!this.draining && this.running.size < this.concurrency && this.queuedCount > 0) {
      const entry = this.nextQueued()!;
      const reason = entry.queued!.reason;
      entry.queued = undefined;
      this.queuedCount--;
      this.start(entry, reason);
    }
  }

  private nextQueued(): Entry | undefined {
    for (const queue of this.queues) {
      if (queue.size > 0) return queue.shift();
    }
    return undefined;
  }

  private start(entry: Entry, reason: SyncReason): void {
    const controller = new AbortController();
    const run: Run = { reason, controller, startedAt: this.clock.now(), timer: undefined, abortedBy: undefined };
    run.timer = this.clock.setTimeout(() => {
      if (!this.abortRun(entry, run, "timeout")) return;
      this.emit({ type: "timedOut", key: entry.key, reason, timeoutMs: this.timeoutMs });
    }, this.timeoutMs);
    entry.run = run;
    this.running.add(entry);
    this.emit({ type: "started", key: entry.key, reason, attempt: entry.consecutiveFailures + 1 });

    let result: Promise<R>;
    try {
      result = Promise.resolve(this.sync(entry.key, reason, controller.signal));
    } catch (e) {
      result = Promise.reject(e); // a job that throws synchronously fails like any other
    }
    result.then(
      (r) => this.finish(entry, run, { ok: true, result: r }),
      (e: unknown) => this.finish(entry, run, { ok: false, error: toError(e) }),
    );
  }

  /** Abort a run once; false if it was already aborted (the first cause wins). */
  private abortRun(entry: Entry, run: Run, cause: "timeout" | CancelCause): boolean {
    if (run.abortedBy !== undefined || entry.run !== run) return false;
    run.abortedBy = cause;
    run.controller.abort(cause === "timeout" ? new SyncTimeoutError(entry.key, this.timeoutMs) : new SyncCancelledError(entry.key, cause));
    return true;
  }

  private finish(entry: Entry, run: Run, settled: Settled<R>): void {
    this.clock.clearTimeout(run.timer);
    entry.run = undefined;
    this.running.delete(entry);
    const durationMs = this.clock.now() - run.startedAt;
    const key = entry.key;
    const reason = run.reason;

    // Once the scheduler aborted a run, what the job did after that does not count: a timeout
    // is a failure even if the job then resolved, and drain/forget are not the repo's fault.
    // A repo forgotten mid-run gets no record at all, whatever the run did.
    const cancelledBy = entry.forgetWhenDone ? "forget" : run.abortedBy === "timeout" ? undefined : run.abortedBy;
    if (cancelledBy !== undefined) {
      this.emit({ type: "cancelled", key, reason, cause: cancelledBy, wasRunning: true });
    } else if (run.abortedBy === "timeout") {
      this.recordFailure(entry, reason, new SyncTimeoutError(key, this.timeoutMs), durationMs);
    } else if (!settled.ok) {
      this.recordFailure(entry, reason, settled.error, durationMs);
    } else {
      this.clearRecord(entry);
      this.emit({ type: "succeeded", key, reason, durationMs, result: settled.result });
    }

    if (!entry.removed) {
      if (entry.forgetWhenDone) {
        this.remove(entry);
      } else if (entry.followUp !== undefined) {
        const followUp = entry.followUp;
        entry.followUp = undefined;
        if (!this.draining) this.apply(entry, followUp); // may cut the new backoff short
      }
      this.releaseIfClean(entry);
    }
    this.schedulePump();
    this.checkIdle();
  }

  private recordFailure(entry: Entry, reason: SyncReason, error: Error, durationMs: number): void {
    if (entry.consecutiveFailures === 0) this.failingCount++;
    entry.consecutiveFailures++;
    entry.lastError = error.message;
    let retryInMs: number | undefined;
    if (!this.draining) {
      retryInMs = backoffDelay(entry.consecutiveFailures, this.backoff, this.random, entry.lastDelayMs);
      entry.lastDelayMs = retryInMs;
      const timer = this.clock.setTimeout(() => {
        if (entry.retry?.timer !== timer) return;
        entry.retry = undefined;
        this.backingOffCount--;
        if (!this.draining && !entry.removed) this.enqueue(entry, "retry");
      }, retryInMs);
      entry.retry = { timer, at: this.clock.now() + retryInMs };
      this.backingOffCount++;
    }
    this.emit({ type: "failed", key: entry.key, reason, error, attempt: entry.consecutiveFailures, durationMs, retryInMs });
  }

  /** Drop an entry that has nothing to say: idle, no failure on record. Keeps memory bounded. */
  private releaseIfClean(entry: Entry): void {
    if (!entry.removed && !entry.run && !entry.queued && !entry.retry && entry.consecutiveFailures === 0) this.remove(entry);
  }

  /** Forget everything about an entry that is not running; keeps the counters exact. */
  private remove(entry: Entry): void {
    if (entry.queued) this.dequeue(entry);
    this.clearRecord(entry);
    entry.followUp = undefined;
    entry.removed = true;
    entry.forgetWhenDone = false;
    if (this.entries.get(entry.key) === entry) this.entries.delete(entry.key);
  }

  /** Drop the failure record and any pending retry. */
  private clearRecord(entry: Entry): void {
    this.cancelRetry(entry);
    if (entry.consecutiveFailures > 0) this.failingCount--;
    entry.consecutiveFailures = 0;
    entry.lastError = undefined;
    entry.lastDelayMs = undefined;
  }

  private isIdle(): boolean {
    return this.queuedCount === 0 && this.running.size === 0;
  }

  private checkIdle(): void {
    if (!this.isIdle() || this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private describe(entry: Entry): RepoSchedule {
    return {
      key: entry.key,
      running: entry.run !== undefined,
      queued: entry.queued !== undefined,
      reason: entry.run?.reason ?? entry.queued?.reason,
      followUp: entry.followUp,
      consecutiveFailures: entry.consecutiveFailures,
      lastError: entry.lastError,
      nextRetryAt: entry.retry?.at,
    };
  }

  /** A listener bug must not corrupt scheduler state, but must not vanish silently either. */
  private emit(event: SchedulerEvent<R>): void {
    if (!this.onEvent) return;
    try {
      this.onEvent(event);
    } catch (e) {
      process.emitWarning(`scheduler onEvent listener threw on ${event.type}: ${toError(e).message}`, "SchedulerListenerWarning");
    }
  }
}
