import { Pace, PaceClock } from "./pace";

function fakeClock(): PaceClock & { t: number; slept: number[] } {
  const c = {
    t: 0,
    slept: [] as number[],
    now: () => c.t,
    sleep: async (ms: number) => {
      c.slept.push(ms);
      c.t += ms;
    },
  };
  return c;
}

describe("Pace", () => {
  test("a burst passes at once, then takes come at the rate", async () => {
    const c = fakeClock();
    const pace = new Pace(20, 5, c);
    for (let i = 0; i < 5; i++) await pace.take();
    expect(c.t).toBe(0);
    for (let i = 0; i < 100; i++) await pace.take();
    // 100 more at 20/s: 5 seconds.
    expect(c.t).toBeGreaterThanOrEqual(5000);
    expect(c.t).toBeLessThanOrEqual(5100);
  });

  test("the average over a long run stays at the rate", async () => {
    const c = fakeClock();
    const pace = new Pace(7, 10, c);
    const n = 1000;
    for (let i = 0; i < n; i++) await pace.take();
    expect((n - 10) / (c.t / 1000)).toBeLessThanOrEqual(7.01);
  });

  test("setRate speeds up; Infinity never waits", async () => {
    const c = fakeClock();
    const pace = new Pace(1, 1, c);
    await pace.take();
    pace.setRate(Number.POSITIVE_INFINITY);
    for (let i = 0; i < 1000; i++) await pace.take();
    expect(c.t).toBe(0);
  });

  test("an aborted signal returns without waiting", async () => {
    const c = fakeClock();
    const pace = new Pace(1, 1, c);
    await pace.take();
    const ac = new AbortController();
    ac.abort();
    await pace.take(ac.signal);
    expect(c.slept).toEqual([]);
  });

  test("bad rates are refused with the value", () => {
    expect(() => new Pace(0, 1)).toThrow(/perSecond must be > 0 \(got 0\)/);
    expect(() => new Pace(1, 0)).toThrow(/burst must be >= 1/);
  });
});
