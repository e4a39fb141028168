import { Fifo } from "./fifo";

describe("Fifo", () => {
  it("shifts in push order", () => {
    const q = new Fifo<string>();
    for (const v of ["a", "b", "c"]) q.push(v);
    expect(q.size).toBe(3);
    expect([q.shift(), q.shift(), q.shift(), q.shift()]).toEqual(["a", "b", "c", undefined]);
    expect(q.size).toBe(0);
  });

  it("removes head, middle and tail by handle and keeps the rest in order", () => {
    const q = new Fifo<number>();
    const h = [0, 1, 2, 3, 4].map((v) => q.push(v));
    expect(q.remove(h[2])).toBe(true);
    expect(q.remove(h[0])).toBe(true);
    expect(q.remove(h[4])).toBe(true);
    expect([...q]).toEqual([1, 3]);
    q.push(5);
    expect([...q]).toEqual([1, 3, 5]);
    expect(q.size).toBe(3);
  });

  it("refuses a handle that already left or belongs to another list", () => {
    const a = new Fifo<string>();
    const b = new Fifo<string>();
    const x = a.push("x");
    b.push("y");
    expect(b.remove(x)).toBe(false);
    expect(a.shift()).toBe("x");
    expect(a.remove(x)).toBe(false);
    expect(a.size).toBe(0);
    expect(b.size).toBe(1);
  });
});
