/**
 * `smart-mirror apply` as a deploy runs it: the BUILT bundle applying a real plan under a
 * temp root, creating a real system user, laying down the rendered daemon unit and an nginx
 * unit, and supervising both for real (exec supervisor: systemd is not PID 1 here). Then the
 * same over real SSH to a network-namespace host, with the exact commands the Pulumi deploy
 * runs (components/deploy/commands.ts).
 *
 * Proves: right modes and owners; a second apply changes and restarts nothing; a changed file
 * restarts only the service watching it (nginx is reloaded, same master); a bad nginx config
 * is refused by `nginx -t`, rolled back, nothing restarted, exit 1 with nginx's message; no
 * secret in any output; the plan is deleted after a remote apply.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { remoteApplyCommand, remoteStageCommand, stagedPaths } from "../../components/deploy/commands";
import { renderDaemonUnit } from "../../components/render/systemd";
import { lookupGroup, lookupUser } from "../../sync/agent/accountsIo";
import { ApplySummary } from "../../sync/agent/apply";
import { execSupervisor } from "../../sync/agent/execSupervisor";
import { Plan, PLAN_VERSION } from "../../sync/agent/plan";
import { runProcess } from "../../sync/agent/runProcess";
import { startNetnsHost } from "../../testbed/netnsHost";
import { nginxContext, NGINX_BIN, renderNginxConf } from "../../testbed/nginx";
import { freePort, onCleanup, tempDir, waitFor } from "../../testbed/resources";

jest.setTimeout(300_000);

const REPO = path.resolve(__dirname, "../..");
const IS_ROOT = process.geteuid?.() === 0;
const HOME = "/var/lib/smart-mirror";
const b64 = (s: string | Buffer) => Buffer.from(s).toString("base64");

let bundle: string;
const timings: Record<string, number> = {};

beforeAll(() => {
  const t0 = Date.now();
  execFileSync("npm", ["run", "build", "--silent"], { cwd: REPO, stdio: "inherit" });
  timings.buildMs = Date.now() - t0;
  // A private copy: other test files may rebuild dist/ while this one runs.
  bundle = path.join(tempDir("agent-bundle"), "smart-mirror.js");
  fs.copyFileSync(path.join(REPO, "dist", "smart-mirror.js"), bundle);
});

afterAll(() => {
  process.stdout.write(`agentApply timings (ms): ${JSON.stringify(timings)}\n`);
});

/** A system account name nobody else uses; deleted (with its group) after the test file. */
function testAccount(tag: string): string {
  const name = `smt${tag}${process.pid.toString(36)}${Math.random().toString(36).slice(2, 5)}`;
  onCleanup(async () => {
    await runProcess(["userdel", name]);
    await runProcess(["groupdel", name]);
  });
  return name;
}

function keyPair(): { priv: string; pubLine: string } {
  const dir = tempDir("agent-key");
  const f = path.join(dir, "k");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "agent-test", "-f", f]);
  return { priv: fs.readFileSync(f, "utf8"), pubLine: fs.readFileSync(`${f}.pub`, "utf8").trim().split(" ").slice(0, 2).join(" ") };
}

interface MirrorPlanArgs {
  root: string;
  user?: string;
  bundleSource: string;
  daemonPort: number;
  mirrorKey: string;
  primaryHostKey: string;
  logLevel?: string;
  /** nginx: the body returned on /, or a raw server block; omitted = no nginx in the plan. */
  nginx?: { port: number; body?: string; rawServer?: string };
}

function properties(a: MirrorPlanArgs): string {
  return [
    "setup.displayName=Agent test mirror",
    "setup.baseUrl=https://mirror.test",
    "plugin.mirroring.upstream.url=https://primary.test",
    // Nothing listens there: the daemon runs, reports the primary unreachable, and serves /status.
    "mirror.upstream.sshUrl=ssh://git@127.0.0.1:9",
    `mirror.upstream.hostKeys=${a.primaryHostKey}`,
    "mirror.catalog=static",
    "mirror.catalog.repos=PROJ/repo",
    `mirror.serve.listen=127.0.0.1:${a.daemonPort}`,
    "mirror.serve.auth=anonymous",
    `mirror.log.level=${a.logLevel ?? "info"}`,
    "",
  ].join("\n");
}

/** The plan a deploy would render: daemon (rendered unit, config, key) and optionally nginx. */
function mirrorPlan(a: MirrorPlanArgs): Plan {
  const R = a.root;
  const u = a.user;
  const own = u ? { owner: u } : {};
  const plan: Plan = {
    version: PLAN_VERSION,
    users: u ? [{ name: u, home: HOME }] : [],
    dirs: [
      { path: HOME, mode: 0o750, ...own },
      { path: `${HOME}/shared`, mode: 0o750, ...own },
      { path: `${HOME}/shared/ssh`, mode: 0o700, ...own },
      { path: "/opt/smart-mirror", mode: 0o755 },
    ],
    files: [
      { path: "/opt/smart-mirror/smart-mirror.js", sourcePath: a.bundleSource, mode: 0o644 },
      { path: `${HOME}/shared/bitbucket.properties`, contentBase64: b64(properties(a)), mode: 0o640, ...(u ? { group: u } : {}) },
      { path: `${HOME}/shared/ssh/id_ed25519`, contentBase64: b64(a.mirrorKey), mode: 0o600, secret: true, ...own },
      {
        path: "/etc/systemd/system/smart-mirror.service",
        // Rendered knowing the root: the exec supervisor runs ExecStart as written.
        contentBase64: b64(renderDaemonUnit({ user: u ?? "nobody", home: `${R}${HOME}`, bundlePath: `${R}/opt/smart-mirror/smart-mirror.js`, nodePath: process.execPath })),
        mode: 0o644,
      },
    ],
    services: [{ unit: "smart-mirror.service", watches: [`${HOME}/shared`, "/opt/smart-mirror/smart-mirror.js"], enable: true }],
  };
  if (a.nginx) {
    const prefix = `${R}/var/lib/sm-nginx`;
    const conf = `${R}/etc/sm-nginx/nginx.conf`;
    const server = a.nginx.rawServer ?? `server {\n  listen 127.0.0.1:${a.nginx.port};\n  location / { return 200 "${a.nginx.body ?? "v1"}\\n"; }\n}`;
    plan.dirs.push({ path: "/etc/sm-nginx", mode: 0o755 }, { path: "/var/lib/sm-nginx", mode: 0o755 }, { path: "/var/lib/sm-nginx/logs", mode: 0o755 }, { path: "/var/lib/sm-nginx/temp", mode: 0o755 });
    plan.files.push(
      { path: "/etc/sm-nginx/nginx.conf", contentBase64: b64(renderNginxConf(nginxContext(prefix), server)), mode: 0o644 },
      {
        path: "/etc/systemd/system/sm-nginx.service",
        contentBase64: b64(["[Unit]", "Description=nginx for the agent test", "[Service]", `ExecStart=${NGINX_BIN} -e stderr -p ${prefix} -c ${conf}`, "ExecReload=/bin/kill -s HUP $MAINPID", "KillMode=mixed", "TimeoutStopSec=10s", "[Install]", "WantedBy=multi-user.target", ""].join("\n")),
        mode: 0o644,
      },
    );
    plan.services.push({ unit: "sm-nginx.service", watches: ["/etc/sm-nginx"], reload: true, enable: true });
    plan.validate = [{ argv: [NGINX_BIN, "-t", "-q", "-e", "stderr", "-p", prefix, "-c", conf], when: ["/etc/sm-nginx"] }];
  }
  return plan;
}

function writePlan(plan: Plan): string {
  const file = path.join(tempDir("agent-plan"), "plan.json");
  fs.writeFileSync(file, JSON.stringify(plan), { mode: 0o600 });
  return file;
}

interface ApplyRun {
  code: number;
  summary: ApplySummary;
  stdout: string;
  stderr: string;
  ms: number;
}

async function applyLocal(plan: Plan, root: string): Promise<ApplyRun> {
  const t0 = Date.now();
  const r = await runProcess([process.execPath, bundle, "apply", "--plan", writePlan(plan), "--root", root]);
  const ms = Date.now() - t0;
  let summary: ApplySummary;
  try {
    summary = JSON.parse(r.stdout) as ApplySummary;
  } catch {
    throw new Error(`apply printed no JSON summary (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  return { ...r, summary, ms };
}

function get(port: number, urlPath = "/"): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path: urlPath, timeout: 5000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("timeout")));
  });
}

/** Uid and gid lines of /proc/PID/status: who the process really runs as. */
function procIds(pid: number): { uid: number; gid: number; groups: number[] } {
  const s = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (k: string) => (new RegExp(`^${k}:\\s*(.*)$`, "m").exec(s)?.[1] ?? "").trim().split(/\s+/).filter(Boolean).map(Number);
  return { uid: field("Uid")[0], gid: field("Gid")[0], groups: field("Groups") };
}

const stat = (p: string) => {
  const st = fs.statSync(p);
  return { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
};

describe("smart-mirror apply (built bundle, --root, exec supervisor)", () => {
  test("users, modes, owners; idempotent; restarts only what changed; a bad nginx config is rolled back", async () => {
    const root = tempDir("agent-root");
    const user = IS_ROOT ? testAccount("l") : undefined;
    const sup = execSupervisor(root);
    onCleanup(async () => {
      await sup.stop("sm-nginx.service");
      await sup.stop("smart-mirror.service");
    });
    const key = keyPair();
    const args: MirrorPlanArgs = { root, user, bundleSource: bundle, daemonPort: await freePort(), mirrorKey: key.priv, primaryHostKey: keyPair().pubLine, nginx: { port: await freePort(), body: "v1" } };

    // 1. First apply: everything is new.
    const first = await applyLocal(mirrorPlan(args), root);
    timings.firstApplyMs = first.ms;
    expect({ code: first.code, stderr: first.code ? first.stderr : "" }).toEqual({ code: 0, stderr: "" });
    const s1 = first.summary;
    expect(s1.ok).toBe(true);
    if (user) expect(s1.accounts).toEqual([`group ${user}`, `user ${user}`]);
    expect(s1.changed).toHaveLength(14); // 8 dirs + 6 files
    expect(s1.unchanged).toBe(0);
    expect(s1.daemonReload).toBe(true);
    expect(s1.validated).toHaveLength(1);
    expect(s1.enabled).toEqual(["smart-mirror.service", "sm-nginx.service"]);
    expect(s1.started).toEqual(["smart-mirror.service", "sm-nginx.service"]);
    expect(s1.restarted).toEqual([]);

    // Modes and owners, against the real account database.
    const pw = user ? await lookupUser(user) : undefined;
    const gr = user ? await lookupGroup(user) : undefined;
    if (user) {
      expect(pw).toMatchObject({ name: user, home: HOME, shell: "/usr/sbin/nologin" });
      expect(pw!.uid).toBeLessThan(1000); // a system account
      expect(gr?.gid).toBe(pw!.gid);
    }
    const uid = pw?.uid ?? 0;
    const gid = pw?.gid ?? 0;
    expect(stat(`${root}${HOME}`)).toEqual({ mode: 0o750, uid, gid });
    expect(stat(`${root}${HOME}/shared/ssh`)).toEqual({ mode: 0o700, uid, gid });
    expect(stat(`${root}${HOME}/shared/ssh/id_ed25519`)).toEqual({ mode: 0o600, uid, gid });
    expect(stat(`${root}${HOME}/shared/bitbucket.properties`)).toEqual({ mode: 0o640, uid: 0, gid });
    expect(stat(`${root}/etc/systemd/system/smart-mirror.service`)).toEqual({ mode: 0o644, uid: 0, gid: 0 });
    expect(fs.readFileSync(`${root}/opt/smart-mirror/smart-mirror.js`).equals(fs.readFileSync(bundle))).toBe(true);

    // Both services really run: the daemon as the new account, reading its 0600 key.
    const status = await waitFor("the daemon's /status", async () => {
      const r = await get(args.daemonPort, "/status").catch(() => undefined);
      // 503 while the primary is unreachable (by design): any JSON answer proves the daemon runs.
      return r && r.status > 0 ? (JSON.parse(r.body) as { displayName: string; totalRepos: number }) : undefined;
    }, 30_000);
    expect(status).toMatchObject({ displayName: "Agent test mirror", totalRepos: 1 });
    const daemonPid = sup.mainPid("smart-mirror.service")!;
    expect(procIds(daemonPid)).toMatchObject({ uid, gid });
    expect(await waitFor("nginx v1", async () => (await get(args.nginx!.port).catch(() => undefined))?.body === "v1\n")).toBe(true);
    const nginxPid = sup.mainPid("sm-nginx.service")!;

    // No secret in any output.
    const secretLine = key.priv.split("\n")[1];
    for (const out of [first.stdout, first.stderr]) {
      expect(out).not.toContain(secretLine);
      expect(out).not.toContain(b64(key.priv).slice(0, 40));
    }

    // 2. Same plan again: nothing.
    const second = await applyLocal(mirrorPlan(args), root);
    timings.noopApplyMs = second.ms;
    expect(second.code).toBe(0);
    expect(second.summary).toEqual({ ok: true, dryRun: false, accounts: [], changed: [], details: [], unchanged: 14, validated: [], daemonReload: false, enabled: [], restarted: [], reloaded: [], started: [] });
    expect(sup.mainPid("smart-mirror.service")).toBe(daemonPid);
    expect(sup.mainPid("sm-nginx.service")).toBe(nginxPid);

    // 3. nginx config changed: checked, nginx reloaded (same master), the daemon untouched.
    args.nginx = { port: args.nginx!.port, body: "v2" };
    const third = await applyLocal(mirrorPlan(args), root);
    expect(third.code).toBe(0);
    expect(third.summary).toMatchObject({ changed: ["/etc/sm-nginx/nginx.conf"], validated: [expect.stringContaining("nginx -t")], reloaded: ["sm-nginx.service"], restarted: [], started: [] });
    expect(await waitFor("nginx v2", async () => (await get(args.nginx!.port).catch(() => undefined))?.body === "v2\n")).toBe(true);
    expect(sup.mainPid("sm-nginx.service")).toBe(nginxPid);
    expect(sup.mainPid("smart-mirror.service")).toBe(daemonPid);

    // 4. Daemon config changed: only the daemon restarts (a new process), nginx untouched.
    args.logLevel = "debug";
    const fourth = await applyLocal(mirrorPlan(args), root);
    expect(fourth.code).toBe(0);
    expect(fourth.summary).toMatchObject({ changed: [`${HOME}/shared/bitbucket.properties`], restarted: ["smart-mirror.service"], reloaded: [], started: [], validated: [] });
    const newDaemonPid = sup.mainPid("smart-mirror.service");
    expect(newDaemonPid).toBeDefined();
    expect(newDaemonPid).not.toBe(daemonPid);
    expect(sup.mainPid("sm-nginx.service")).toBe(nginxPid);
    await waitFor("the restarted daemon's /status", async () => ((await get(args.daemonPort, "/status").catch(() => undefined))?.status ?? 0) > 0, 30_000);

    // 5. A broken nginx config: `nginx -t` refuses it, the old file is back, nothing restarted.
    const confPath = `${root}/etc/sm-nginx/nginx.conf`;
    const goodConf = fs.readFileSync(confPath);
    const bad = { ...args, nginx: { port: args.nginx.port, rawServer: `server {\n  listen 127.0.0.1:${args.nginx.port};\n  location / { retrun 200 "v3"; }\n}` } };
    const fifth = await applyLocal(mirrorPlan(bad), root);
    expect(fifth.code).toBe(1);
    expect(fifth.stderr).toMatch(/smart-mirror apply: check failed: `\/usr\/sbin\/nginx -t .*` exited 1:\n.*unknown directive "retrun" in .*nginx\.conf:\d+/);
    expect(fifth.stderr).toMatch(/rolled back 1 change\(s\) \(\/etc\/sm-nginx\/nginx\.conf\); no service was touched/);
    expect(fifth.summary).toMatchObject({ ok: false, rolledBack: ["/etc/sm-nginx/nginx.conf"], reloaded: [], restarted: [] });
    expect(fs.readFileSync(confPath).equals(goodConf)).toBe(true);
    expect(stat(confPath).mode).toBe(0o644);
    expect((await get(args.nginx.port)).body).toBe("v2\n");
    expect(sup.mainPid("sm-nginx.service")).toBe(nginxPid);
    expect(sup.mainPid("smart-mirror.service")).toBe(newDaemonPid);

    // ... and the good plan again is a no-op.
    const sixth = await applyLocal(mirrorPlan(args), root);
    expect(sixth.summary.changed).toEqual([]);
    expect(sixth.summary.restarted).toEqual([]);
  });
});

describe("smart-mirror apply over real SSH (netns host, pinned host key)", () => {
  test("stage, copy bundle and plan, apply; idempotent; the plan does not outlive the apply", async () => {
    const host = await startNetnsHost("agent");
    const user = IS_ROOT ? testAccount("r") : undefined;
    const remoteRoot = tempDir("agent-remote-root");
    const stageDir = path.join(tempDir("agent-remote-stage"), "stage");
    const sup = execSupervisor(remoteRoot);
    onCleanup(() => sup.stop("smart-mirror.service"));
    const { bundlePath, planPath } = stagedPaths(stageDir);
    // scp takes the port with -P; sshOptions() is written for ssh (-p).
    const scpOpts = host.sshOptions().map((o) => (o === "-p" ? "-P" : o));
    const scp = (local: string, remote: string) => runProcess(["scp", "-q", ...scpOpts, local, `root@${host.address}:${remote}`]);
    const key = keyPair();
    const args: MirrorPlanArgs = { root: remoteRoot, user, bundleSource: bundlePath, daemonPort: 7990, mirrorKey: key.priv, primaryHostKey: keyPair().pubLine };

    const deploy = async (plan: Plan): Promise<ApplyRun> => {
      const t0 = Date.now();
      const staged = await host.ssh(remoteStageCommand({ stageDir }));
      expect({ code: staged.code, err: staged.stderr }).toEqual({ code: 0, err: "" });
      for (const [local, remote] of [[bundle, bundlePath], [writePlan(plan), planPath]]) {
        const r = await scp(local, remote);
        expect({ code: r.code, err: r.stderr }).toEqual({ code: 0, err: "" });
      }
      expect(stat(planPath).mode).toBe(0o600);
      const cmd = remoteApplyCommand({ nodePath: process.execPath, bundlePath, planPath, root: remoteRoot });
      expect(cmd).not.toContain(key.priv.split("\n")[1]);
      const r = await host.ssh(cmd);
      const ms = Date.now() - t0;
      let summary: ApplySummary;
      try {
        summary = JSON.parse(r.stdout) as ApplySummary;
      } catch {
        throw new Error(`remote apply printed no JSON summary (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
      }
      return { ...r, summary, ms };
    };

    const first = await deploy(mirrorPlan(args));
    timings.remoteFirstDeployMs = first.ms;
    expect({ code: first.code, stderr: first.code ? first.stderr : "" }).toEqual({ code: 0, stderr: "" });
    if (user) expect(first.summary.accounts).toEqual([`group ${user}`, `user ${user}`]);
    expect(first.summary.changed).toHaveLength(8);
    expect(first.summary.started).toEqual(["smart-mirror.service"]);
    expect(fs.existsSync(planPath)).toBe(false);
    expect(stat(stageDir).mode).toBe(0o700);
    for (const out of [first.stdout, first.stderr]) expect(out).not.toContain(key.priv.split("\n")[1]);
    const uid = user ? (await lookupUser(user))!.uid : 0;
    expect(stat(`${remoteRoot}${HOME}/shared/ssh/id_ed25519`)).toMatchObject({ mode: 0o600, uid });

    // The daemon runs inside the host's namespace: reach it from there.
    const status = await waitFor("the remote daemon's /status", async () => {
      const r = await host.ssh(`curl -s http://127.0.0.1:${args.daemonPort}/status`);
      return r.code === 0 && r.stdout ? (JSON.parse(r.stdout) as { displayName: string }) : undefined;
    }, 30_000, 250).catch((e: Error) => {
      throw new Error(`${e.message}\nservice log:\n${fs.readFileSync(sup.logPath("smart-mirror.service"), "utf8")}`);
    });
    expect(status.displayName).toBe("Agent test mirror");
    const pid = sup.mainPid("smart-mirror.service")!;
    expect(procIds(pid).uid).toBe(uid);
    // Not reachable from outside the namespace: it really runs on the "host".
    await expect(get(args.daemonPort, "/status")).rejects.toThrow();

    const second = await deploy(mirrorPlan(args));
    timings.remoteNoopDeployMs = second.ms;
    expect(second.code).toBe(0);
    expect(second.summary).toMatchObject({ accounts: [], changed: [], unchanged: 8, restarted: [], reloaded: [], started: [], enabled: [] });
    expect(sup.mainPid("smart-mirror.service")).toBe(pid);
    expect(fs.existsSync(planPath)).toBe(false);

    args.logLevel = "debug";
    const third = await deploy(mirrorPlan(args));
    expect(third.summary).toMatchObject({ changed: [`${HOME}/shared/bitbucket.properties`], restarted: ["smart-mirror.service"] });
    expect(sup.mainPid("smart-mirror.service")).not.toBe(pid);
  });
});
