/**
 * 10,000 repositories through a concurrency of 8, with real timers and jobs that yield to the
 * event loop: every repo runs exactly once, the bound holds, and nothing stays tracked after.
 * No timing assertions: only counts.
 */
import type { RepoKey, SyncReason } from "../types";
import { Scheduler } from "./scheduler";

it("runs 10,000 repos exactly once each at concurrency 8", async () => {
  const N = 10_000;
  const runsPerKey = new Map<RepoKey, number>();
  const reasons = new Map<SyncReason, number>();
  let inFlight = 0;
  let maxInFlight = 0;

  const scheduler = new Scheduler({
    concurrency: 8,
    timeoutMs: 600_000,
    sync: async (key, reason) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      runsPerKey.set(key, (runsPerKey.get(key) ?? 0) + 1);
      reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
      await new Promise((r) => setImmediate(r));
      inFlight--;
    },
  });

  // Two triggers per repo in the same tick (initial, then a reconcile sweep): both coalesce.
  for (let i = 0; i < N; i++) scheduler.trigger(`PROJ${i % 50}/repo-${i}`, "initial");
  for (let i = 0; i < N; i++) expect(scheduler.trigger(`PROJ${i % 50}/repo-${i}`, "reconcile")).toBe("merged");
  expect(scheduler.counts().queued).toBe(N);

  await scheduler.idle();

  expect(runsPerKey.size).toBe(N);
  expect([...runsPerKey.values()].every((n) => n === 1)).toBe(true);
  expect(reasons).toEqual(new Map([["initial", N]]));
  expect(maxInFlight).toBe(8);
  // nothing left behind: healthy repos are not tracked
  expect(scheduler.snapshot()).toEqual({
    counts: { running: 0, queued: 0, backingOff: 0, failing: 0, concurrency: 8, draining: false },
    repos: [],
  });
}, 60_000);
