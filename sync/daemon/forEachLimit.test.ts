import { forEachLimit } from "./forEachLimit";

const tick = () => new Promise((r) => setImmediate(r));

test("runs every item with at most `limit` at once", async () => {
  let running = 0;
  let peak = 0;
  const done: number[] = [];
  await forEachLimit([1, 2, 3, 4, 5, 6, 7], 3, async (i) => {
    running++;
    peak = Math.max(peak, running);
    await tick();
    done.push(i);
    running--;
  });
  expect(done.sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);
  expect(peak).toBe(3);
});

test("after one item throws no further item starts; running ones finish; the first error is thrown", async () => {
  const started: number[] = [];
  const finished: number[] = [];
  const items = Array.from({ length: 100 }, (_, i) => i);
  const p = forEachLimit(items, 4, async (i) => {
    started.push(i);
    await tick();
    if (i === 2) throw new Error("primary gone");
    if (i === 5) throw new Error("second failure");
    await tick();
    finished.push(i);
  });
  await expect(p).rejects.toThrow("primary gone");
  // Give any worker that was not stopped every chance to go on (the list needs ~50 rounds).
  for (let i = 0; i < 500; i++) await tick();
  // Items 0..3 start together; the workers of 0, 1 and 3 may each take one more before they
  // see the failure (they are mid-item when it happens), never the whole list.
  expect(started.length).toBeLessThanOrEqual(7);
  expect(finished).toEqual(expect.arrayContaining([0, 1, 3]));
});

test("empty list and a limit larger than the list", async () => {
  await forEachLimit([], 8, async () => undefined);
  const seen: string[] = [];
  await forEachLimit(["a"], 8, async (s) => void seen.push(s));
  expect(seen).toEqual(["a"]);
});
