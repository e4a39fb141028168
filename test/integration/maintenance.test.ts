/**
 * Maintenance on schedule: repack with a bitmap and a commit-graph; fsck on its cadence,
 * and a corrupt repository is re-cloned from the primary.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { startInProcessMirror } from "../bench/inProcessMirror";
import { startPrimary } from "../bench/primary";
import { assertSameRefsAndObjects, git, workingClone } from "../bench/repos";

jest.setTimeout(180_000);

test("due repack writes a bitmap and commit-graph; a corrupt repository is re-cloned by fsck", async () => {
  const primary = await startPrimary();
  await primary.createRepo("PROJ", "app");
  const wc = await workingClone(primary.remote("PROJ", "app"));
  for (let i = 0; i < 5; i++) await wc.commit({ [`f${i}.txt`]: `content ${i}\n`.repeat(50) });
  await wc.pushAll();
  const m = await startInProcessMirror(primary, [{ project: "PROJ", slug: "app" }], {
    // Everything is due at every job: the schedule itself is table-tested (maintenance.test.ts).
    maintenance: { repackIntervalMs: 1, fsckIntervalMs: 1 },
  });
  await m.daemon.idle();
  const dir = m.daemon.repoDir("PROJ/app");

  // A reconcile finds maintenance due and runs it in the repository's own job.
  await new Promise((r) => setTimeout(r, 5));
  await m.daemon.reconcile();
  await m.daemon.idle();
  const packDir = path.join(dir, "objects", "pack");
  expect(fs.readdirSync(packDir).some((f) => f.endsWith(".bitmap"))).toBe(true);
  expect(fs.existsSync(path.join(dir, "objects", "info", "commit-graph"))).toBe(true);
  expect(fs.readdirSync(packDir).filter((f) => f.endsWith(".pack"))).toHaveLength(1);

  // Damage it: truncate the pack. The next maintenance fsck fails and the repository is re-cloned.
  const pack = fs.readdirSync(packDir).find((f) => f.endsWith(".pack"))!;
  const packPath = path.join(packDir, pack);
  fs.chmodSync(packPath, 0o644);
  const fd = fs.openSync(packPath, "r+");
  fs.ftruncateSync(fd, Math.floor(fs.statSync(packPath).size / 2));
  fs.closeSync(fd);
  await expect(git(["fsck", "--no-dangling"], { cwd: dir })).rejects.toThrow();
  await new Promise((r) => setTimeout(r, 5));
  await m.daemon.reconcile();
  await m.daemon.idle();
  await git(["fsck", "--strict", "--no-dangling"], { cwd: dir });
  await assertSameRefsAndObjects(primary.repoPath("PROJ", "app"), dir);
  await m.stop();
});
