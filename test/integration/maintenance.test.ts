/**
 * Maintenance on schedule: repack with a bitmap and a commit-graph; fsck on its cadence,
 * and a corrupt repository is re-cloned from the primary.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { startInProcessMirror } from "../../testbed/inProcessMirror";
import { startPrimary } from "../../testbed/primary";
import { assertSameRefsAndObjects, git, workingClone } from "../../testbed/repos";
import { FIRST_CLONE_INDEX_MIN_BYTES } from "../../sync/daemon/engine";

jest.setTimeout(180_000);

const indexedState = (dir: string) => {
  const objects = path.join(dir, "objects");
  const packFiles = fs.readdirSync(path.join(objects, "pack"));
  return {
    midxBitmap: packFiles.some((f) => /^multi-pack-index-[0-9a-f]+\.bitmap$/.test(f)),
    commitGraph: fs.existsSync(path.join(objects, "info", "commit-graph")),
  };
};

/** A repository whose first pack is past FIRST_CLONE_INDEX_MIN_BYTES (incompressible content). */
async function bigRepo(primary: Awaited<ReturnType<typeof startPrimary>>, slug: string): Promise<void> {
  await primary.createRepo("PROJ", slug);
  const wc = await workingClone(primary.remote("PROJ", slug));
  await wc.commit({ "blob.bin": randomBytes(FIRST_CLONE_INDEX_MIN_BYTES + 64 * 1024) });
  await wc.pushAll();
}

test("a big first clone gets a multi-pack-index bitmap and commit-graph at once; a small one waits for maintenance", async () => {
  const primary = await startPrimary();
  await bigRepo(primary, "big");
  await primary.createRepo("PROJ", "small");
  const small = await workingClone(primary.remote("PROJ", "small"));
  await small.commit({ "a.txt": "a\n" });
  await small.pushAll();
  // Alone, so no other sync waits when its first clone ends (see the next test for a backlog).
  const m = await startInProcessMirror(primary, [{ project: "PROJ", slug: "big" }], { concurrency: 1 });
  await m.daemon.idle();
  expect(indexedState(m.daemon.repoDir("PROJ/big"))).toEqual({ midxBitmap: true, commitGraph: true });
  // The bitmap is usable: git loads it and checks it against a full walk (fails without one).
  await git(["rev-list", "--test-bitmap", "HEAD"], { cwd: m.daemon.repoDir("PROJ/big") });
  await assertSameRefsAndObjects(primary.repoPath("PROJ", "big"), m.daemon.repoDir("PROJ/big"));
  await m.stop();
  const m2 = await startInProcessMirror(primary, [{ project: "PROJ", slug: "small" }]);
  await m2.daemon.idle();
  expect(indexedState(m2.daemon.repoDir("PROJ/small"))).toEqual({ midxBitmap: false, commitGraph: false });
  await m2.stop();
});

test("while other syncs wait (an initial sync), a big first clone's bitmap and commit-graph wait for its next job", async () => {
  const primary = await startPrimary();
  const ids = [1, 2, 3].map((i) => ({ project: "PROJ", slug: `big${i}` }));
  for (const id of ids) await bigRepo(primary, id.slug);
  // One at a time: the first two finish with others still queued; the last one finds none.
  const m = await startInProcessMirror(primary, ids, { concurrency: 1 });
  await m.daemon.idle();
  const states = ids.map((id) => indexedState(m.daemon.repoDir(`PROJ/${id.slug}`)));
  expect(states.filter((s) => !s.midxBitmap && !s.commitGraph)).toHaveLength(2);
  expect(states.filter((s) => s.midxBitmap && s.commitGraph)).toHaveLength(1);
  // Complete and correct without them.
  for (const id of ids) await assertSameRefsAndObjects(primary.repoPath("PROJ", id.slug), m.daemon.repoDir(`PROJ/${id.slug}`));
  // The next reconcile finds their maintenance due and writes them (no repack).
  await m.daemon.reconcile();
  await m.daemon.idle();
  for (const id of ids) {
    const dir = m.daemon.repoDir(`PROJ/${id.slug}`);
    expect(indexedState(dir)).toEqual({ midxBitmap: true, commitGraph: true });
    await git(["rev-list", "--test-bitmap", "HEAD"], { cwd: dir });
    expect(fs.existsSync(path.join(dir, "smart-mirror.index-pending"))).toBe(false);
  }
  await m.stop();
});

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

test("a reclone during a webhook sync keeps the primary's default branch and does not start maintenance at once", async () => {
  const primary = await startPrimary();
  // Neither git's default (master) nor the bench's (main): HEAD must come from the primary.
  await primary.createRepo("PROJ", "hooked", { initialBranch: "trunk" });
  const wc = await workingClone(primary.remote("PROJ", "hooked"));
  await wc.commit({ "a.txt": "a\n" });
  await wc.pushAll();
  const m = await startInProcessMirror(primary, [{ project: "PROJ", slug: "hooked" }]);
  await m.daemon.idle();
  const dir = m.daemon.repoDir("PROJ/hooked");
  expect(fs.readFileSync(path.join(dir, "HEAD"), "utf8").trim()).toBe("ref: refs/heads/trunk");

  // Damage the copy (its object store gone: git no longer sees a repository there) and let a
  // webhook ask for a sync: the fetch fails on the damage and the repository is re-cloned
  // inside the webhook's job.
  fs.rmSync(path.join(dir, "objects"), { recursive: true, force: true });
  await wc.commit({ "b.txt": "b\n" });
  await wc.pushAll();
  expect(m.daemon.refsChanged("PROJ/hooked")).toBe("queued");
  await m.daemon.idle();
  expect(m.board.repo("PROJ/hooked")).toMatchObject({ state: "synced", consecutiveFailures: 0 });
  await assertSameRefsAndObjects(primary.repoPath("PROJ", "hooked"), dir);
  expect(fs.readFileSync(path.join(dir, "HEAD"), "utf8").trim()).toBe("ref: refs/heads/trunk");
  const packDir = path.join(dir, "objects", "pack");
  // A fresh clone is packed and checked already: its maintenance is scheduled (spread over the
  // interval), not run now. A repack would have written a bitmap and a commit-graph.
  expect(fs.existsSync(path.join(dir, "smart-mirror.repacked"))).toBe(true);
  expect(fs.readdirSync(packDir).filter((f) => f.endsWith(".bitmap"))).toEqual([]);
  expect(fs.existsSync(path.join(dir, "objects", "info", "commit-graph"))).toBe(false);
  await m.stop();
});
