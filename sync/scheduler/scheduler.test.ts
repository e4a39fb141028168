import type { RepoKey, SyncReason } from "../types";
import { realClock, Scheduler, SchedulerClock, SchedulerEvent, SchedulerOptions, SyncCancelledError, SyncJob, SyncTimeoutError } from "./scheduler";

/** One call of the fake sync job, settled by the test. */
interface FakeRun {
  key: RepoKey;
  reason: SyncReason;
  signal: AbortSignal;
  settled: boolean;
  succeed(): void;
  fail(message?: string): void;
}

/**
 * A scheduler around a job the test settles by hand. The job honours its signal (rejects with
 * signal.reason) unless `ignoreAbort`; in-flight counts are taken from the job's side.
 */
function setup(options: Partial<SchedulerOptions> & { ignoreAbort?: boolean } = {}) {
  const runs: FakeRun[] = [];
  const events: SchedulerEvent[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const perKey = new Map<RepoKey, number>();
  let overlaps = 0;

  const sync: SyncJob = (key, reason, signal) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    perKey.set(key, (perKey.get(key) ?? 0) + 1);
    if (perKey.get(key)! > 1) overlaps++;
    return new Promise<void>((resolve, reject) => {
      const run: FakeRun = {
        key,
        reason,
        signal,
        settled: false,
        succeed: () => {
          run.settled = true;
          resolve();
        },
        fail: (message = `fetch of ${key} failed`) => {
          run.settled = true;
          reject(new Error(message));
        },
      };
      if (!options.ignoreAbort) signal.addEventListener("abort", () => { run.settled = true; reject(signal.reason); });
      runs.push(run);
    }).finally(() => {
      inFlight--;
      perKey.set(key, perKey.get(key)! - 1);
    });
  };

  const scheduler = new Scheduler({
    sync,
    concurrency: 2,
    timeoutMs: 60_000,
    backoff: { baseMs: 1000, maxMs: 8000 },
    random: () => 0.5,
    onEvent: (e) => events.push(e),
    ...options,
  });
  return {
    scheduler,
    runs,
    events,
    active: () => runs.filter((r) => !r.settled),
    /** The one unsettled run of `key` (fails the test if there is none or more than one). */
    runOf: (key: RepoKey) => {
      const found = runs.filter((r) => r.key === key && !r.settled);
      expect(found).toHaveLength(1);
      return found[0];
    },
    started: () => runs.map((r) => r.key),
    maxInFlight: () => maxInFlight,
    overlaps: () => overlaps,
    ofType: <T extends SchedulerEvent["type"]>(type: T) => events.filter((e): e is Extract<SchedulerEvent, { type: T }> => e.type === type),
  };
}

/** Let promise chains (start, settle, follow-up, pump) run; promises are not faked. */
async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

const T0 = 1_700_000_000_000;

beforeEach(() => {
  jest.useFakeTimers({ now: T0 });
});
afterEach(() => {
  jest.useRealTimers();
});

describe("coalescing", () => {
  it("runs a repo triggered many times while queued exactly once, with the most urgent reason", async () => {
    const h = setup({ concurrency: 1 });
    h.scheduler.trigger("P/blocker", "manual");
    await flush();
    expect(h.scheduler.trigger("P/a", "reconcile")).toBe("queued");
    expect(h.scheduler.trigger("P/a", "reconcile")).toBe("merged");
    expect(h.scheduler.trigger("P/a", "webhook")).toBe("merged");
    expect(h.scheduler.trigger("P/a", "initial")).toBe("merged");
    expect(h.scheduler.counts().queued).toBe(1);
    expect(h.scheduler.repo("P/a")).toMatchObject({ queued: true, running: false, reason: "webhook" });

    h.runOf("P/blocker").succeed();
    await flush();
    h.runOf("P/a").succeed();
    await h.scheduler.idle();
    expect(h.runs.filter((r) => r.key === "P/a").map((r) => r.reason)).toEqual(["webhook"]);
  });

  it("schedules exactly one follow-up for any number of triggers during a run", async () => {
    const h = setup();
    h.scheduler.trigger("P/a", "reconcile");
    await flush();
    expect(h.runOf("P/a").reason).toBe("reconcile");

    const outcomes = [];
    for (let i = 0; i < 10; i++) outcomes.push(h.scheduler.trigger("P/a", i === 4 ? "webhook" : "reconcile"));
    expect(outcomes).toEqual(Array(10).fill("followUp"));
    expect(h.scheduler.repo("P/a")).toMatchObject({ running: true, queued: false, followUp: "webhook" });

    h.runOf("P/a").succeed();
    await flush();
    // the follow-up carries the most urgent reason asked during the run
    expect(h.runOf("P/a").reason).toBe("webhook");
    h.runOf("P/a").succeed();
    await h.scheduler.idle();
    expect(h.runs.filter((r) => r.key === "P/a")).toHaveLength(2);
    expect(h.overlaps()).toBe(0);
  });

  it("does not lose a trigger that arrives while a run is failing", async () => {
    const h = setup();
    h.scheduler.trigger("P/a", "reconcile");
    await flush();
    h.scheduler.trigger("P/a", "webhook");
    h.runOf("P/a").fail();
    await flush();
    // the failure set a backoff, but the webhook follow-up cuts it short (see "webhook vs backoff")
    expect(h.runOf("P/a").reason).toBe("webhook");
  });

  it("lets a reconcile follow-up wait for the retry when the run failed", async () => {
    const h = setup();
    h.scheduler.trigger("P/a", "initial");
    await flush();
    h.scheduler.trigger("P/a", "reconcile");
    h.runOf("P/a").fail();
    await flush();
    expect(h.active()).toHaveLength(0);
    expect(h.scheduler.repo("P/a")).toMatchObject({ consecutiveFailures: 1, nextRetryAt: T0 + 500, followUp: undefined });
  });
});

describe("concurrency", () => {
  it("never runs more than the bound, and uses all of it", async () => {
    const h = setup({ concurrency: 3 });
    for (let i = 0; i < 40; i++) h.scheduler.trigger(`P/r${i}`, i % 2 ? "reconcile" : "initial");
    await flush();
    expect(h.active()).toHaveLength(3);
    // settle in a scrambled order, some failing, re-triggering a few as we go
    let step = 0;
    while (h.active().length > 0) {
      const active = h.active();
      const pick = active[(step * 7) % active.length];
      if (step % 5 === 0) pick.fail();
      else pick.succeed();
      if (step % 3 === 0) h.scheduler.trigger(`P/r${step % 40}`, "webhook");
      step++;
      await flush();
      expect(h.scheduler.counts().running).toBeLessThanOrEqual(3);
    }
    await h.scheduler.idle();
    expect(h.maxInFlight()).toBe(3);
    expect(h.overlaps()).toBe(0);
  });

  it("can be raised and lowered at runtime without aborting anything", async () => {
    const h = setup({ concurrency: 2 });
    for (let i = 0; i < 10; i++) h.scheduler.trigger(`P/r${i}`, "reconcile");
    await flush();
    expect(h.active()).toHaveLength(2);

    h.scheduler.setConcurrency(5);
    await flush();
    expect(h.active()).toHaveLength(5);

    h.scheduler.setConcurrency(1);
    await flush();
    expect(h.active()).toHaveLength(5); // running ones keep going
    expect(h.active().every((r) => !r.signal.aborted)).toBe(true);
    for (let i = 0; i < 4; i++) {
      h.active()[0].succeed();
      await flush();
      expect(h.active()).toHaveLength(4 - i); // no new start until below the new bound
    }
    h.active()[0].succeed();
    await flush();
    expect(h.active()).toHaveLength(1);
    expect(h.scheduler.counts()).toMatchObject({ concurrency: 1, running: 1, queued: 4 });
    expect(() => h.scheduler.setConcurrency(0)).toThrow(/concurrency must be an integer >= 1/);
  });
});

describe("priority", () => {
  it("starts webhook/manual, then initial, then retry, then reconcile; FIFO within each", async () => {
    const h = setup({ concurrency: 1 });
    h.scheduler.trigger("P/blocker", "manual");
    await flush();
    // make P/failing back off, and let its retry come due while the blocker runs
    h.scheduler.trigger("P/failing", "initial");
    h.runOf("P/blocker").succeed();
    await flush();
    h.runOf("P/failing").fail();
    h.scheduler.trigger("P/blocker", "manual");
    await flush();
    await jest.advanceTimersByTimeAsync(500);
    expect(h.scheduler.repo("P/failing")).toMatchObject({ queued: true, reason: "retry" });

    for (const [key, reason] of [
      ["P/rc1", "reconcile"],
      ["P/in1", "initial"],
      ["P/rc2", "reconcile"],
      ["P/wh1", "webhook"],
      ["P/in2", "initial"],
      ["P/ma1", "manual"],
      ["P/wh2", "webhook"],
    ] as const) {
      h.scheduler.trigger(key, reason);
    }
    // a queued reconcile upgraded by a webhook moves to the back of the webhook queue
    h.scheduler.trigger("P/rc1", "webhook");

    const order: string[] = [];
    while (h.active().length > 0) {
      const run = h.active()[0];
      order.push(run.key);
      run.succeed();
      await flush();
    }
    expect(order).toEqual(["P/blocker", "P/wh1", "P/ma1", "P/wh2", "P/rc1", "P/in1", "P/in2", "P/failing", "P/rc2"]);
  });

  it("puts a webhook ahead of a 10,000-repo reconcile backlog", async () => {
    const h = setup({ concurrency: 1 });
    for (let i = 0; i < 10_000; i++) h.scheduler.trigger(`P/r${i}`, "reconcile");
    await flush();
    expect(h.runOf("P/r0").reason).toBe("reconcile");
    h.scheduler.trigger("P/hot", "webhook");
    h.runOf("P/r0").succeed();
    await flush();
    expect(h.active().map((r) => r.key)).toEqual(["P/hot"]);
    expect(h.scheduler.counts().queued).toBe(9_999);
  });

  it("queues every trigger of one tick before starting, so a webhook among them goes first", async () => {
    const h = setup({ concurrency: 1 });
    h.scheduler.trigger("P/rc", "reconcile");
    h.scheduler.trigger("P/wh", "webhook");
    await flush();
    expect(h.active().map((r) => r.key)).toEqual(["P/wh"]);
  });
});

describe("backoff", () => {
  it("retries after exponentially growing delays, capped, with the injected jitter", async () => {
    // random 0.5 with full jitter: delay = 0.5 * min(8000, 1000 * 2^(attempt-1))
    const h = setup({ concurrency: 1 });
    h.scheduler.trigger("P/a", "initial");
    await flush();
    const expected = [500, 1000, 2000, 4000, 4000, 4000];
    for (let attempt = 1; attempt <= expected.length; attempt++) {
      h.runOf("P/a").fail(`boom ${attempt}`);
      await flush();
      const delay = expected[attempt - 1];
      expect(h.ofType("failed").at(-1)).toMatchObject({ key: "P/a", attempt, retryInMs: delay });
      expect(h.scheduler.repo("P/a")).toMatchObject({
        running: false,
        queued: false,
        consecutiveFailures: attempt,
        lastError: `boom ${attempt}`,
        nextRetryAt: Date.now() + delay,
      });
      expect(h.scheduler.counts()).toMatchObject({ backingOff: 1, failing: 1 });
      await jest.advanceTimersByTimeAsync(delay - 1);
      expect(h.active()).toHaveLength(0); // not a moment early
      await jest.advanceTimersByTimeAsync(1);
      expect(h.runOf("P/a").reason).toBe("retry");
      expect(h.ofType("started").at(-1)).toMatchObject({ key: "P/a", reason: "retry", attempt: attempt + 1 });
    }
  });

  it("uses decorrelated jitter when asked, carrying the previous delay", async () => {
    const h = setup({ backoff: { baseMs: 1000, maxMs: 8000, jitter: "decorrelated" }, random: () => 0.5 });
    h.scheduler.trigger("P/a", "initial");
    await flush();
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      h.runOf("P/a").fail();
      await flush();
      const delay = h.ofType("failed").at(-1)!.retryInMs!;
      delays.push(delay);
      await jest.advanceTimersByTimeAsync(delay);
    }
    // base + 0.5 * (min(max, 3 * previous) - base), previous starting at base: upper 3000, 6000, 8000, 8000
    expect(delays).toEqual([2000, 3500, 4500, 4500]);
  });

  it("resets the failure record on success, and forgets a healthy repo entirely", async () => {
    const h = setup();
    h.scheduler.trigger("P/a", "initial");
    await flush();
    h.runOf("P/a").fail();
    await jest.advanceTimersByTimeAsync(500);
    h.runOf("P/a").fail();
    await jest.advanceTimersByTimeAsync(1000);
    expect(h.scheduler.repo("P/a")).toMatchObject({ consecutiveFailures: 2, running: true });
    h.runOf("P/a").succeed();
    await flush();
    expect(h.ofType("succeeded").at(-1)).toMatchObject({ key: "P/a", reason: "retry" });
    expect(h.scheduler.repo("P/a")).toBeUndefined();
    expect(h.scheduler.counts()).toMatchObject({ failing: 0, backingOff: 0, running: 0, queued: 0 });

    // the next failure starts from the first delay again
    h.scheduler.trigger("P/a", "reconcile");
    await flush();
    h.runOf("P/a").fail();
    await flush();
    expect(h.ofType("failed").at(-1)).toMatchObject({ attempt: 1, retryInMs: 500 });
  });

  it("counts a job that throws synchronously as a failure", async () => {
    const events: SchedulerEvent[] = [];
    const scheduler = new Scheduler({
      sync: () => {
        throw new Error("no such remote");
      },
      backoff: { baseMs: 1000, maxMs: 1000 },
      onEvent: (e) => events.push(e),
    });
    scheduler.trigger("P/a", "initial");
    await scheduler.idle();
    expect(scheduler.repo("P/a")).toMatchObject({ consecutiveFailures: 1, lastError: "no such remote" });
    expect(events.map((e) => e.type)).toEqual(["started", "failed"]);
  });
});

describe("results", () => {
  it("hands each run's result to its own succeeded event, typed, with no state kept beside it", async () => {
    const events: SchedulerEvent<{ bytes: number }>[] = [];
    const scheduler = new Scheduler<{ bytes: number }>({
      sync: async (key) => ({ bytes: key.length }),
      onEvent: (e) => events.push(e),
    });
    scheduler.trigger("P/a", "initial");
    scheduler.trigger("P/bcd", "webhook");
    await scheduler.idle();
    const succeeded = events.flatMap((e) => (e.type === "succeeded" ? [[e.key, e.result.bytes]] : []));
    expect(succeeded.sort()).toEqual([["P/a", 3], ["P/bcd", 5]]);
    expect(scheduler.snapshot().repos).toEqual([]);
  });
});

describe("webhook vs backoff", () => {
  it("runs a webhook-triggered repo now even while it backs off; routine triggers wait", async () => {
    const h = setup({ backoff: { baseMs: 3_600_000, maxMs: 3_600_000 }, random: () => 0.99 });
    h.scheduler.trigger("P/a", "initial");
    await flush();
    h.runOf("P/a").fail("primary down");
    await flush();
    const retryAt = h.scheduler.repo("P/a")!.nextRetryAt!;
    expect(retryAt).toBe(T0 + 3_564_000);

    expect(h.scheduler.trigger("P/a", "reconcile")).toBe("deferred");
    expect(h.scheduler.trigger("P/a", "initial")).toBe("deferred");
    await flush();
    expect(h.active()).toHaveLength(0);

    expect(h.scheduler.trigger("P/a", "webhook")).toBe("queued");
    await flush(); // no time passes
    expect(h.runOf("P/a").reason).toBe("webhook");
    expect(h.scheduler.repo("P/a")).toMatchObject({ running: true, consecutiveFailures: 1, nextRetryAt: undefined });
    expect(h.scheduler.counts().backingOff).toBe(0);

    // the cancelled retry timer does not fire a second run later
    h.runOf("P/a").succeed();
    await jest.advanceTimersByTimeAsync(3_600_000);
    expect(h.runs.filter((r) => r.key === "P/a")).toHaveLength(2);
  });

  it("keeps counting failures when the webhook-forced run fails too", async () => {
    const h = setup({ concurrency: 1 });
    h.scheduler.trigger("P/a", "initial");
    await flush();
    h.runOf("P/a").fail();
    await flush();
    h.scheduler.trigger("P/a", "manual");
    await flush();
    h.runOf("P/a").fail();
    await flush();
    expect(h.ofType("failed").at(-1)).toMatchObject({ attempt: 2, retryInMs: 1000 });
  });
});

describe("timeout", () => {
  it("aborts the signal after timeoutMs and records a timeout failure", async () => {
    const h = setup({ timeoutMs: 30_000 });
    h.scheduler.trigger("P/slow", "webhook");
    await flush();
    const run = h.runOf("P/slow");
    await jest.advanceTimersByTimeAsync(29_999);
    expect(run.signal.aborted).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    expect(run.signal.aborted).toBe(true);
    expect(run.signal.reason).toBeInstanceOf(SyncTimeoutError);
    await flush();

    expect(h.events.map((e) => e.type)).toEqual(["started", "timedOut", "failed"]);
    const failed = h.ofType("failed")[0];
    expect(failed.error).toBeInstanceOf(SyncTimeoutError);
    expect(failed).toMatchObject({ key: "P/slow", attempt: 1, durationMs: 30_000, retryInMs: 500 });
    expect(h.scheduler.repo("P/slow")).toMatchObject({ consecutiveFailures: 1, lastError: "sync of P/slow timed out after 30000 ms" });
  });

  it("counts a timed-out run as failed even if the job ignores the signal and resolves later", async () => {
    const h = setup({ timeoutMs: 1000, ignoreAbort: true });
    h.scheduler.trigger("P/slow", "webhook");
    await flush();
    await jest.advanceTimersByTimeAsync(1000);
    // the slot stays taken until the job settles: the bound is about real work in flight
    expect(h.scheduler.counts().running).toBe(1);
    await jest.advanceTimersByTimeAsync(5000);
    h.runOf("P/slow").succeed();
    await flush();
    expect(h.ofType("succeeded")).toHaveLength(0);
    expect(h.ofType("failed")[0].error).toBeInstanceOf(SyncTimeoutError);
    expect(h.ofType("failed")[0].durationMs).toBe(6000);
  });

  it("clears the timeout of a run that finished in time", async () => {
    const h = setup({ timeoutMs: 1000 });
    h.scheduler.trigger("P/a", "webhook");
    await flush();
    const run = h.runOf("P/a");
    run.succeed();
    await jest.advanceTimersByTimeAsync(2000);
    expect(run.signal.aborted).toBe(false);
    expect(h.ofType("timedOut")).toHaveLength(0);
    expect(jest.getTimerCount()).toBe(0);
  });
});

describe("drain", () => {
  it("drops queued runs and retries, lets running ones finish within the grace, then aborts the rest", async () => {
    const h = setup({ concurrency: 2 });
    h.scheduler.trigger("P/failing", "initial");
    await flush();
    h.runOf("P/failing").fail();
    await flush(); // P/failing now backs off for 500 ms
    for (const key of ["P/stuck", "P/quick", "P/q1", "P/q2"]) h.scheduler.trigger(key, "reconcile");
    await flush();
    expect(h.active().map((r) => r.key)).toEqual(["P/stuck", "P/quick"]);

    let drained = false;
    const draining = h.scheduler.drain(10_000).then(() => (drained = true));
    expect(h.ofType("cancelled").map((e) => [e.key, e.wasRunning])).toEqual([
      ["P/q1", false],
      ["P/q2", false],
    ]);
    expect(h.scheduler.counts()).toMatchObject({ queued: 0, backingOff: 0, running: 2, draining: true });
    expect(h.scheduler.trigger("P/new", "webhook")).toBe("ignored");
    expect(h.scheduler.trigger("P/quick", "webhook")).toBe("ignored"); // no follow-up either

    await jest.advanceTimersByTimeAsync(2000);
    h.runOf("P/quick").succeed();
    await flush();
    expect(drained).toBe(false); // P/stuck still runs
    const stuck = h.runOf("P/stuck");
    await jest.advanceTimersByTimeAsync(7999);
    expect(stuck.signal.aborted).toBe(false);
    expect(drained).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    expect(stuck.signal.aborted).toBe(true);
    expect(stuck.signal.reason).toBeInstanceOf(SyncCancelledError);
    await draining;

    expect(h.ofType("cancelled").at(-1)).toMatchObject({ key: "P/stuck", cause: "drain", wasRunning: true });
    expect(h.scheduler.repo("P/stuck")).toBeUndefined(); // shutdown is not the repo's failure
    expect(h.scheduler.repo("P/failing")).toMatchObject({ consecutiveFailures: 1, nextRetryAt: undefined });
    await jest.advanceTimersByTimeAsync(60_000);
    expect(h.started()).toEqual(["P/failing", "P/stuck", "P/quick"]); // q1, q2 and the retry never ran
    expect(jest.getTimerCount()).toBe(0);
  });

  it("resolves at once when nothing runs", async () => {
    const h = setup();
    h.scheduler.trigger("P/a", "reconcile"); // queued, not yet started
    await h.scheduler.drain(1000);
    await flush();
    expect(h.runs).toHaveLength(0);
  });

  it("records a real failure during the grace without scheduling a retry", async () => {
    const h = setup();
    h.scheduler.trigger("P/a", "reconcile");
    await flush();
    const draining = h.scheduler.drain(1000);
    h.runOf("P/a").fail("disk full");
    await draining;
    expect(h.ofType("failed")[0]).toMatchObject({ attempt: 1, retryInMs: undefined });
    expect(h.scheduler.repo("P/a")).toMatchObject({ lastError: "disk full", nextRetryAt: undefined });
  });
});

describe("forget", () => {
  it("drops a queued repo before it runs", async () => {
    const h = setup({ concurrency: 1 });
    h.scheduler.trigger("P/blocker", "manual");
    h.scheduler.trigger("P/gone", "initial");
    expect(h.scheduler.forget("P/gone")).toBe(true);
    expect(h.scheduler.forget("P/never-seen")).toBe(false);
    await flush();
    h.runOf("P/blocker").succeed();
    await h.scheduler.idle();
    expect(h.started()).toEqual(["P/blocker"]);
    expect(h.ofType("cancelled")).toEqual([{ type: "cancelled", key: "P/gone", reason: "initial", cause: "forget", wasRunning: false }]);
  });

  it("cancels a pending retry and the failure record", async () => {
    const h = setup();
    h.scheduler.trigger("P/gone", "initial");
    await flush();
    h.runOf("P/gone").fail();
    await flush();
    expect(h.scheduler.counts()).toMatchObject({ backingOff: 1, failing: 1 });
    h.scheduler.forget("P/gone");
    expect(h.scheduler.repo("P/gone")).toBeUndefined();
    expect(h.scheduler.counts()).toMatchObject({ backingOff: 0, failing: 0 });
    await jest.advanceTimersByTimeAsync(60_000);
    expect(h.runs).toHaveLength(1);
  });

  it("aborts a running repo; a re-trigger before it settles runs after it, never beside it", async () => {
    const h = setup();
    h.scheduler.trigger("P/a", "reconcile");
    await flush();
    const first = h.runOf("P/a");
    h.scheduler.trigger("P/a", "webhook"); // follow-up, dropped by forget
    h.scheduler.forget("P/a");
    expect(first.signal.aborted).toBe(true);
    expect((first.signal.reason as SyncCancelledError).cancelledBy).toBe("forget");
    await flush();
    expect(h.scheduler.repo("P/a")).toBeUndefined();
    expect(h.runs).toHaveLength(1);
    expect(h.ofType("failed")).toHaveLength(0);

    // forget, then the catalog brings it back while the aborted run is still settling
    const h2 = setup({ ignoreAbort: true });
    h2.scheduler.trigger("P/b", "reconcile");
    await flush();
    h2.scheduler.forget("P/b");
    expect(h2.scheduler.trigger("P/b", "initial")).toBe("followUp");
    await flush();
    expect(h2.runs).toHaveLength(1);
    h2.runOf("P/b").succeed();
    await flush();
    expect(h2.runOf("P/b").reason).toBe("initial");
    expect(h2.overlaps()).toBe(0);
  });
});

describe("idle and snapshot", () => {
  it("idle() waits for the queue and running runs, but not for repos backing off", async () => {
    const h = setup({ concurrency: 1 });
    h.scheduler.trigger("P/a", "initial");
    h.scheduler.trigger("P/b", "initial");
    let idle = false;
    void h.scheduler.idle().then(() => (idle = true));
    await flush();
    h.runOf("P/a").succeed();
    await flush();
    expect(idle).toBe(false);
    h.runOf("P/b").fail();
    await flush();
    expect(idle).toBe(true);
    expect(h.scheduler.counts().backingOff).toBe(1);
  });

  it("describes every tracked repo and the totals", async () => {
    const h = setup({ concurrency: 1 });
    h.scheduler.trigger("P/run", "webhook");
    await flush();
    h.scheduler.trigger("P/run", "reconcile");
    h.scheduler.trigger("P/wait", "initial");
    const snap = h.scheduler.snapshot();
    expect(snap.counts).toEqual({ running: 1, queued: 1, backingOff: 0, failing: 0, concurrency: 1, draining: false });
    expect(snap.repos).toEqual([
      { key: "P/run", running: true, queued: false, reason: "webhook", followUp: "reconcile", consecutiveFailures: 0, lastError: undefined, nextRetryAt: undefined },
      { key: "P/wait", running: false, queued: true, reason: "initial", followUp: undefined, consecutiveFailures: 0, lastError: undefined, nextRetryAt: undefined },
    ]);
  });

  it("survives a listener that throws, and reports it as a process warning", async () => {
    const warn = jest.spyOn(process, "emitWarning").mockImplementation(() => undefined);
    try {
      const scheduler = new Scheduler({
        sync: async () => undefined,
        onEvent: () => {
          throw new Error("metrics bug");
        },
      });
      scheduler.trigger("P/a", "initial");
      await scheduler.idle();
      expect(scheduler.counts()).toMatchObject({ running: 0, queued: 0 });
      expect(scheduler.repo("P/a")).toBeUndefined(); // the success was recorded despite the listener
      expect(warn.mock.calls.map((c) => String(c[0]))).toEqual([
        "scheduler onEvent listener threw on started: metrics bug",
        "scheduler onEvent listener threw on succeeded: metrics bug",
      ]);
    } finally {
      warn.mockRestore();
    }
  });

  it("refuses bad options with a message that says what to change", () => {
    const sync = async () => undefined;
    expect(() => new Scheduler({ sync, concurrency: 0 })).toThrow(/concurrency must be an integer >= 1, got 0/);
    expect(() => new Scheduler({ sync, timeoutMs: 0 })).toThrow(/timeoutMs/);
    expect(() => new Scheduler({ sync, timeoutMs: Infinity })).toThrow(/timeoutMs/);
    expect(() => new Scheduler({ sync, backoff: { baseMs: 10, maxMs: 1 } })).toThrow(/maxMs/);
  });
});

describe("timers with the real clock", () => {
  it("never keep the process alive (retry and timeout timers are unref'd)", async () => {
    jest.useRealTimers();
    // Record every timer the scheduler makes through the real clock, and ask each one directly.
    const made: ReturnType<typeof setTimeout>[] = [];
    const clock: SchedulerClock = {
      ...realClock,
      setTimeout: (fn, ms) => {
        const t = realClock.setTimeout(fn, ms) as ReturnType<typeof setTimeout>;
        made.push(t);
        return t;
      },
    };
    let release!: () => void;
    const scheduler = new Scheduler({
      sync: (key) => (key === "P/hang" ? new Promise<void>((resolve) => (release = resolve)) : Promise.reject(new Error("down"))),
      clock,
      timeoutMs: 3_600_000,
      backoff: { baseMs: 3_600_000, maxMs: 3_600_000 },
      random: () => 0.5,
    });
    scheduler.trigger("P/fail", "initial");
    scheduler.trigger("P/hang", "initial");
    await new Promise((r) => setImmediate(r));
    const counts = scheduler.counts();
    const refs = made.map((t) => t.hasRef());
    // clean up before asserting, so a regression fails this test instead of hanging the run
    scheduler.forget("P/fail");
    release();
    await scheduler.idle();
    expect(counts).toMatchObject({ backingOff: 1, running: 1 });
    expect(refs).toEqual([false, false, false]); // two run timeouts and one retry
  });
});
