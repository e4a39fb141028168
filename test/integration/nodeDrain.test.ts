/**
 * One node's lifecycle behind a load balancer (issue 17, item 5), with every part real: git
 * clients over TLS -> nginx running the rendered site -> the built daemon's unix socket.
 * A client that has stopped reading is a real `git clone` behind a relay that holds the
 * server-to-client direction (testbed/gatedProxy.ts): deterministic, no timing.
 *
 * - SIGTERM with a clone in flight: readiness (GET /status/ready through nginx) turns 503 at
 *   once, /status says draining, a new request is still served, the daemon waits; released,
 *   the clone completes with a correct checkout and the daemon exits 0 having cut nothing.
 * - mirror.drain.timeout cuts a stuck client, and the daemon says how many it cut; git, which
 *   writes straight into the client's connection, does not outlive the cut.
 * - The quiet period: requests keep being served and the daemon keeps running; a second signal
 *   ends the drain at once.
 * - `smart-mirror drain` waits for the clone in flight, leaves the daemon up and not ready
 *   (still serving), `--cancel` makes it ready again, and a SIGTERM then stops it at once.
 * - A restart through the agent's exec supervisor (the rendered unit, its TimeoutStopSec from
 *   the drain bound) with a clone in flight: the clone succeeds and the new daemon comes up.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { renderDaemonUnit } from "../../components/render/systemd";
import { execSupervisor } from "../../sync/agent/execSupervisor";
import { runProcess } from "../../sync/agent/runProcess";
import { DRAIN_METRIC_NAMES } from "../../sync/serve/drain";
import { ensureBundle } from "../../testbed/daemonProcess";
import { GatedProxy, startGatedProxy } from "../../testbed/gatedProxy";
import { ensureLargeRepo, LargeRepoParams } from "../../testbed/largeRepo";
import { MirrorBehindNginx, mirrorCertificate, startMirrorBehindNginx, startTlsFront, TlsFront, tlsClient } from "../../testbed/mirrorBehindNginx";
import { makeMirrorHome, writeMirrorProperties } from "../../testbed/mirrorHome";
import { Primary, startPrimary } from "../../testbed/primary";
import { chownTree, git, GitEnv, GitError, initBare, workingClone } from "../../testbed/repos";
import { request } from "../../testbed/httpClient";
import { processesOn } from "../../testbed/processes";
import { onCleanup, tempDir, waitFor } from "../../testbed/resources";

jest.setTimeout(600_000);

const BIG = { project: "BIG", slug: "large" };
/** ~12 MB packed (incompressible assets): far more than the socket buffers between a stalled client and git. */
const BIG_PARAMS: Partial<LargeRepoParams> = { commits: 120, files: 300, filesPerCommit: 3, dirFanout: 4, meanFileBytes: 60000, assetEvery: 1, branches: 2, commitsPerBranch: 5, tagEvery: 40, seed: 11 };
/**
 * For the cut: one incompressible blob several times what the kernel and nginx can buffer between
 * git and a stalled client (loopback TCP autotunes to several MB each way), so a cut clone cannot
 * have been sent whole already.
 */
const HUGE = { project: "BIG", slug: "huge" };
const HUGE_BYTES = 48 * 1024 * 1024;
/** The relay holds the client's reading after this much of the answer: mid-pack. */
const HOLD_AFTER = 1024 * 1024;

let primary: Primary;
let primaryHead: string;
/** What the runs measured (printed at the end; not asserted: a shared, noisy machine). */
const measured: Record<string, number> = {};

afterAll(() => {
  process.stdout.write(`nodeDrain measurements (ms): ${JSON.stringify(measured)}\n`);
});

/** durationMs of the daemon's "drained" log line. */
function drainedMs(log: string): number {
  const line = log.split("\n").find((l) => l.includes('"msg":"drained"'));
  return line ? (JSON.parse(line) as { durationMs: number }).durationMs : NaN;
}

beforeAll(async () => {
  ensureBundle();
  primary = await startPrimary();
  await primary.importRepo(BIG.project, BIG.slug, await ensureLargeRepo(BIG_PARAMS));
  primaryHead = (await git(["rev-parse", "HEAD"], { cwd: primary.repoPath(BIG.project, BIG.slug) })).trim();
  const huge = path.join(tempDir("huge"), "huge.git");
  await initBare(huge);
  const w = await workingClone(huge);
  await w.commit({ "blob.bin": randomBytes(HUGE_BYTES) });
  await w.push(["main"]);
  await primary.importRepo(HUGE.project, HUGE.slug, huge);
});

async function inFlight(socketPath: string): Promise<number> {
  // On the daemon's own socket, not through nginx.
  const text = (await request({ kind: "unix", path: socketPath }, { path: "/metrics" })).body;
  const line = text.split("\n").find((l) => l.startsWith(`${DRAIN_METRIC_NAMES.inFlight} `));
  return line ? Number(line.split(" ")[1]) : NaN;
}

async function ready(front: Pick<TlsFront, "request">): Promise<{ status: number; body: { ready: boolean; state: string; draining: boolean } }> {
  const r = await front.request("GET", "/status/ready");
  return { status: r.status, body: JSON.parse(r.body.toString("utf8")) as { ready: boolean; state: string; draining: boolean } };
}

interface HeldClone {
  proxy: GatedProxy;
  dest: string;
  done: Promise<{ ok: true } | { ok: false; stderr: string }>;
}

/** A real `git clone` through nginx whose reading stalls mid-pack until released; in the daemon's flight when this resolves. */
async function heldClone(front: Pick<TlsFront, "ca" | "port">, socketPath: string, repo = BIG): Promise<HeldClone> {
  const proxy = await startGatedProxy({ targetPort: front.port, holdAfterBytes: HOLD_AFTER });
  const client = tlsClient(front.ca, proxy.port);
  const dest = path.join(tempDir("held-clone"), "w");
  const done = git(["clone", "--quiet", `${client.base}/scm/${repo.project}/${repo.slug}.git`, dest], { env: client.gitEnv() }).then(
    () => ({ ok: true }) as const,
    (e: unknown) => ({ ok: false, stderr: e instanceof GitError ? e.stderr : String(e) }) as const,
  );
  await proxy.whenHeld;
  await waitFor("the clone in the daemon's flight", async () => (await inFlight(socketPath)) >= 1, 30_000, 50);
  return { proxy, dest, done };
}

/** The clone's checkout is the primary's HEAD, complete and clean. */
async function assertGoodCheckout(dest: string): Promise<void> {
  expect((await git(["rev-parse", "HEAD"], { cwd: dest })).trim()).toBe(primaryHead);
  await git(["fsck", "--full", "--no-progress"], { cwd: dest });
  expect((await git(["status", "--porcelain"], { cwd: dest })).trim()).toBe("");
}

async function lsRemote(m: MirrorBehindNginx): Promise<string> {
  return git(["ls-remote", m.url(BIG.project, BIG.slug), "HEAD"], { env: m.gitEnv() });
}

const mirror = (props: Record<string, string>, repos = [BIG]) =>
  startMirrorBehindNginx({ primary, repos, properties: { "mirror.serve.packCacheMb": "0", ...props } }).then(async (m) => {
    await m.waitSynchronized();
    return m;
  });

test("SIGTERM with a clone in flight: readiness 503 at once, new requests served, the clone completes, then the daemon stops having cut nothing", async () => {
  const m = await mirror({ "mirror.drain.quietPeriod": "1s", "mirror.drain.timeout": "10m" });
  expect(await ready(m)).toEqual({ status: 200, body: { ready: true, state: "SYNCHRONIZED", draining: false } });
  const held = await heldClone(m, m.socketPath);

  m.daemon.child.kill("SIGTERM");
  const r = await waitFor("readiness 503", async () => {
    const x = await ready(m);
    return x.status === 503 ? x : undefined;
  }, 30_000, 20);
  expect(r.body).toEqual({ ready: false, state: "SYNCHRONIZED", draining: true });
  const status = JSON.parse((await m.request("GET", "/status")).body.toString("utf8")) as Record<string, unknown>;
  expect(status).toMatchObject({ state: "SYNCHRONIZED", ready: false, draining: true });
  // The balancer has not noticed yet: what still arrives is served.
  expect(await lsRemote(m)).toContain(primaryHead);
  // The held clone keeps the daemon up: it cannot have finished.
  expect(m.daemon.child.exitCode).toBeNull();

  held.proxy.release();
  expect(await held.done).toEqual({ ok: true });
  await assertGoodCheckout(held.dest);
  expect(await m.daemon.exited).toBe(0);
  const out = m.daemon.output();
  expect(out).toMatch(/"cut":0,.*"msg":"drained"/);
  expect(out).not.toContain("still running");
  measured.sigtermDrainWithHeldCloneMs = drainedMs(out);
});

test("the drain bound cuts a stuck client and says so", async () => {
  const m = await mirror({ "mirror.drain.timeout": "2s" }, [HUGE]);
  const held = await heldClone(m, m.socketPath, HUGE);
  m.daemon.child.kill("SIGTERM");
  expect(await m.daemon.exited).toBe(0);
  expect(m.daemon.output()).toContain("drain timed out (mirror.drain.timeout); cut 1 request(s) still running");
  // Git wrote straight into the cut connection (handOff.ts): it must not outlive the cut and
  // carry the transfer on (it did: the clone completed after the daemon had exited).
  expect(processesOn(m.mh.home, /upload-pack|pack-objects/)).toEqual([]);
  held.proxy.release();
  const r = await held.done;
  // Cut: the pack is far larger than every buffer between git and the stalled client.
  expect(r.ok).toBe(false);
  expect(held.proxy.downstreamBytes()).toBeLessThan(HUGE_BYTES);
});

test("during the quiet period requests are served and the daemon stays; a second signal ends the drain at once", async () => {
  const m = await mirror({ "mirror.drain.quietPeriod": "50m", "mirror.drain.timeout": "1h" });
  m.daemon.child.kill("SIGTERM");
  await waitFor("readiness 503", async () => (await ready(m)).status === 503, 30_000, 20);
  // A whole clone and an ls-remote during the quiet period.
  const dest = path.join(tempDir("quiet-clone"), "w");
  await git(["clone", "--quiet", m.url(BIG.project, BIG.slug), dest], { env: m.gitEnv() });
  await assertGoodCheckout(dest);
  expect(await lsRemote(m)).toContain(primaryHead);
  expect(m.daemon.child.exitCode).toBeNull();
  m.daemon.child.kill("SIGTERM");
  expect(await m.daemon.exited).toBe(0);
  expect(m.daemon.output()).toContain("second stop signal: ending the drain now");
});

test("`smart-mirror drain` waits for the clone in flight and leaves the daemon draining; --cancel makes it ready; SIGTERM then stops at once", async () => {
  const m = await mirror({});
  const held = await heldClone(m, m.socketPath);
  const cli = runProcess([process.execPath, ensureBundle(), "drain", "--home", m.mh.home, "--timeout", "600"]);
  let cliDone = false;
  void cli.then(() => (cliDone = true));
  await waitFor("readiness 503", async () => (await ready(m)).status === 503, 30_000, 20);
  expect(cliDone).toBe(false);
  held.proxy.release();
  expect(await held.done).toEqual({ ok: true });
  await assertGoodCheckout(held.dest);
  const r = await cli;
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout)).toMatchObject({ drained: true, remaining: 0, timedOut: false });
  // Drained, still up: not ready, and still serving.
  expect(await ready(m)).toEqual({ status: 503, body: { ready: false, state: "SYNCHRONIZED", draining: true } });
  expect(await lsRemote(m)).toContain(primaryHead);
  const cancel = await runProcess([process.execPath, ensureBundle(), "drain", "--home", m.mh.home, "--cancel"]);
  expect(cancel.code).toBe(0);
  expect(await ready(m)).toEqual({ status: 200, body: { ready: true, state: "SYNCHRONIZED", draining: false } });
  // Not through nginx: the drain control is the host's.
  expect((await m.request("POST", "/drain")).status).toBe(404);
  const t0 = Date.now();
  m.daemon.child.kill("SIGTERM");
  expect(await m.daemon.exited).toBe(0);
  measured.sigtermAfterCliDrainToExitMs = Date.now() - t0;
  expect(m.daemon.output()).toMatch(/"cut":0,.*"msg":"drained"/);
});

test("a restart through the agent's exec supervisor with a clone in flight: the clone succeeds, the new daemon comes up", async () => {
  // The rendered unit runs the daemon as its own account (never root), as on a host.
  const user = `smd${process.pid.toString(36)}${Math.random().toString(36).slice(2, 5)}`;
  const add = await runProcess(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user]);
  if (add.code !== 0) throw new Error(`useradd failed: ${add.stderr}`);
  onCleanup(async () => {
    await runProcess(["userdel", user]);
    await runProcess(["groupdel", user]);
  });
  const id = (flag: string) => runProcess(["id", flag, user]).then((r) => Number(r.stdout.trim()));
  const [uid, gid] = [await id("-u"), await id("-g")];

  const mh = await makeMirrorHome(primary);
  const sockDir = tempDir("sup-sock");
  const socketPath = path.join(sockDir, "http.sock");
  writeMirrorProperties(mh, primary, { repos: [BIG], listen: `unix:${socketPath}`, extra: { "mirror.serve.packCacheMb": "0", "mirror.drain.timeout": "10m" } });
  await chownTree(mh.home, uid, gid);
  await chownTree(sockDir, uid, gid);
  // The bundle where the account can read it (the bench tree may not be).
  const bundleDir = tempDir("sup-bundle");
  const bundle = path.join(bundleDir, "smart-mirror.js");
  fs.copyFileSync(ensureBundle(), bundle);
  for (const d of [bundleDir, sockDir, mh.home]) for (let p = d; p !== "/"; p = path.dirname(p)) fs.chmodSync(p, fs.statSync(p).mode | 0o111);
  fs.chmodSync(bundle, 0o644);

  const root = tempDir("sup-root");
  const unitText = renderDaemonUnit({ user, home: mh.home, bundlePath: bundle, nodePath: process.execPath, drainTimeoutSec: 600 });
  expect(unitText).toContain("TimeoutStopSec=640s");
  fs.mkdirSync(path.join(root, "etc/systemd/system"), { recursive: true });
  fs.writeFileSync(path.join(root, "etc/systemd/system/smart-mirror.service"), unitText);
  const sup = execSupervisor(root);
  const UNIT = "smart-mirror.service";
  onCleanup(() => sup.stop(UNIT));
  await sup.start(UNIT);
  await waitFor("the daemon's socket", () => fs.existsSync(socketPath), 60_000, 25);

  const tlsMaterial = await mirrorCertificate();
  const front = await startTlsFront(tlsMaterial, socketPath);
  const waitReady = () => waitFor("ready (GET /status/ready 200)", async () => (await ready(front).catch(() => ({ status: 0 }))).status === 200, 300_000, 100);
  await waitReady();
  const oldPid = sup.mainPid(UNIT);

  const held = await heldClone(front, socketPath);
  const t0 = Date.now();
  let restarted = false;
  const restart = sup.restart(UNIT).then(() => (restarted = true));
  await waitFor("the old daemon draining", async () => (await ready(front)).status === 503, 30_000, 20);
  expect(restarted).toBe(false);
  held.proxy.release();
  expect(await held.done).toEqual({ ok: true });
  await assertGoodCheckout(held.dest);
  await restart;
  measured.supervisorRestartMs = Date.now() - t0;
  const newPid = sup.mainPid(UNIT);
  expect(newPid).toBeDefined();
  expect(newPid).not.toBe(oldPid);
  await waitReady();
  measured.restartToReadyMs = Date.now() - t0;
  const log = fs.readFileSync(sup.logPath(UNIT), "utf8");
  measured.supervisorDrainMs = drainedMs(log);
  expect(log).toMatch(/"cut":0,.*"msg":"drained"/);
  expect(log).not.toContain("still running");
  // The new daemon serves.
  const env: GitEnv = front.gitEnv();
  expect(await git(["ls-remote", `${front.base}/scm/${BIG.project}/${BIG.slug}.git`, "HEAD"], { env })).toContain(primaryHead);
});
