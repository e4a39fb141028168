/**
 * The daemon as the host runs it: the built bundle as a subprocess. Bad configuration is
 * refused before anything is written; kill -9 at random moments never leaves a damaged
 * repository and the next start converges; SIGTERM drains and exits cleanly.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { ensureBundle, getJson, runDaemon, StatusDoc, waitForState } from "../../testbed/daemonProcess";
import { runKillCampaign } from "../../testbed/killCampaign";
import { makeMirrorHome, MirrorHome, writeMirrorProperties } from "../../testbed/mirrorHome";
import { Primary, startPrimary } from "../../testbed/primary";
import { assertSameRefsAndObjects, workingClone, WorkingClone } from "../../testbed/repos";
import { freePort, waitFor } from "../../testbed/resources";

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

const KILL_RUNS = Number(process.env.SMART_MIRROR_KILL_RUNS ?? 6);

describe("smart-mirror run (subprocess)", () => {
  let primary: Primary;
  const repos = [
    { project: "PROJ", slug: "a" },
    { project: "PROJ", slug: "b" },
    { project: "TEAM", slug: "c" },
  ];
  let clones: WorkingClone[] = [];

  beforeAll(async () => {
    ensureBundle();
    primary = await startPrimary();
    clones = [];
    for (const r of repos) {
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

  test("kill -9 during real fetches of large packs: fsck --strict clean after every kill; the next start converges to the primary's refs with no temporary file left", async () => {
    // A primary of its own: the campaign makes its repositories (large packs) and keeps pushing.
    const r = await runKillCampaign(await startPrimary({ label: "kill-primary" }), { kills: KILL_RUNS, seed: Number(process.env.SMART_MIRROR_KILL_SEED ?? 42) });
    expect(r.problems).toEqual([]);
    // The kills must hit fetches in flight, first clones among them, or the test proves little.
    expect(r.killsDuringFetch).toBeGreaterThanOrEqual(Math.ceil(KILL_RUNS / 2));
    expect(r.killsDuringFirstClone).toBeGreaterThan(0);
    expect(r.corruptRepos).toBe(0);
    expect(r.refsEqual).toBe(true);
    expect(r.leftovers).toEqual([]);
  });

  test("after a restart, /status is not SYNCHRONIZED before the first reconcile round: the primary moved while the daemon was down", async () => {
    const mh: MirrorHome = await makeMirrorHome(primary);
    const port = await freePort();
    const few = repos;
    // A short interval: the reconcile after the primary is back comes soon.
    writeMirrorProperties(mh, primary, { repos: few, listen: `127.0.0.1:${port}`, extra: { "plugin.mirroring.synchronization.interval": "10s" } });
    const first = runDaemon(mh.home);
    await waitForState(port, ["SYNCHRONIZED"], 120000);
    first.child.kill("SIGTERM");
    expect(await first.exited).toBe(0);
    // While it was down: a push. Block the primary's answers until we have looked (sshd down),
    // so "before the first reconcile" is a state we observe, not a race we hope to win.
    await clones[0].commit({ "down.txt": "pushed while the mirror was down\n" });
    await clones[0].push(["main"]);
    await primary.stop();
    // In its place, a port that accepts and never answers: the first reconcile hangs in the
    // SSH handshake, so the daemon is observably "started, not reconciled yet".
    const sockets: net.Socket[] = [];
    const silent = net.createServer((sock) => sockets.push(sock));
    await new Promise<void>((resolve) => silent.listen(primary.port, primary.host, resolve));
    const p = runDaemon(mh.home);
    try {
      await waitFor("daemon to listen", () => getJson(port, "/healthz").then((r) => r.status === 200).catch(() => false), 30000, 20);
      const early = (await getJson(port, "/status")).body as StatusDoc;
      expect(early).toMatchObject({ state: "INITIAL_SYNC", syncedRepos: few.length, totalRepos: few.length });
      for (const sock of sockets) sock.destroy();
      await new Promise((resolve) => silent.close(resolve));
      await primary.restart();
      const doc = await waitForState(port, ["SYNCHRONIZED"], 120000);
      expect(doc.syncedRepos).toBe(few.length);
      // SYNCHRONIZED now means it: the push made while it was down is there.
      for (const r of few) await assertSameRefsAndObjects(primary.repoPath(r.project, r.slug), path.join(mh.home, "repos", r.project, `${r.slug}.git`));
    } finally {
      if (!primary.running()) await primary.restart();
      p.child.kill("SIGTERM");
      await p.exited;
    }
  });

  test("SIGTERM drains and exits 0; a changed setup.baseUrl is refused on the next start", async () => {
    const mh = await makeMirrorHome(primary);
    const port = await freePort();
    const file = writeMirrorProperties(mh, primary, { repos, listen: `127.0.0.1:${port}` });
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
