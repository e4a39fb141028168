/**
 * A full disk, for real: the mirror home on a small tmpfs that the test fills to the last
 * byte. The daemon (the built bundle, as systemd runs it) still starts and serves the copies it
 * has, reports the disk on /status and /metrics, refuses the first clone of a new repository
 * with the reason, pauses fetches, and catches up by itself once space is back.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { getJson, runDaemon, StatusDoc, waitForState } from "../../testbed/daemonProcess";
import { makeMirrorHome, writeMirrorProperties } from "../../testbed/mirrorHome";
import { startPrimary } from "../../testbed/primary";
import { assertSameRefsAndObjects, git, isolatedGitEnv, listRefs, workingClone } from "../../testbed/repos";
import { freePort, onCleanup, tempDir, waitFor } from "../../testbed/resources";

jest.setTimeout(300_000);

const IS_ROOT = process.geteuid?.() === 0;
const MiB = 2 ** 20;

/** Write zeros until the file system says ENOSPC; returns the filler's path. */
function fill(dir: string): string {
  const file = path.join(dir, "filler");
  const fd = fs.openSync(file, "w");
  const chunk = Buffer.alloc(MiB);
  try {
    for (let size = chunk.length; size >= 512; ) {
      try {
        fs.writeSync(fd, chunk, 0, size);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e;
        size = Math.floor(size / 2);
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return file;
}

(IS_ROOT ? test : test.skip)("disk full: the daemon restarts and serves, says so, refuses first clones, and recovers by itself", async () => {
  const primary = await startPrimary();
  const repos = [
    { project: "PROJ", slug: "a" },
    { project: "PROJ", slug: "b" },
  ];
  const fresh = { project: "PROJ", slug: "fresh" };
  const clones = new Map<string, Awaited<ReturnType<typeof workingClone>>>();
  for (const r of [...repos, fresh]) {
    await primary.createRepo(r.project, r.slug);
    const wc = await workingClone(primary.remote(r.project, r.slug));
    await wc.commit({ "README.md": `${r.slug}\n`, "data.txt": "x".repeat(200_000) });
    await wc.pushAll();
    clones.set(r.slug, wc);
  }

  // The mirror home on its own small file system.
  const keys = await makeMirrorHome(primary);
  const home = tempDir("disk-full-home");
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=24m,mode=0755", "smart-mirror-test-tmpfs", home]);
  onCleanup(() => void execFileSync("umount", ["-l", home]));
  fs.cpSync(path.join(keys.home, "shared"), path.join(home, "shared"), { recursive: true });
  const mh = { home, keyFile: path.join(home, "shared", "ssh", "id_ed25519"), publicKey: keys.publicKey };
  const port = await freePort();
  const props = (rs: typeof repos) =>
    writeMirrorProperties(mh, primary, { repos: rs, listen: `127.0.0.1:${port}`, extra: { "mirror.disk.minFreeMb": "4", "mirror.sync.retryMax": "2s" } });

  props(repos);
  let p = runDaemon(home);
  await waitForState(port, ["SYNCHRONIZED"], 120_000);
  p.child.kill("SIGTERM");
  expect(await p.exited).toBe(0);

  // A new repository in the catalog and a push on the primary; then the disk fills up.
  props([...repos, fresh]);
  const wa = clones.get("a")!;
  await wa.commit({ "more.txt": "more\n" });
  await wa.pushAll();
  const filler = fill(home);
  expect(fs.statfsSync(home).bavail * fs.statfsSync(home).bsize).toBeLessThan(MiB);

  // It starts (it could not: the pid file, known_hosts), and it serves.
  p = runDaemon(home);
  const status = await waitFor(
    "/status to report the full disk",
    async () => {
      if (p.child.exitCode !== null) throw new Error(`the daemon exited ${p.child.exitCode} on a full disk:\n${p.output()}`);
      const r = await getJson(port, "/status").catch(() => undefined);
      const doc = r?.body as StatusDoc | undefined;
      return doc?.disk === "full" ? doc : undefined;
    },
    60_000,
    100,
  );
  expect(status.state).toBe("DEGRADED");
  const metrics = String((await getJson(port, "/metrics")).body);
  expect(metrics).toMatch(/^smart_mirror_disk_low 1$/m);
  expect(metrics).toMatch(/^smart_mirror_disk_free_bytes \d+$/m);
  const dest = path.join(tempDir("disk-full-clone"), "b");
  await git(["clone", "--quiet", "--bare", `http://127.0.0.1:${port}/scm/PROJ/b.git`, dest], { env: isolatedGitEnv() }).catch((e: Error) => {
    throw new Error(`${e.message}\n${p.output()}`);
  });
  expect(await listRefs(dest)).toEqual(await listRefs(primary.repoPath("PROJ", "b")));
  await waitFor("the first clone to be refused with its reason", () => /first clone of PROJ\/fresh postponed/.test(p.output()), 60_000, 100);
  expect(fs.existsSync(path.join(home, "repos", "PROJ", "fresh.git"))).toBe(false);

  // Space comes back: without any help the mirror catches up.
  fs.rmSync(filler);
  const done = await waitForState(port, ["SYNCHRONIZED"], 120_000);
  expect(done).toMatchObject({ disk: "ok", syncedRepos: 3, totalRepos: 3 });
  for (const r of [...repos, fresh]) await assertSameRefsAndObjects(primary.repoPath(r.project, r.slug), path.join(home, "repos", r.project, `${r.slug}.git`));
  expect(String((await getJson(port, "/metrics")).body)).toMatch(/^smart_mirror_disk_low 0$/m);
  p.child.kill("SIGTERM");
  expect(await p.exited).toBe(0);
});
