import { DecisionCache, Verdict } from "./decisionCache";

/** A check whose calls are counted and whose answers the test sets. */
function fakePrimary(initial: Verdict = "allow") {
  let answer = initial;
  let calls = 0;
  let gate: Promise<void> = Promise.resolve();
  let open: () => void = () => undefined;
  return {
    get calls() {
      return calls;
    },
    set(v: Verdict) {
      answer = v;
    },
    /** Hold answers until release() (to make checks overlap). */
    hold() {
      gate = new Promise((r) => (open = r));
    },
    release: () => open(),
    check: async (): Promise<Verdict> => {
      calls++;
      await gate;
      return answer;
    },
  };
}

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe("DecisionCache", () => {
  test("allows are reused for the TTL, then checked again", async () => {
    const c = clock();
    const p = fakePrimary();
    const cache = new DecisionCache({ allowTtlMs: 60_000, now: c.now });
    expect(await cache.decide("k", p.check)).toEqual({ verdict: "allow", source: "check" });
    c.advance(59_999);
    expect(await cache.decide("k", p.check)).toEqual({ verdict: "allow", source: "cache" });
    expect(p.calls).toBe(1);
    c.advance(1);
    expect(await cache.decide("k", p.check)).toEqual({ verdict: "allow", source: "check" });
    expect(p.calls).toBe(2);
  });

  test("denials are remembered for the shorter deny TTL; a new grant is seen after it", async () => {
    const c = clock();
    const p = fakePrimary("forbidden");
    const cache = new DecisionCache({ allowTtlMs: 300_000, now: c.now });
    expect((await cache.decide("k", p.check)).verdict).toBe("forbidden");
    p.set("allow");
    c.advance(29_000);
    expect((await cache.decide("k", p.check)).verdict).toBe("forbidden");
    c.advance(1_000);
    expect((await cache.decide("k", p.check)).verdict).toBe("allow");
    expect(p.calls).toBe(2);
  });

  test("TTL 0: every request asks", async () => {
    const p = fakePrimary();
    const cache = new DecisionCache({ allowTtlMs: 0 });
    await cache.decide("k", p.check);
    await cache.decide("k", p.check);
    expect(p.calls).toBe(2);
  });

  test("32 concurrent identical checks make one call; different keys do not share", async () => {
    const p = fakePrimary();
    const cache = new DecisionCache({ allowTtlMs: 60_000 });
    p.hold();
    const all = Array.from({ length: 32 }, () => cache.decide("same", p.check));
    const other = cache.decide("other", p.check);
    await Promise.resolve();
    p.release();
    const results = await Promise.all([...all, other]);
    expect(results.every((r) => r.verdict === "allow")).toBe(true);
    expect(p.calls).toBe(2);
  });

  test("the LRU bound holds; recently used keys survive", async () => {
    const p = fakePrimary();
    const cache = new DecisionCache({ allowTtlMs: 60_000, maxEntries: 3 });
    for (const k of ["a", "b", "c"]) await cache.decide(k, p.check);
    await cache.decide("a", p.check); // a is now the most recent
    await cache.decide("d", p.check); // evicts b
    expect(cache.size).toBe(3);
    const before = p.calls;
    await cache.decide("a", p.check);
    await cache.decide("c", p.check);
    await cache.decide("d", p.check);
    expect(p.calls).toBe(before);
    await cache.decide("b", p.check);
    expect(p.calls).toBe(before + 1);
    expect(cache.size).toBe(3);
  });

  test("outage: a known user keeps access for the grace period after the last positive check; unknown users do not", async () => {
    const c = clock();
    const p = fakePrimary();
    const cache = new DecisionCache({ allowTtlMs: 60_000, graceMs: 3_600_000, now: c.now });
    await cache.decide("known", p.check);
    p.set("unavailable");
    c.advance(120_000); // stale: asks, the primary is down, grace applies
    expect(await cache.decide("known", p.check)).toEqual({ verdict: "allow", source: "grace" });
    expect(await cache.decide("stranger", p.check)).toEqual({ verdict: "unavailable", source: "check" });
    c.advance(3_600_000 - 120_000); // exactly grace since the last positive check
    expect((await cache.decide("known", p.check)).verdict).toBe("allow");
    c.advance(1);
    expect((await cache.decide("known", p.check)).verdict).toBe("unavailable");
    // Back up: checked again and trusted again.
    p.set("allow");
    expect(await cache.decide("known", p.check)).toEqual({ verdict: "allow", source: "check" });
  });

  test("outage: a denial is never stretched into access, and a thrown check counts as unavailable", async () => {
    const c = clock();
    const p = fakePrimary("bad_credentials");
    const cache = new DecisionCache({ allowTtlMs: 60_000, now: c.now });
    await cache.decide("k", p.check);
    c.advance(31_000);
    p.set("unavailable");
    expect((await cache.decide("k", p.check)).verdict).toBe("unavailable");
    expect((await cache.decide("x", () => Promise.reject(new Error("boom")))).verdict).toBe("unavailable");
  });

  test("a revocation seen by the primary ends the grace at once", async () => {
    const c = clock();
    const p = fakePrimary();
    const cache = new DecisionCache({ allowTtlMs: 1000, now: c.now });
    await cache.decide("k", p.check);
    c.advance(2000);
    p.set("forbidden");
    expect((await cache.decide("k", p.check)).verdict).toBe("forbidden");
    c.advance(60_000);
    p.set("unavailable");
    expect((await cache.decide("k", p.check)).verdict).toBe("unavailable");
  });

  test("grace 0: no access without the primary", async () => {
    const c = clock();
    const p = fakePrimary();
    const cache = new DecisionCache({ allowTtlMs: 1000, graceMs: 0, now: c.now });
    await cache.decide("k", p.check);
    c.advance(1001);
    p.set("unavailable");
    expect((await cache.decide("k", p.check)).verdict).toBe("unavailable");
  });
});
