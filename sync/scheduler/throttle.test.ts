import { Throttle } from "./throttle";

describe("Throttle", () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  test("100 requests within an interval: one run now, one trailing run at the end of it", () => {
    let t = 1000;
    let runs = 0;
    const th = new Throttle(() => runs++, { minIntervalMs: 30_000, now: () => t });
    const answers = Array.from({ length: 100 }, () => th.request());
    expect(answers[0]).toBe("started");
    expect(answers[1]).toBe("scheduled");
    expect(answers.slice(2).every((a) => a === "coalesced")).toBe(true);
    expect(runs).toBe(1);
    t += 30_000;
    jest.advanceTimersByTime(30_000);
    expect(runs).toBe(2);
    // Nothing asked since: no more runs.
    t += 60_000;
    jest.advanceTimersByTime(60_000);
    expect(runs).toBe(2);
    // After a quiet interval, a request runs at once again.
    expect(th.request()).toBe("started");
    expect(runs).toBe(3);
  });

  test("cancel drops the trailing run", () => {
    let runs = 0;
    const th = new Throttle(() => runs++, { minIntervalMs: 10 });
    th.request();
    th.request();
    th.cancel();
    jest.advanceTimersByTime(100);
    expect(runs).toBe(1);
  });
});
