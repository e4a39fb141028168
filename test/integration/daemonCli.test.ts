/**
 * The daemon as the host runs it: the built bundle as a subprocess. Bad configuration is
 * refused before anything is written; kill -9 at random moments never leaves a damaged
 * repository and the next start converges; SIGTERM drains and exits cleanly.
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { descendants, ensureBundle, getJson, killTree9, runDaemon, StatusDoc, waitForState } from "../bench/daemonProcess";
import { ensureLargeRepo } from "../bench/largeRepo";
import { makeMirrorHome, MirrorHome, writeMirrorProperties } from "../bench/mirrorHome";
import { Primary, startPrimary } from "../bench/primary";
import { assertSameRefsAndObjects, seededRandom, workingClone, WorkingClone } from "../bench/repos";
import { freePort, waitFor } from "../bench/resources";

jest.setTimeout(600_000);

function snapshotTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const st = fs.statSync(p);
      out.push(`${path.relative(dir, p)} ${st.size} ${st.mtimeMs}`);
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

const KILL_RUNS = Number(process.env.SMART_MIRROR_KILL_RUNS ?? 12);

describe("smart-mirror run (subprocess)", () => {
  let primary: Primary;
  const repos = [
    { project: "BIG", slug: "large" },
    { project: "PROJ", slug: "a" },
    { project: "PROJ", slug: "b" },
    { project: "TEAM", slug: "c" },
  ];
  let clones: WorkingClone[] = [];

  beforeAll(async () => {
    ensureBundle();
    primary = await startPrimary();
    // Large enough that a first clone takes a while, so kills land mid-fetch.
    const big = await ensureLargeRepo({ commits: 1500, files: 800, filesPerCommit: 4, meanFileBytes: 2500, branches: 3, commitsPerBranch: 20, tagEvery: 100, assetEvery: 20, dirFanout: 6, seed: 7, repack: true });
    await primary.importRepo("BIG", "large", big);
    clones = [];
    for (const r of repos.slice(1)) {
      await primary.createRepo(r.project, r.slug);
      const wc = await workingClone(primary.remote(r.project, r.slug));
      await wc.commit({ "README.md": `${r.slug}\n` });
      await wc.tag("v1", { message: "one" });
      await wc.pushAll();
      clones.push(wc);
    }
  });

  test("bad properties: check and run both exit 1 with key, value and fix; nothing is written", async () => {
    const mh = await makeMirrorHome(primary, { authorize: false });
    const port = await freePort();
    const file = writeMirrorProperties(mh, primary, { repos, listen: `127.0.0.1:${port}` });
    fs.appendFileSync(file, "plugin.mirroring.upstream.url=http://primary.test\nmirror.sync.concurency=4\n");
    // The duplicate key is itself a problem; use a clean file with the http URL instead.
    fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace("plugin.mirroring.upstream.url=https://primary.test\n", ""));
    const before = snapshotTree(mh.home);
    const check = spawnSync("node", [ensureBundle(), "check", "--home", mh.home], { encoding: "utf8" });
    expect(check.status).toBe(1);
    expect(check.stderr).toContain("plugin.mirroring.upstream.url");
    expect(check.stderr).toContain("http://primary.test");
    expect(check.stderr).toMatch(/https:\/\//);
    expect(check.stderr + check.stdout).toMatch(/mirror\.sync\.concurency[\s\S]*mirror\.sync\.concurrency/);
    const run = spawnSync("node", [ensureBundle(), "run", "--home", mh.home], { encoding: "utf8", timeout: 30000 });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain("plugin.mirroring.upstream.url");
    expect(run.stderr).toMatch(/fix:/);
    expect(snapshotTree(mh.home)).toEqual(before);
  });

  test("kill -9 at random moments: every repository stays valid and the next start converges", async () => {
    const mh: MirrorHome = await makeMirrorHome(primary);
    const port = await freePort();
    writeMirrorProperties(mh, primary, { repos, listen: `127.0.0.1:${port}`, extra: { "mirror.sync.concurrency": "4" } });
    const rnd = seededRandom(Number(process.env.SMART_MIRROR_KILL_SEED ?? 42));
    const killedWhile: string[] = [];
    for (let i = 0; i < KILL_RUNS; i++) {
      // Keep the primary moving so restarts have real fetches to do.
      const wc = clones[i % clones.length];
      await wc.commit({ [`f${i}.txt`]: `change ${i}\n` });
      if (i % 3 === 0) await wc.forcePushRewrite("main", { [`rw${i}.txt`]: "rewrite\n" });
      else await wc.push(["main"]);
      const p = runDaemon(mh.home);
      await waitFor("daemon to listen", () => getJson(port, "/healthz").then((r) => r.status === 200).catch(() => false), 30000, 20);
      await new Promise((r) => setTimeout(r, Math.floor(rnd() * 1500)));
      const gitChildren = descendants(p.child.pid!).filter((pid) => {
        try {
          return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").startsWith("git");
        } catch {
          return false;
        }
      }).length;
      killedWhile.push(gitChildren > 0 ? "fetching" : "idle");
      killTree9(p.child.pid!);
      await p.exited;
    }
    // At least some kills must have hit a running fetch, or the test proves little.
    expect(killedWhile.filter((k) => k === "fetching").length).toBeGreaterThan(0);

    const final = runDaemon(mh.home);
    const doc: StatusDoc = await waitForState(port, ["SYNCHRONIZED"], 300000);
    expect(doc.totalRepos).toBe(repos.length);
    expect(doc.syncedRepos).toBe(repos.length);
    final.child.kill("SIGTERM");
    const code = await final.exited;
    if (code !== 0) throw new Error(`daemon exited ${code} on SIGTERM:\n${final.output()}`);
    for (const r of repos) {
      const dir = path.join(mh.home, "repos", r.project, `${r.slug}.git`);
      execFileSync("git", ["fsck", "--strict", "--no-dangling"], { cwd: dir, stdio: "pipe" });
      await assertSameRefsAndObjects(primary.repoPath(r.project, r.slug), dir);
    }
    // No half-made first clone is left behind.
    const incoming = path.join(mh.home, "repos", ".incoming");
    expect(fs.existsSync(incoming) ? fs.readdirSync(incoming) : []).toEqual([]);
  });

  test("SIGTERM drains and exits 0; a changed setup.baseUrl is refused on the next start", async () => {
    const mh = await makeMirrorHome(primary);
    const port = await freePort();
    const file = writeMirrorProperties(mh, primary, { repos: repos.slice(1), listen: `127.0.0.1:${port}` });
    const p = runDaemon(mh.home);
    await waitForState(port, ["SYNCHRONIZED"], 120000);
    const metrics = await getJson(port, "/metrics");
    expect(String(metrics.body)).toContain("smart_mirror_sync_duration_seconds");
    p.child.kill("SIGTERM");
    expect(await p.exited).toBe(0);
    expect(fs.existsSync(path.join(mh.home, "run", "daemon.pid"))).toBe(false);

    // SIGTERM while the first reconcile is still connecting and scanning: a prompt, clean exit.
    const early = runDaemon(mh.home);
    await waitFor("daemon to listen", () => getJson(port, "/healthz").then((r) => r.status === 200).catch(() => false), 30000, 10);
    early.child.kill("SIGTERM");
    const earlyCode = await early.exited;
    if (earlyCode !== 0) throw new Error(`daemon exited ${earlyCode} on an early SIGTERM:\n${early.output()}`);

    fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace("https://mirror.test", "https://other-mirror.test"));
    const again = spawnSync("node", [ensureBundle(), "run", "--home", mh.home], { encoding: "utf8", timeout: 30000 });
    expect(again.status).toBe(1);
    expect(again.stderr).toContain("https://mirror.test");
    expect(again.stderr).toContain("https://other-mirror.test");
  });
});
