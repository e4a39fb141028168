import { backoffDelay, BackoffPolicy, MAX_TIMER_MS } from "./backoff";

/** Deterministic PRNG (mulberry32) so the distribution checks are reproducible. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const full: BackoffPolicy = { baseMs: 100, maxMs: 1000 };
const decorrelated: BackoffPolicy = { baseMs: 100, maxMs: 1000, jitter: "decorrelated" };
const fixed = (r: number) => () => r;

describe("backoffDelay, full jitter", () => {
  it.each([
    // attempt, random, expected: ceiling = min(1000, 100 * 2^(attempt-1)); delay = floor(r * ceiling)
    [1, 0.5, 50],
    [2, 0.5, 100],
    [3, 0.5, 200],
    [4, 0.5, 400],
    [5, 0.5, 500], // 1600 capped to 1000
    [6, 0.5, 500],
    [1, 0, 0],
    [3, 0.999, 399],
    [4, 0.999, 799],
    [5, 0.999, 999],
  ])("attempt %i with random %f waits %i ms", (attempt, r, expected) => {
    expect(backoffDelay(attempt, full, fixed(r))).toBe(expected);
    expect(backoffDelay(attempt, { ...full, jitter: "full" }, fixed(r))).toBe(expected);
  });

  it("grows exponentially until the cap, then stays there", () => {
    const upper = [1, 2, 3, 4, 5, 6, 7].map((a) => backoffDelay(a, { baseMs: 1000, maxMs: 20_000 }, fixed(0.9999999)));
    expect(upper).toEqual([999, 1999, 3999, 7999, 15_999, 19_999, 19_999]);
  });

  it("stays finite and capped for absurd attempt counts (no overflow to Infinity or NaN)", () => {
    for (const attempt of [60, 1100, 1_000_000]) {
      const d = backoffDelay(attempt, full, fixed(0.9999999));
      expect(Number.isFinite(d)).toBe(true);
      expect(d).toBe(999);
    }
    expect(backoffDelay(5000, full, fixed(0))).toBe(0);
  });

  it("spreads delays over the whole [0, ceiling) range", () => {
    const random = seeded(42);
    for (const [attempt, ceiling] of [[1, 100], [3, 400], [9, 1000]]) {
      const samples = Array.from({ length: 2000 }, () => backoffDelay(attempt, full, random));
      expect(Math.min(...samples)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...samples)).toBeLessThan(ceiling);
      // jitter really jitters: both ends of the range are hit, the mean is near the middle
      expect(Math.min(...samples)).toBeLessThan(ceiling * 0.05);
      expect(Math.max(...samples)).toBeGreaterThan(ceiling * 0.95);
      const mean = samples.reduce((s, x) => s + x, 0) / samples.length;
      expect(mean).toBeGreaterThan(ceiling * 0.4);
      expect(mean).toBeLessThan(ceiling * 0.6);
      expect(samples.every(Number.isInteger)).toBe(true);
    }
  });
});

describe("backoffDelay, decorrelated jitter", () => {
  it.each([
    // attempt, previous, random, expected = floor(base + r * (min(max, 3 * previous) - base))
    [1, undefined, 0, 100],
    [1, undefined, 0.5, 200], // first attempt: previous = base, upper = 300
    [1, 900, 0.5, 200], // previous is ignored on attempt 1 (a success resets)
    [2, 200, 0.5, 350], // upper 600
    [3, 350, 0.999, 999], // upper 1050 capped at 1000
    [4, 1000, 0, 100], // never below base
  ])("attempt %i after %p ms with random %f waits %i ms", (attempt, previous, r, expected) => {
    expect(backoffDelay(attempt, decorrelated, fixed(r), previous)).toBe(expected);
  });

  it("stays in [baseMs, min(maxMs, 3 * previous)] along a chain of failures", () => {
    const random = seeded(7);
    let previous: number | undefined;
    for (let attempt = 1; attempt <= 500; attempt++) {
      const d = backoffDelay(attempt, decorrelated, random, previous);
      const upper = Math.min(1000, 3 * (attempt === 1 ? 100 : previous!));
      expect(d).toBeGreaterThanOrEqual(100);
      expect(d).toBeLessThanOrEqual(upper);
      previous = d;
    }
  });

  it("grows roughly threefold per attempt at the top of the range, up to the cap", () => {
    let previous: number | undefined;
    const chain: number[] = [];
    for (let attempt = 1; attempt <= 5; attempt++) {
      previous = backoffDelay(attempt, { baseMs: 10, maxMs: 1000, jitter: "decorrelated" }, fixed(0.9999999), previous);
      chain.push(previous);
    }
    expect(chain).toEqual([29, 86, 257, 770, 999]);
  });
});

describe("backoffDelay, bad input", () => {
  it.each([
    ["attempt 0", () => backoffDelay(0, full, fixed(0.5)), /attempt must be an integer >= 1/],
    ["fractional attempt", () => backoffDelay(1.5, full, fixed(0.5)), /attempt/],
    ["baseMs 0", () => backoffDelay(1, { baseMs: 0, maxMs: 10 }, fixed(0.5)), /baseMs must be a positive/],
    ["maxMs < baseMs", () => backoffDelay(1, { baseMs: 10, maxMs: 5 }, fixed(0.5)), /maxMs must be between/],
    ["maxMs beyond a Node timer", () => backoffDelay(1, { baseMs: 10, maxMs: MAX_TIMER_MS + 1 }, fixed(0.5)), /maxMs/],
    ["random returning 1", () => backoffDelay(1, full, fixed(1)), /random source/],
    ["random returning NaN", () => backoffDelay(1, full, fixed(NaN)), /random source/],
    ["unknown jitter", () => backoffDelay(1, { ...full, jitter: "equal" as never }, fixed(0.5)), /jitter/],
  ])("%s is refused", (_name, call, message) => {
    expect(call).toThrow(message);
  });
});
