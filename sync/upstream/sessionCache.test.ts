import { SessionCache } from "./sessionCache";
import type { V2Session } from "./protocolV2";

/** Stand-ins for sessions: the cache only reads path, open and lastUsed, and calls close(). */
function fakeSession(path: string, lastUsed = Date.now()): V2Session & { closed: boolean } {
  const s = { path, lastUsed, closed: false, get open() { return !s.closed; }, close() { s.closed = true; } };
  return s as never;
}

test("a session put back is taken again for its repository; others open new ones", async () => {
  const opened: string[] = [];
  const cache = new SessionCache(async (p) => (opened.push(p), fakeSession(p)), { max: 2, idleMs: 60_000 });
  const a = await cache.take("/P/a.git");
  cache.put(a);
  expect(await cache.take("/P/a.git")).toBe(a);
  await cache.take("/P/b.git");
  expect(opened).toEqual(["/P/a.git", "/P/b.git"]);
  cache.close();
});

test("bounded: the least recently put goes first; closed and idle sessions are dropped", async () => {
  const cache = new SessionCache(async (p) => fakeSession(p), { max: 2, idleMs: 1000 });
  const [a, b, c] = [fakeSession("/a"), fakeSession("/b"), fakeSession("/c")];
  cache.put(a);
  cache.put(b);
  cache.put(c);
  expect(a.closed).toBe(true);
  expect(cache.size).toBe(2);
  b.close();
  const fresh = await cache.take("/b");
  expect(fresh).not.toBe(b);
  cache.expire(Date.now() + 5000);
  expect(c.closed).toBe(true);
  expect(cache.size).toBe(0);
  cache.close();
  const late = fakeSession("/d");
  cache.put(late);
  expect(late.closed).toBe(true);
});
