import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { clearIndexPending, dueTasks, indexPending, isDue, markIndexPending, recordRun } from "./maintenance";

test.each([
  [undefined, 1000, 5000, true],
  [4500, 1000, 5000, false],
  [4000, 1000, 5000, true],
  [0, 0, 5000, false],
  [undefined, 0, 5000, false],
])("last=%s interval=%s now=%s due=%s", (last, interval, now, due) => {
  expect(isDue(last, interval, now)).toBe(due);
});

describe("a first clone's deferred index", () => {
  const intervals = { repackIntervalMs: 1000, fsckIntervalMs: 1000 };

  test("is due when marked, gives way to a due repack, and is gone once cleared", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "maint-"));
    try {
      recordRun(dir, "repack", 5000);
      recordRun(dir, "fsck", 5000);
      expect(dueTasks(dir, intervals, 5500)).toEqual([]);
      await markIndexPending(dir);
      expect(indexPending(dir)).toBe(true);
      expect(dueTasks(dir, intervals, 5500)).toEqual(["index"]);
      // A due repack writes a bitmap and commit-graph of its own: no separate index run.
      expect(dueTasks(dir, intervals, 6500)).toEqual(["repack", "fsck"]);
      clearIndexPending(dir);
      expect(dueTasks(dir, intervals, 5500)).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
