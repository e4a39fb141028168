import { DiskLowError, DiskSpace, diskState, FULL_BYTES } from "./diskSpace";
import { failureKind } from "../state/failureKind";

const MiB = 2 ** 20;

test.each([
  [10 * MiB, 4 * MiB, "ok"],
  [4 * MiB, 4 * MiB, "ok"],
  [4 * MiB - 1, 4 * MiB, "low"],
  [FULL_BYTES - 1, 4 * MiB, "full"],
  [0, 0, "full"],
  [2 * MiB, 0, "ok"],
])("free %d with minFree %d: %s", (free, min, state) => {
  expect(diskState(free, min)).toBe(state);
});

test("a sync that grows the disk is refused below the threshold, with the reason and what to do", () => {
  let bavail = 100;
  const disk = new DiskSpace("/var/lib/smart-mirror", 64 * MiB, () => ({ bavail, blocks: 1000, bsize: MiB }));
  expect(() => disk.assertCanGrow("first clone of PROJ/new")).not.toThrow();
  expect(disk.facts).toEqual({ state: "ok", freeBytes: 100 * MiB, totalBytes: 1000 * MiB, minFreeBytes: 64 * MiB });
  bavail = 10;
  let err: unknown;
  try {
    disk.assertCanGrow("first clone of PROJ/new");
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(DiskLowError);
  expect((err as Error).message).toMatch(/disk nearly full: 10\.0 MiB free on \/var\/lib\/smart-mirror \(mirror\.disk\.minFreeMb=64\): first clone of PROJ\/new postponed.*resumes by itself/);
  expect(failureKind(err)).toBe("disk");
  bavail = 0;
  expect(() => disk.assertCanGrow("fetch of PROJ/a")).toThrow(/disk full: 0\.0 MiB free/);
});
