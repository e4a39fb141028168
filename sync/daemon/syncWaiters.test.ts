import { SyncWaiters } from "./syncWaiters";

test("a waiter gets the next end of its repository; one that asked during a run gets the end after it", async () => {
  const w = new SyncWaiters<string>();
  const got: string[] = [];
  void w.wait("P/a", 0).then((r) => got.push(`first:${r}`));
  void w.wait("P/a", 1).then((r) => got.push(`during-run:${r}`));
  void w.wait("P/b", 0).then((r) => got.push(`b:${r}`));
  w.settle("P/a", "run1");
  await Promise.resolve();
  expect(got).toEqual(["first:run1"]);
  w.settle("P/c", "other repo");
  w.settle("P/a", "follow-up");
  w.settle("P/b", "b1");
  await Promise.resolve();
  expect(got).toEqual(["first:run1", "during-run:follow-up", "b:b1"]);
  expect(w.size).toBe(0);
});
