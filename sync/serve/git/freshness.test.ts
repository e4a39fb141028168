import { behindMessage, NegativeCache, NextFlight } from "./freshness";

/** A promise with its resolve handle. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe("NextFlight", () => {
  it("runs one flight per key; callers arriving during it share the next one, never the running one", async () => {
    const f = new NextFlight<number>();
    const gates = [deferred<number>(), deferred<number>(), deferred<number>()];
    let starts = 0;
    const fn = () => gates[starts++].promise;
    const first = f.run("r", fn);
    await Promise.resolve();
    expect(starts).toBe(1);
    // Three late comers: one flight after the running one, shared.
    const late = [f.run("r", fn), f.run("r", fn), f.run("r", fn)];
    expect(late[1]).toBe(late[0]);
    expect(late[2]).toBe(late[0]);
    gates[0].resolve(1);
    expect(await first).toBe(1);
    await new Promise((r) => setImmediate(r));
    expect(starts).toBe(2);
    gates[1].resolve(2);
    expect(await Promise.all(late)).toEqual([2, 2, 2]);
    await new Promise((r) => setImmediate(r));
    expect(f.size).toBe(0);
    // Other keys do not wait for each other.
    const other = f.run("s", () => Promise.resolve(7));
    expect(await other).toBe(7);
  });

  it("a failed flight still lets the next one run", async () => {
    const f = new NextFlight<string>();
    const gate = deferred<string>();
    const first = f.run("r", () => gate.promise.then(() => Promise.reject(new Error("boom"))));
    const next = f.run("r", () => Promise.resolve("ok"));
    gate.resolve("");
    await expect(first).rejects.toThrow("boom");
    expect(await next).toBe("ok");
  });
});

describe("NegativeCache", () => {
  it("holds an entry for its repository state and ttl only", () => {
    const c = new NegativeCache(1000, 3);
    c.add("/r", "s1", "x", 0);
    expect(c.has("/r", "s1", "x", 500)).toBe(true);
    expect(c.has("/other", "s1", "x", 500)).toBe(false);
    expect(c.has("/r", "s2", "x", 500)).toBe(false); // the refs changed: the entry is void
    expect(c.has("/r", "s1", "x", 600)).toBe(false); // ...and gone
    c.add("/r", "s1", "y", 0);
    expect(c.has("/r", "s1", "y", 1001)).toBe(false);
  });

  it("keeps at most maxEntries, dropping the oldest", () => {
    const c = new NegativeCache(60_000, 2);
    for (const n of ["a", "b", "c"]) c.add("/r", "s", n, 0);
    expect(c.size).toBe(2);
    expect(c.has("/r", "s", "a", 1)).toBe(false);
    expect(c.has("/r", "s", "c", 1)).toBe(true);
  });
});

describe("behindMessage", () => {
  it("is one printable line naming what is missing, why, and where to fetch instead", () => {
    const m = behindMessage("abc", "the primary cannot be reached (connect ECONNREFUSED\n\u0007)", "https://p/scm/P/r.git");
    expect(m).toBe("the mirror is behind the primary: it does not have abc yet, and the primary cannot be reached (connect ECONNREFUSED??). Retry in a moment, or fetch it from the primary: https://p/scm/P/r.git");
    expect(m).not.toMatch(/\n/);
  });
});
