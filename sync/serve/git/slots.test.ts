import { Slots } from "./slots";

describe("Slots", () => {
  test("at most max run; waiters get slots in order as they are released", async () => {
    const s = new Slots({ max: 2, maxQueue: 5, maxWaitMs: 5000 });
    const a = await s.acquire();
    const b = await s.acquire();
    expect(s.running).toBe(2);
    const order: string[] = [];
    const c = s.acquire().then((r) => (order.push("c"), r));
    const d = s.acquire().then((r) => (order.push("d"), r));
    expect(s.waiting).toBe(2);
    a!();
    a!(); // idempotent: must not free a second slot
    const rc = await c;
    expect(order).toEqual(["c"]);
    expect(s.running).toBe(2);
    b!();
    const rd = await d;
    expect(order).toEqual(["c", "d"]);
    rc!();
    rd!();
    expect(s.running).toBe(0);
    expect(s.waiting).toBe(0);
  });

  test("a full queue and a long wait are refused; an aborted waiter leaves the queue", async () => {
    const s = new Slots({ max: 1, maxQueue: 1, maxWaitMs: 50 });
    const a = await s.acquire();
    const waiting = s.acquire();
    expect(await s.acquire()).toBeUndefined(); // queue full
    expect(await waiting).toBeUndefined(); // timed out
    expect(s.waiting).toBe(0);

    const ac = new AbortController();
    const w = s.acquire(ac.signal);
    expect(s.waiting).toBe(1);
    ac.abort();
    expect(await w).toBeUndefined();
    expect(s.waiting).toBe(0);
    a!();
    expect(s.running).toBe(0);
    expect(await s.acquire(AbortSignal.abort())).toBeUndefined();
  });
});
