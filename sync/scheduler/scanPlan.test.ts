import { planRound, ScanFacts, ScanPolicy, scanTargets, worstCaseNoticeMs } from "./scanPlan";

const MIN = 60_000;
const HOUR = 60 * MIN;
const policy = (o: Partial<ScanPolicy> = {}): ScanPolicy => ({ maxPerSecond: 20, roundMs: 3 * MIN, idleBoundMs: 6 * HOUR, activeWindowMs: 24 * HOUR, ...o });

describe("scanTargets", () => {
  test.each([
    // [active, idle, activeEvery, idleEvery, overBudget]
    ["a small catalog: everything every round", 10, 190, 3 * MIN, 3 * MIN, false],
    ["idle repositories share what active ones leave", 2000, 98_000, 3 * MIN, (98_000 / (20 - 2000 / 180)) * 1000, false],
    ["budget too small for the idle bound: the bound wins and it is said", 0, 1_000_000, 3 * MIN, 6 * HOUR, true],
  ])("%s", (_name, active, idle, activeEvery, idleEvery, over) => {
    const t = scanTargets(policy(), active, idle);
    expect(t.activeEveryMs).toBeCloseTo(activeEvery, 3);
    expect(t.idleEveryMs).toBeCloseTo(idleEvery, 3);
    expect(t.overBudget).toBe(over);
    if (!over) expect(t.perSecond).toBeLessThanOrEqual(20 + 1e-9);
  });

  test("active repositories alone over the budget slow down, but never past the idle bound", () => {
    const t = scanTargets(policy({ maxPerSecond: 10 }), 5000, 1000);
    expect(t.idleEveryMs).toBe(6 * HOUR);
    expect(t.activeEveryMs).toBeGreaterThan(3 * MIN);
    expect(t.activeEveryMs).toBeLessThanOrEqual(6 * HOUR);
    expect(t.perSecond).toBeCloseTo(10, 6);
    expect(t.overBudget).toBe(false);
  });

  test("no budget: everything every round", () => {
    const t = scanTargets(policy({ maxPerSecond: Number.POSITIVE_INFINITY }), 5, 100_000);
    expect(t).toMatchObject({ activeEveryMs: 3 * MIN, idleEveryMs: 3 * MIN, overBudget: false });
  });
});

/**
 * Runs the rounds the daemon runs, on a simulated clock: each round plans, then asks the planned
 * repositories at the round's rate, one after the other; the next round starts a period after
 * this one started, or when it ends if it overran. Returns the scan times per repository.
 */
function simulate(n: number, activeKeys: Set<number>, p: ScanPolicy, untilMs: number, onPushes?: (now: number) => number[]) {
  const facts: ScanFacts[] = Array.from({ length: n }, (_, i) => ({ scannedAt: 0, changedAt: activeKeys.has(i) ? 1 : 0 }));
  const scans: number[][] = Array.from({ length: n }, () => []);
  const perSecondSeen: number[] = [];
  let now = 1;
  const pending = new Map<number, number>(); // repo -> time a missed push happened
  const noticed: number[] = [];
  while (now < untilMs) {
    for (const i of onPushes?.(now) ?? []) if (!pending.has(i)) pending.set(i, now);
    const plan = planRound(facts.map((f, i) => [i, f] as const), now, p);
    const rate = Math.max(p.maxPerSecond, plan.targets.perSecond);
    let t = now;
    for (const i of plan.scan) {
      facts[i].scannedAt = t;
      scans[i].push(t);
      const pushedAt = pending.get(i);
      if (pushedAt !== undefined && pushedAt <= t) {
        noticed.push(t - pushedAt);
        pending.delete(i);
        facts[i].changedAt = t;
      }
      t += 1000 / rate;
    }
    perSecondSeen.push(plan.scan.length / (Math.max(p.roundMs, t - now) / 1000));
    now = Math.max(now + p.roundMs, t);
  }
  return { scans, perSecondSeen, noticed };
}

function maxGap(times: number[]): number {
  let g = 0;
  for (let i = 1; i < times.length; i++) g = Math.max(g, times[i] - times[i - 1]);
  return g;
}

describe("planRound over simulated time", () => {
  test("100,000 repositories: the start asks every one; then the budget holds and every bound is met", () => {
    const n = 100_000;
    const active = new Set(Array.from({ length: 2000 }, (_, i) => i * 50));
    const p = policy();
    const { scans, perSecondSeen } = simulate(n, active, p, 12 * HOUR);
    // The start: every repository once (nothing is known of them).
    expect(scans.every((s) => s.length >= 1)).toBe(true);
    // After the first round (which asks all 100,000 at the budget), rounds stay within it.
    expect(Math.max(...perSecondSeen.slice(1))).toBeLessThanOrEqual(p.maxPerSecond * 1.02);
    const t = scanTargets(p, active.size, n - active.size);
    const bound = worstCaseNoticeMs(p, t);
    let worstActive = 0;
    let worstIdle = 0;
    for (let i = 0; i < n; i++) {
      const g = maxGap(scans[i]);
      if (active.has(i)) worstActive = Math.max(worstActive, g);
      else worstIdle = Math.max(worstIdle, g);
    }
    expect(worstActive).toBeLessThanOrEqual(bound.activeMs);
    expect(worstIdle).toBeLessThanOrEqual(bound.idleMs);
    expect(worstIdle).toBeLessThanOrEqual(p.idleBoundMs + 1.5 * p.roundMs);
    // Idle repositories are asked more than once in 12 hours: the sweep keeps going.
    expect(scans.filter((s, i) => !active.has(i) && s.length >= 3).length).toBeGreaterThan(0.9 * (n - active.size));
  });

  test("a small catalog is asked whole every round (today's behaviour)", () => {
    const { scans } = simulate(50, new Set([1]), policy(), 30 * MIN);
    for (const s of scans) {
      expect(s.length).toBe(10);
      expect(maxGap(s)).toBeLessThanOrEqual(3 * MIN + 1000);
    }
  });

  test("missed webhooks are noticed within the bound, active repositories sooner", () => {
    const n = 20_000;
    const active = new Set(Array.from({ length: 500 }, (_, i) => i));
    const p = policy({ maxPerSecond: 5 });
    const pushes = (now: number) => (now > 2 * HOUR && now < 2 * HOUR + 3 * MIN ? [7, 8, 9, 10_000, 15_000] : []);
    const { noticed } = simulate(n, active, p, 10 * HOUR, pushes);
    expect(noticed).toHaveLength(5);
    const t = scanTargets(p, active.size, n - active.size);
    const bound = worstCaseNoticeMs(p, t);
    expect(Math.max(...noticed.slice(0, 3))).toBeLessThanOrEqual(bound.activeMs);
    expect(Math.max(...noticed)).toBeLessThanOrEqual(bound.idleMs);
  });

  test("order: due active repositories first (most overdue first), then never asked, then the oldest idle", () => {
    const now = 10 * HOUR;
    // A budget that binds (4 scans a round for 6 repositories): the rules, not "everything".
    const p = policy({ maxPerSecond: 0.02 });
    const entries: Array<readonly [string, ScanFacts]> = [
      ["idle-old", { scannedAt: now - 5 * HOUR, changedAt: 0 }],
      ["idle-new", { scannedAt: now - MIN, changedAt: 0 }],
      ["active-late", { scannedAt: now - 10 * MIN, changedAt: now - HOUR }],
      ["active-due", { scannedAt: now - 3 * MIN, changedAt: now - HOUR }],
      ["active-fresh", { scannedAt: now - 10_000, changedAt: now - HOUR }],
      ["new", { scannedAt: 0, changedAt: 0 }],
    ];
    const { scan } = planRound(entries, now, p);
    expect(scan.slice(0, 3)).toEqual(["active-late", "active-due", "new"]);
    expect(scan).not.toContain("active-fresh");
    expect(scan.indexOf("idle-old") === -1 || scan.indexOf("idle-old") > scan.indexOf("new")).toBe(true);
    expect(scan.indexOf("idle-new") === -1 || scan.indexOf("idle-new") > scan.indexOf("idle-old")).toBe(true);
  });

  test("a catalog the budget covers whole: every repository in every round, however soon the round comes (a restart compares all)", () => {
    const now = 10 * HOUR;
    const entries: Array<readonly [string, ScanFacts]> = [
      ["just-synced", { scannedAt: now - 1, changedAt: now - 1 }],
      ["idle", { scannedAt: now - 1, changedAt: 0 }],
    ];
    expect(planRound(entries, now, policy({ maxPerSecond: 20 })).scan.sort()).toEqual(["idle", "just-synced"]);
  });

  test("no budget: every repository in every round, however soon the round comes", () => {
    const now = 10 * HOUR;
    const entries: Array<readonly [string, ScanFacts]> = [
      ["just-synced", { scannedAt: now - 1, changedAt: now - 1 }],
      ["idle", { scannedAt: now - 1, changedAt: 0 }],
      ["new", { scannedAt: 0, changedAt: 0 }],
    ];
    expect(planRound(entries, now, policy({ maxPerSecond: Number.POSITIVE_INFINITY })).scan.sort()).toEqual(["idle", "just-synced", "new"]);
  });

  test("an idle repository at its bound is asked even when the budget's share is used up", () => {
    const now = 100 * HOUR;
    const p = policy({ maxPerSecond: 0.001, idleBoundMs: HOUR });
    const entries: Array<readonly [string, ScanFacts]> = [
      ["a", { scannedAt: now - 2 * HOUR, changedAt: 0 }],
      ["b", { scannedAt: now - 2 * HOUR + 1, changedAt: 0 }],
      ["c", { scannedAt: now - 10 * MIN, changedAt: 0 }],
    ];
    expect(planRound(entries, now, p).scan).toEqual(["a", "b"]);
  });
});
