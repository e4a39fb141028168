import { NextFlight } from "./nextFlight";

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
