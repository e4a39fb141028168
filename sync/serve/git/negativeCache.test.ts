import { NegativeCache } from "./negativeCache";

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
