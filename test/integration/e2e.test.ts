/**
 * The product end to end, with real processes only:
 *
 *     root namespace (clients: git over HTTPS, webhook sender, the deployer's ssh/scp)
 *        │  bench bridge
 *        ├── netns "primary": OpenSSH primary (git-shell account) on :7999
 *        └── netns "mirror":  its own sshd :22  ← deploy (stage, scp, apply)
 *                             nginx :443 (TLS, mirror.test) → unix socket → smart-mirror daemon
 *                                                                 └── ssh → primary (across the bridge)
 *
 * The deploy runs the same commands the Pulumi component runs (components/deploy/commands.ts,
 * in remoteDeploy.ts's order: stage, copy bundle and plan, apply), over real SSH with the
 * mirror host's key pinned, applying the production plan (buildLocalPlan: the same renderers
 * and plan builder, every path under a root prefix, services run by the exec supervisor).
 * apply runs inside the mirror's namespace (it is an SSH command there), so the daemon and
 * nginx it starts live on the "host".
 *
 * Proves, in order:
 *   1. a first deploy starts both services; /status through nginx reaches SYNCHRONIZED;
 *   2. `git clone --mirror https://mirror.test/scm/...` from outside equals the primary
 *      (refs, objects, HEAD), and the certificate is really verified;
 *   3. push to the primary + the signed webhook through nginx -> the commit is served by the
 *      mirror (a forged signature is refused by the daemon behind nginx);
 *   4. a config change (interval, one more repository) redeploys only the properties file and
 *      restarts only the daemon (nginx: same pid); the new repository is mirrored; the old
 *      ones are served at once after the restart from the same pack files (no re-clone);
 *   5. deploying the same thing again changes and restarts nothing;
 *   6. stopping the services leaves no process of theirs in the mirror's namespace.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { remoteApplyCommand, remoteStageCommand, stagedPaths } from "../../components/deploy/commands";
import { buildLocalPlan, localPaths } from "../../components/deploy/localPlan";
import { serializePlan } from "../../components/deploy/plan";
import { renderProperties } from "../../components/render/properties";
import type { ApplySummary } from "../../sync/agent/apply";
import { execSupervisor, ExecSupervisor } from "../../sync/agent/execSupervisor";
import { privateBundleCopy } from "../../testbed/daemonProcess";
import { NetnsHost, runCommand, startNetnsHost } from "../../testbed/netnsHost";
import { MirrorStatus, PinnedName, pinnedRequest, pinnedStatus, pinnedWebhook } from "../../testbed/pinnedHttps";
import { Primary, startPrimary } from "../../testbed/primary";
import { assertSameRefsAndObjects, git, GitEnv, isolatedGitEnv, WorkingClone, workingClone } from "../../testbed/repos";
import { onCleanup, tempDir, waitFor } from "../../testbed/resources";
import { createCa } from "../../testbed/tls";
import { refsChangedPayload } from "../../testbed/webhook";

jest.setTimeout(300_000);

const SERVER_NAME = "mirror.test";
const UNITS = { daemon: "smart-mirror.service", nginx: "nginx.service" } as const;
/** The catalog of the first deploy; the redeploy adds ADDED_REPO. */
const FIRST_REPOS = ["PROJ/repo", "PROJ/lib", "TOOLS/scripts"];
const ADDED_REPO = "TOOLS/added";
/** Generous: two cores shared with other test files. */
const SYNC_DEADLINE_MS = 90_000;

const timings: Record<string, number> = {};
const since = (t0: number) => Date.now() - t0;


/** Everything the steps share. */
interface World {
  bundle: string;
  primaryHost: NetnsHost;
  mirrorHost: NetnsHost;
  primary: Primary;
  /** Working clones with push access, by "PROJECT/slug". */
  work: Map<string, WorkingClone>;
  root: string;
  stageDir: string;
  sup: ExecSupervisor;
  mirror: PinnedName;
  webhookSecret: string;
  mirrorKey: { privateKey: string; publicKey: string };
  tls: { chain: string; key: string };
  /** Client env for git through the mirror: trusts the test CA only, nothing from ~/.gitconfig. */
  clientEnv: GitEnv;
}

let w: World;

interface DeployResult {
  code: number;
  summary: ApplySummary;
  stdout: string;
  stderr: string;
}

/** The component's properties for a catalog and an interval (as scripts/start.ts renders them). */
function properties(repos: string[], syncInterval: string): string {
  const real = localPaths(w.root);
  return renderProperties({
    displayName: "End-to-end mirror",
    baseUrl: `https://${SERVER_NAME}`,
    upstreamUrl: "https://primary.test",
    sshUrl: `ssh://${w.primary.user}@${w.primary.host}:${w.primary.port}`,
    hostKeys: [w.primary.hostKeyLine],
    keyFile: real.keyFile,
    catalog: "static",
    catalogRepos: repos,
    projects: "ALL",
    webhookSecretFile: real.webhookSecretFile,
    // The bench primary has no REST API to check users against.
    auth: "anonymous",
    listen: `unix:${real.socket}`,
    syncInterval,
  });
}

/** Stage, copy, apply: remoteDeploy.ts's steps and commands, with ssh/scp in place of @pulumi/command. */
async function deploy(repos: string[], syncInterval: string): Promise<DeployResult> {
  const host = w.mirrorHost;
  const staged = stagedPaths(w.stageDir);
  const { plan } = buildLocalPlan({
    root: w.root,
    serverName: SERVER_NAME,
    httpsPort: 443,
    httpPort: false,
    listenAddresses: [host.address],
    propertiesText: properties(repos, syncInterval),
    mirrorPrivateKey: w.mirrorKey.privateKey,
    mirrorPublicKey: w.mirrorKey.publicKey,
    webhookSecret: w.webhookSecret,
    tlsCertificateChainPem: w.tls.chain,
    tlsPrivateKeyPem: w.tls.key,
    stagedBundle: staged.bundlePath,
  });
  const localPlan = path.join(tempDir("e2e-plan"), "plan.json");
  fs.writeFileSync(localPlan, serializePlan(plan), { mode: 0o600 });

  const stage = await host.ssh(remoteStageCommand({ stageDir: w.stageDir }));
  if (stage.code !== 0) throw new Error(`stage failed (${stage.code}): ${stage.stderr}`);
  // CopyToRemote copies over SFTP; OpenSSH 9's scp speaks SFTP too. scp takes the port as -P.
  const scpOpts = host.sshOptions().map((o) => (o === "-p" ? "-P" : o));
  for (const [local, remote] of [
    [w.bundle, staged.bundlePath],
    [localPlan, staged.planPath],
  ]) {
    const r = await runCommand("scp", ["-q", ...scpOpts, local, `root@${host.address}:${remote}`]);
    if (r.code !== 0) throw new Error(`scp ${local} -> ${remote} failed (${r.code}): ${r.stderr}`);
  }
  // As the component runs it (keepPlan: true), plus the bench's root prefix and supervisor.
  const cmd = remoteApplyCommand({ bundlePath: staged.bundlePath, planPath: staged.planPath, keepPlan: true, root: w.root, services: "exec" });
  expect(cmd).not.toContain(w.webhookSecret);
  const r = await host.ssh(cmd, { timeoutMs: 120_000 });
  let summary: ApplySummary;
  try {
    summary = JSON.parse(r.stdout) as ApplySummary;
  } catch {
    throw new Error(`remote apply printed no JSON summary (exit ${r.code}):\n${r.stdout}\n${r.stderr}\n${serviceLogs()}`);
  }
  if (r.code !== 0 || !summary.ok) throw new Error(`remote apply failed (exit ${r.code}): ${summary.error ?? ""}\n${r.stderr}\n${serviceLogs()}`);
  for (const out of [r.stdout, r.stderr]) {
    expect(out).not.toContain(w.webhookSecret);
    expect(out).not.toContain(w.mirrorKey.privateKey.split("\n")[1]);
  }
  // The component keeps the plan for a retry: private in the private stage dir.
  expect(fs.statSync(staged.planPath).mode & 0o777).toBe(0o600);
  expect(fs.statSync(w.stageDir).mode & 0o777).toBe(0o700);
  return { code: r.code, summary, stdout: r.stdout, stderr: r.stderr };
}

/** The nginx site's logs, under the deploy root (localPlan.ts puts them with nginx's prefix). */
const nginxSiteLog = (kind: "access" | "error") => path.join(w.root, "var/lib/smart-mirror-nginx", `smart_mirror.${kind}.log`);

function serviceLogs(): string {
  return [...Object.values(UNITS).map((u) => w.sup.logPath(u)), nginxSiteLog("error")]
    .map((file) => {
      let text = "(no log)";
      try {
        text = fs.readFileSync(file, "utf8").split("\n").slice(-30).join("\n");
      } catch {
        /* not started */
      }
      return `--- ${path.basename(file)} (last lines):\n${text}`;
    })
    .join("\n");
}

/** /status through nginx until SYNCHRONIZED with every repository of the catalog synced. */
async function waitSynchronized(total: number): Promise<MirrorStatus> {
  let last: MirrorStatus | undefined;
  return waitFor(
    `SYNCHRONIZED ${total}/${total} at https://${SERVER_NAME}/status`,
    async () => {
      last = await pinnedStatus(w.mirror);
      return last && last.state === "SYNCHRONIZED" && last.syncedRepos === total && last.totalRepos === total ? last : undefined;
    },
    SYNC_DEADLINE_MS,
    250,
  ).catch((e: Error) => {
    throw new Error(`${e.message}\nlast status: ${JSON.stringify(last)}\n${serviceLogs()}`);
  });
}

const cloneUrl = (repo: string) => `https://${SERVER_NAME}/scm/${repo}.git`;
/** git's own --resolve: the name, the certificate check and SNI stay mirror.test. */
const resolveArgs = () => ["-c", `http.curloptResolve=${SERVER_NAME}:443:${w.mirrorHost.address}`];

/** The mirror's refs/heads/main as its copy on disk has it (loose or packed), without git. */
function mirrorMain(repo: string): string | undefined {
  const dir = mirrorRepoDir(repo);
  try {
    return fs.readFileSync(path.join(dir, "refs", "heads", "main"), "utf8").trim();
  } catch {
    const packed = fs.readFileSync(path.join(dir, "packed-refs"), "utf8");
    return /^([0-9a-f]{40}) refs\/heads\/main$/m.exec(packed)?.[1];
  }
}

async function lsRemoteMain(repo: string): Promise<string | undefined> {
  const out = await git([...resolveArgs(), "ls-remote", cloneUrl(repo), "refs/heads/main"], { env: w.clientEnv });
  return out.split("\t")[0].trim() || undefined;
}

async function mirrorCloneEqualsPrimary(repo: string): Promise<void> {
  const [project, slug] = repo.split("/");
  const dest = path.join(tempDir("e2e-clone"), `${slug}.git`);
  await git([...resolveArgs(), "clone", "--quiet", "--mirror", cloneUrl(repo), dest], { env: w.clientEnv });
  await assertSameRefsAndObjects(dest, w.primary.repoPath(project, slug));
}

/** The mirror's on-disk repository (the daemon's store under the deploy root). */
const mirrorRepoDir = (repo: string) => path.join(localPaths(w.root).home, "repos", `${repo}.git`);

/** Pack files of a mirror repository with inode and mtime: a re-clone or repack changes them. */
function packFiles(repo: string): string[] {
  const dir = path.join(mirrorRepoDir(repo), "objects", "pack");
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".pack"))
    .map((f) => {
      const st = fs.statSync(path.join(dir, f));
      return `${f} ino=${st.ino} mtime=${st.mtimeMs}`;
    })
    .sort();
}

async function seedRepo(repo: string, i: number): Promise<void> {
  const [project, slug] = repo.split("/");
  await w.primary.createRepo(project, slug);
  const wc = await workingClone(w.primary.remote(project, slug));
  await wc.commit({ "README.md": `# ${repo}\n`, [`src/file-${i}.txt`]: `content of ${repo}\n` });
  await wc.branch("develop");
  await wc.commit({ "CHANGELOG.md": "## 1.0.0\n" });
  await wc.tag("v1.0.0", { message: "first release" });
  await wc.pushAll();
  w.work.set(repo, wc);
}

function pidsInNamespace(host: NetnsHost): Array<{ pid: number; cmd: string }> {
  const out = execFileSync("ip", ["netns", "pids", host.ns], { encoding: "utf8" });
  return out
    .split("\n")
    .filter(Boolean)
    .map((p) => {
      let cmd = "";
      try {
        cmd = fs.readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0").join(" ").trim();
      } catch {
        /* exited */
      }
      return { pid: Number(p), cmd };
    })
    .filter((p) => p.cmd !== "");
}

beforeAll(async () => {
  const t0 = Date.now();
  const bundle = privateBundleCopy(tempDir("e2e-bundle"));
  timings.bundleMs = since(t0);
  // Made before the hosts, so it is removed after them (cleanups run last first).
  const root = tempDir("e2e-root");
  const stageDir = path.join(tempDir("e2e-stage"), "stage");
  const [primaryHost, mirrorHost] = await Promise.all([startNetnsHost("primary"), startNetnsHost("mirror")]);
  const sup = execSupervisor(root);
  // Runs before the hosts' stop (which would kill them anyway): stop them the supervisor's way.
  onCleanup(async () => {
    for (const u of Object.values(UNITS)) await sup.stop(u).catch(() => undefined);
  });
  // The primary's sshd inside its own namespace, on that namespace's address: the mirror
  // reaches it across the bridge; the test pushes to it from the root namespace.
  const primary = await startPrimary({ wrap: ["ip", "netns", "exec", primaryHost.ns], host: primaryHost.address, port: 7999, label: "e2e-primary" });

  const keyDir = tempDir("e2e-mirror-key");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "smart-mirror@mirror.test", "-f", path.join(keyDir, "id")]);
  const mirrorKey = { privateKey: fs.readFileSync(path.join(keyDir, "id"), "utf8"), publicKey: fs.readFileSync(path.join(keyDir, "id.pub"), "utf8").trim() };
  // "Approve the mirror": its key gets read access on the primary.
  await primary.authorizeKey(mirrorKey.publicKey, { readOnly: true });

  const ca = await createCa("smart-mirror e2e CA");
  const cert = await ca.issueServerCert([SERVER_NAME, mirrorHost.address]);
  w = {
    bundle,
    primaryHost,
    mirrorHost,
    primary,
    work: new Map(),
    root,
    stageDir,
    sup,
    mirror: { name: SERVER_NAME, address: mirrorHost.address, caPem: ca.certPem },
    webhookSecret: `e2e-${Math.random().toString(36).slice(2)}-${Date.now().toString(36)}`,
    mirrorKey,
    tls: { chain: fs.readFileSync(cert.chainPath, "utf8"), key: fs.readFileSync(cert.keyPath, "utf8") },
    clientEnv: isolatedGitEnv({ GIT_SSL_CAINFO: ca.certPath }),
  };
  await Promise.all([...FIRST_REPOS, ADDED_REPO].map((repo, i) => seedRepo(repo, i)));
  timings.setupMs = since(t0);
});

afterAll(() => {
  process.stdout.write(`e2e timings (ms): ${JSON.stringify(timings)}\n`);
});

describe("deploy onto a network-namespace host over SSH, then use the mirror from outside", () => {
  let tip = "";
  let nginxPid: number | undefined;
  let daemonPid: number | undefined;

  test("first deploy: both services start on the host; /status through nginx reaches SYNCHRONIZED", async () => {
    const t0 = Date.now();
    const { summary } = await deploy(FIRST_REPOS, "1h");
    timings.firstDeployMs = since(t0);
    expect(summary.started).toEqual([UNITS.daemon, UNITS.nginx]);
    expect(summary.restarted).toEqual([]);
    expect(summary.enabled).toEqual([UNITS.daemon, UNITS.nginx]);
    expect(summary.changed).toEqual(expect.arrayContaining(["/var/lib/smart-mirror/shared/bitbucket.properties", "/opt/smart-mirror/smart-mirror.js", "/etc/nginx/conf.d/smart-mirror.conf"]));

    daemonPid = w.sup.mainPid(UNITS.daemon);
    nginxPid = w.sup.mainPid(UNITS.nginx);
    expect(daemonPid).toBeDefined();
    expect(nginxPid).toBeDefined();
    // Both really run on the "host": inside the mirror's network namespace.
    const inNs = pidsInNamespace(w.mirrorHost).map((p) => p.pid);
    expect(inNs).toEqual(expect.arrayContaining([daemonPid, nginxPid]));

    const status = await waitSynchronized(FIRST_REPOS.length);
    timings.firstSyncMs = since(t0);
    expect(status).toMatchObject({ state: "SYNCHRONIZED", syncedRepos: 3, totalRepos: 3 });
  });

  test("git clone --mirror https://mirror.test/scm/... from the root namespace equals the primary", async () => {
    const t0 = Date.now();
    for (const repo of FIRST_REPOS) await mirrorCloneEqualsPrimary(repo);
    timings.clonesMs = since(t0);
    // The clones went through the deployed nginx, from the root namespace's side of the bridge.
    const access = fs.readFileSync(nginxSiteLog("access"), "utf8").split("\n");
    for (const repo of FIRST_REPOS) expect(access.some((l) => l.startsWith(`${w.mirrorHost.gatewayAddress} `) && l.includes(`/scm/${repo}.git/`))).toBe(true);
    // The certificate is really checked: without the test CA, git refuses the mirror.
    await expect(git([...resolveArgs(), "ls-remote", cloneUrl("PROJ/repo")], { env: { ...w.clientEnv, GIT_SSL_CAINFO: "/dev/null" } })).rejects.toThrow(/certificate|SSL|TLS/i);
  });

  test("push to the primary + signed webhook through nginx: the commit is served by the mirror", async () => {
    const wc = w.work.get("PROJ/repo")!;
    tip = await wc.commit({ "NEWS.md": "pushed by the end-to-end test\n" });
    await wc.push(["main"]);
    // A forged signature goes through nginx and is refused by the daemon (its own counter says
    // so, read through nginx's internal allow-list: the bench bridge is a private range).
    expect(await pinnedWebhook(w.mirror, "not-the-secret", refsChangedPayload("PROJ", "repo"))).toBe(401);
    const metrics = await pinnedRequest(w.mirror, { path: "/metrics" });
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(/^smart_mirror_webhooks_total\{result="unauthorized"\} 1$/m);
    expect(metrics.body).not.toMatch(/^smart_mirror_webhooks_total\{result="accepted"\} [1-9]/m);
    // Read on disk, not through a clone or ls-remote: those would bring the commit themselves
    // (mirror.serve.freshness=always checks the primary before advertising).
    expect(mirrorMain("PROJ/repo")).not.toBe(tip);

    const t0 = Date.now();
    expect(await pinnedWebhook(w.mirror, w.webhookSecret, refsChangedPayload("PROJ", "repo"))).toBe(202);
    // The interval is 1 h: only the webhook can bring the commit in time.
    await waitFor("the pushed commit on the mirror", () => mirrorMain("PROJ/repo") === tip, 30_000, 50);
    timings.webhookToVisibleMs = since(t0);
    expect(await lsRemoteMain("PROJ/repo")).toBe(tip);
    expect((await pinnedRequest(w.mirror, { path: "/metrics" })).body).toMatch(/^smart_mirror_webhooks_total\{result="accepted"\} 1$/m);
    await mirrorCloneEqualsPrimary("PROJ/repo");
  });

  test("redeploy with a changed config: only the properties change, only the daemon restarts; data survives", async () => {
    expect(tip).not.toBe("");
    const packsBefore = Object.fromEntries(FIRST_REPOS.map((r) => [r, packFiles(r)]));
    expect(packsBefore["PROJ/repo"].length).toBeGreaterThan(0);
    expect(fs.existsSync(mirrorRepoDir(ADDED_REPO))).toBe(false);

    const t0 = Date.now();
    const { summary } = await deploy([...FIRST_REPOS, ADDED_REPO], "30m");
    timings.redeployMs = since(t0);
    expect(summary).toMatchObject({
      ok: true,
      accounts: [],
      changed: ["/var/lib/smart-mirror/shared/bitbucket.properties"],
      restarted: [UNITS.daemon],
      reloaded: [],
      started: [],
      enabled: [],
    });
    // The daemon's own check ran on the candidate config before the restart.
    expect(summary.validated).toEqual([expect.stringMatching(/ check --home /)]);
    const propsText = fs.readFileSync(localPaths(w.root).properties, "utf8");
    expect(propsText).toContain("plugin.mirroring.synchronization.interval=30m");
    expect(propsText).toContain(ADDED_REPO);
    expect(w.sup.mainPid(UNITS.nginx)).toBe(nginxPid);
    const newDaemon = w.sup.mainPid(UNITS.daemon);
    expect(newDaemon).toBeDefined();
    expect(newDaemon).not.toBe(daemonPid);
    daemonPid = newDaemon;

    // The first answer through nginx after the restart already serves the pushed commit: the
    // repositories on disk are served as they are, not re-cloned first.
    const first = await waitFor(
      "the restarted daemon to answer through nginx",
      async () => {
        try {
          return { main: await lsRemoteMain("PROJ/repo") };
        } catch {
          return undefined; // 502 until the daemon listens on its socket
        }
      },
      SYNC_DEADLINE_MS,
      100,
    );
    expect(first.main).toBe(tip);

    await waitSynchronized(FIRST_REPOS.length + 1);
    timings.redeployToSynchronizedMs = since(t0);
    await mirrorCloneEqualsPrimary(ADDED_REPO);
    // The earlier repositories still have the very same pack files (same inode and mtime).
    for (const repo of FIRST_REPOS) expect({ repo, packs: packFiles(repo) }).toEqual({ repo, packs: packsBefore[repo] });
    await mirrorCloneEqualsPrimary("PROJ/repo");
  });

  test("deploying the same again changes and restarts nothing", async () => {
    const t0 = Date.now();
    const { summary } = await deploy([...FIRST_REPOS, ADDED_REPO], "30m");
    timings.noopDeployMs = since(t0);
    expect(summary).toMatchObject({ ok: true, accounts: [], changed: [], validated: [], daemonReload: false, enabled: [], restarted: [], reloaded: [], started: [] });
    expect(summary.unchanged).toBeGreaterThan(0);
    expect(w.sup.mainPid(UNITS.daemon)).toBe(daemonPid);
    expect(w.sup.mainPid(UNITS.nginx)).toBe(nginxPid);
    expect((await pinnedStatus(w.mirror))?.state).toBe("SYNCHRONIZED");
  });

  test("stopping the services leaves none of their processes on the host; the hosts go away", async () => {
    const before = pidsInNamespace(w.mirrorHost);
    expect(before.map((p) => p.pid)).toEqual(expect.arrayContaining([daemonPid, nginxPid]));
    for (const u of Object.values(UNITS)) await w.sup.stop(u);
    expect(w.sup.mainPid(UNITS.daemon)).toBeUndefined();
    expect(w.sup.mainPid(UNITS.nginx)).toBeUndefined();
    // Left in the namespace: the host's own sshd only (nginx workers, git and ssh children of
    // the daemon are gone with their service).
    const left = await waitFor(
      "only the host's sshd left in the mirror's namespace",
      () => {
        const now = pidsInNamespace(w.mirrorHost);
        return now.every((p) => p.cmd.includes(`${w.mirrorHost.dir}/sshd_config`)) ? now : undefined;
      },
      15_000,
      100,
    ).catch((e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify(pidsInNamespace(w.mirrorHost))}`);
    });
    expect(left.length).toBe(1);
    await w.primary.stop();
    await Promise.all([w.mirrorHost.stop(), w.primaryHost.stop()]);
    const namespaces = execFileSync("ip", ["netns", "list"], { encoding: "utf8" });
    expect(namespaces).not.toContain(w.mirrorHost.ns);
    expect(namespaces).not.toContain(w.primaryHost.ns);
  });
});
