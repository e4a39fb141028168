/**
 * A fetch killed mid-pack (kill -9, a timeout, a full disk) leaves git's partial pack behind
 * (objects/pack/tmp_pack_*, often most of the bytes received). The store removes them after a
 * failed fetch and at start, but never a file a live process still has open, and at start
 * never a very young one.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { knownHostsPath } from "../../sync/upstream/openssh";
import { gitEnv } from "../../sync/upstream/gitEnv";
import { RepoStore } from "../../sync/store/repoStore";
import { listTempFiles } from "../../sync/store/tempFiles";
import { mirrorRefspecs } from "../../sync/upstream/refFilter";
import { startInProcessMirror } from "../../testbed/inProcessMirror";
import { ensureLargeRepo } from "../../testbed/largeRepo";
import { startPrimary } from "../../testbed/primary";
import { assertSameRefsAndObjects, git, workingClone } from "../../testbed/repos";
import { onCleanup, waitFor } from "../../testbed/resources";

jest.setTimeout(600_000);

const ID = { project: "BIG", slug: "grow" };
/** Mostly incompressible assets: a pack of ~30 MB, so a kill lands while it is still arriving. */
const LARGE = { commits: 200, files: 1200, filesPerCommit: 6, meanFileBytes: 30_000, assetEvery: 2, branches: 2, commitsPerBranch: 10, tagEvery: 50, dirFanout: 6, seed: 11, repack: true };
const tempPacks = (dir: string) => listTempFiles(dir).filter((p) => path.basename(p).startsWith("tmp_pack_"));
/** Wait until git's partial pack has received this much: the kill lands mid-transfer. */
const partialPack = (dir: string, bytes: number) =>
  waitFor(`a partial pack of ${bytes} bytes in ${dir}`, () => tempPacks(dir).find((p) => fs.existsSync(p) && fs.statSync(p).size >= bytes), 300_000, 20);

test("temp packs of a killed fetch are swept after the failure and at start; open or young ones stay", async () => {
  const primary = await startPrimary();
  const bare = await primary.createRepo(ID.project, ID.slug);
  const wc = await workingClone(primary.remote(ID.project, ID.slug));
  await wc.commit({ "README.md": "small start\n" });
  await wc.pushAll();
  // The mirror holds the small repository...
  const m = await startInProcessMirror(primary, [ID]);
  await m.daemon.idle();
  await m.stop();
  // ...then the primary gets a large history (~30 MB of pack), so the next fetch takes a while.
  const large = await ensureLargeRepo(LARGE);
  await git(["--git-dir", bare, "fetch", "--quiet", large, "+refs/heads/*:refs/heads/big/*", "+refs/tags/*:refs/tags/*"]);

  const store = new RepoStore(m.home, []);
  const dir = store.dir(ID);
  const cm = fs.mkdtempSync(path.join(os.tmpdir(), "smcm-t"));
  onCleanup(() => fs.rmSync(cm, { recursive: true, force: true }));
  const env = gitEnv(process.env, { keyFile: m.keyFile, knownHostsFile: knownHostsPath(m.home), controlPath: path.join(cm, "%C"), controlPersistSec: 0, connectTimeoutSec: 15 });
  const url = `ssh://${primary.user}@${primary.host}:${primary.port}/${ID.project}/${ID.slug}.git`;

  // 1. A fetch that fails mid-pack (the scheduler's timeout aborts it: SIGKILL to git's group).
  const ac = new AbortController();
  const fetching = store.fetch(ID, url, env, ac.signal);
  await partialPack(dir, 1024 * 1024);
  ac.abort("timeout");
  await expect(fetching).rejects.toThrow(/aborted/);
  expect(listTempFiles(dir)).toEqual([]);

  // 2. The daemon killed -9 mid-fetch: its git (as the daemon runs it) dies with it.
  const child = spawn("git", ["-c", "fetch.unpackLimit=1", "fetch", "--atomic", "--quiet", url, ...mirrorRefspecs([])], { cwd: dir, env, detached: true, stdio: "ignore" });
  const exited = new Promise((r) => child.once("close", r));
  const killedPack = await partialPack(dir, 1024 * 1024);
  process.kill(-child.pid!, "SIGKILL");
  await exited;
  expect(fs.existsSync(killedPack)).toBe(true);
  // A temp file a live process still writes (an orphaned fetch): open, so it stays.
  const held = path.join(dir, "objects", "pack", "tmp_pack_heldOpen");
  const fd = fs.openSync(held, "w");
  const holder = spawn("sleep", ["600"], { stdio: ["ignore", fd, "ignore"] });
  fs.closeSync(fd);
  const holderExited = new Promise((r) => holder.once("close", r));
  onCleanup(() => void holder.kill("SIGKILL"));
  // Old enough for the age guard (as after a restart some seconds later)...
  const past = new Date(Date.now() - 60_000);
  for (const p of listTempFiles(dir)) fs.utimesSync(p, past, past);
  // ...but one just created by a writer /proc might not show stays too.
  const young = path.join(dir, "objects", "pack", "tmp_idx_young");
  fs.writeFileSync(young, "x");

  const rec = new RepoStore(m.home, []).recover();
  expect(rec.removedTemp.map((t) => t.path)).toEqual([killedPack]);
  expect(rec.removedTemp[0].bytes).toBeGreaterThanOrEqual(1024 * 1024);
  expect(listTempFiles(dir).sort()).toEqual([held, young].sort());

  holder.kill("SIGKILL");
  await holderExited;
  fs.utimesSync(young, past, past);
  expect(new RepoStore(m.home, []).recover().removedTemp.map((t) => t.path).sort()).toEqual([held, young].sort());
  expect(listTempFiles(dir)).toEqual([]);

  // The repository was never damaged: the next fetch completes and equals the primary.
  await store.fetch(ID, url, env, new AbortController().signal);
  await git(["fsck", "--strict", "--no-dangling"], { cwd: dir });
  await assertSameRefsAndObjects(bare, dir);
});
