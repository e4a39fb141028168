import { defaultPerClient, Slots } from "./slots";

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

describe("Slots: fair between clients", () => {
  test("one client never holds every slot: the last one stays for the others", async () => {
    const s = new Slots({ max: 4, maxQueue: 10, maxWaitMs: 5000 });
    expect(s.maxPerClient).toBe(3);
    const mine = await Promise.all([1, 2, 3].map(() => s.acquire(undefined, "10.0.0.1")));
    expect(mine.every(Boolean)).toBe(true);
    const fourth = s.acquire(undefined, "10.0.0.1"); // over its share: waits although a slot is free
    expect(s.waiting).toBe(1);
    const other = await s.acquire(undefined, "10.0.0.2"); // served at once
    expect(other).toBeDefined();
    expect(s.running).toBe(4);
    mine[0]!();
    expect(await fourth).toBeDefined();
  });

  test("a freed slot goes to the waiting client running the fewest, not the longest queue", async () => {
    const s = new Slots({ max: 2, maxPerClient: 2, maxQueue: 10, maxWaitMs: 5000 });
    const a1 = await s.acquire(undefined, "a");
    const a2 = await s.acquire(undefined, "a");
    const order: string[] = [];
    const queued = [s.acquire(undefined, "a"), s.acquire(undefined, "a"), s.acquire(undefined, "b")].map((p, i) => p.then((r) => (order.push(["a3", "a4", "b1"][i]), r)));
    expect(s.othersWaiting("a")).toBe(true);
    expect(s.othersWaiting("b")).toBe(false); // only "a" waits, and "a" is at its share
    a1!();
    await queued[2];
    expect(order).toEqual(["b1"]);
    a2!();
    await queued[0];
    expect(order).toEqual(["b1", "a3"]);
  });

  test("defaultPerClient leaves a quarter (at least one slot) to the others", () => {
    expect([1, 2, 3, 4, 8, 16].map(defaultPerClient)).toEqual([1, 1, 2, 3, 6, 12]);
  });
});
