/**
 * applyPlan in-process against real files under a temp root and real processes run by the
 * exec supervisor: idempotency, what counts as a change, rollback after a failed check,
 * conflicts, dry run, streamed source files, and no secret in any output.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { onCleanup, tempDir, waitFor } from "../../testbed/resources";
import { ApplyError, applyPlan, ApplySummary } from "./apply";
import { execSupervisor, ExecSupervisor } from "./execSupervisor";
import { backupName, sha256OfBuffer } from "./fsOps";
import { Plan, PLAN_VERSION } from "./plan";
import { parsePlan } from "./planSchema";

const b64 = (s: string) => Buffer.from(s).toString("base64");
const SECRET = "s3cr3t-webhook-value-do-not-print";

/** A tiny service: records its pid, appends "reload" on SIGHUP and "term" on SIGTERM. */
const SERVICE_JS = `
const fs = require("fs");
const out = process.argv[2];
process.on("SIGHUP", () => fs.appendFileSync(out + "/events", "reload\\n"));
process.on("SIGTERM", () => { fs.appendFileSync(out + "/events", "term\\n"); process.exit(0); });
// After the handlers: a test waits for this file before it signals (SIGHUP's default is to die).
fs.writeFileSync(out + "/pid", String(process.pid));
setInterval(() => {}, 1 << 30);
`;

function unit(root: string, name: string): string {
  return [
    "[Unit]",
    `Description=test service ${name}`,
    "[Service]",
    `ExecStart=${process.execPath} ${root}/srv/svc/service.js ${root}/var/lib/${name}`,
    "ExecReload=/bin/kill -s HUP $MAINPID",
    "KillMode=mixed",
    "TimeoutStopSec=10s",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

function makePlan(root: string, over: { conf?: string; confMode?: number } = {}): Plan {
  return {
    version: PLAN_VERSION,
    users: [],
    dirs: [
      { path: "/srv/svc", mode: 0o755 },
      { path: "/var/lib/alpha", mode: 0o750 },
      { path: "/var/lib/beta", mode: 0o750 },
      { path: "/etc/alpha", mode: 0o755 },
    ],
    files: [
      { path: "/srv/svc/service.js", contentBase64: b64(SERVICE_JS), mode: 0o644 },
      { path: "/etc/systemd/system/alpha.service", contentBase64: b64(unit(root, "alpha")), mode: 0o644 },
      { path: "/etc/systemd/system/beta.service", contentBase64: b64(unit(root, "beta")), mode: 0o644 },
      { path: "/etc/alpha/alpha.conf", contentBase64: b64(over.conf ?? "setting = 1\n"), mode: over.confMode ?? 0o644 },
      { path: "/etc/alpha/webhook-secret", contentBase64: b64(SECRET), mode: 0o600, secret: true },
      { path: "/etc/beta.conf", contentBase64: b64("beta = 1\n"), mode: 0o640 },
    ],
    services: [
      { unit: "alpha.service", watches: ["/etc/alpha", "/srv/svc/service.js"], enable: true },
      { unit: "beta.service", watches: ["/etc/beta.conf"], reload: true, enable: true },
    ],
    validate: [{ argv: ["/bin/sh", "-c", 'grep -q "^setting" "$0" || { echo "alpha.conf: no setting line" >&2; exit 4; }', `${root}/etc/alpha/alpha.conf`], when: ["/etc/alpha/alpha.conf"] }],
  };
}

interface Env {
  root: string;
  sup: ExecSupervisor;
  lines: string[];
  apply(plan: Plan, dryRun?: boolean): Promise<ApplySummary>;
}

function setup(): Env {
  const root = tempDir("apply-root");
  const sup = execSupervisor(root);
  onCleanup(async () => {
    await sup.stop("alpha.service");
    await sup.stop("beta.service");
  });
  const lines: string[] = [];
  return {
    root,
    sup,
    lines,
    // Through the JSON parser, as the CLI does.
    apply: (plan, dryRun) => applyPlan(parsePlan(JSON.stringify(plan)), { root, services: sup, dryRun, log: (l) => lines.push(l) }),
  };
}

/** The service's pid once its signal handlers are installed. */
const ready = (env: Env, name: string) =>
  waitFor(`${name} to be ready`, () => {
    const f = `${env.root}/var/lib/${name}/pid`;
    const pid = fs.existsSync(f) ? Number(fs.readFileSync(f, "utf8")) : 0;
    return pid > 0 && pid === env.sup.mainPid(`${name}.service`) ? pid : undefined;
  });
const modeOf = (p: string) => fs.statSync(p).mode & 0o7777;
const events = (env: Env, name: string) => (fs.existsSync(`${env.root}/var/lib/${name}/events`) ? fs.readFileSync(`${env.root}/var/lib/${name}/events`, "utf8") : "");

describe("applyPlan (in-process, exec supervisor)", () => {
  test("first apply lays everything down and starts the services; the second does nothing", async () => {
    const env = setup();
    const first = await env.apply(makePlan(env.root));
    expect(first.ok).toBe(true);
    expect(first.changed).toHaveLength(10);
    expect(first.unchanged).toBe(0);
    expect(first.daemonReload).toBe(true);
    expect(first.enabled).toEqual(["alpha.service", "beta.service"]);
    expect(first.started).toEqual(["alpha.service", "beta.service"]);
    expect(first.validated).toHaveLength(1);
    expect(modeOf(`${env.root}/etc/alpha/webhook-secret`)).toBe(0o600);
    expect(modeOf(`${env.root}/var/lib/alpha`)).toBe(0o750);
    expect(modeOf(`${env.root}/etc/beta.conf`)).toBe(0o640);
    expect(fs.readlinkSync(`${env.root}/etc/systemd/system/multi-user.target.wants/alpha.service`)).toBe("/etc/systemd/system/alpha.service");
    const alphaPid = await ready(env, "alpha");

    const second = await env.apply(makePlan(env.root));
    expect(second).toEqual({ ok: true, dryRun: false, accounts: [], changed: [], details: [], unchanged: 10, validated: [], daemonReload: false, enabled: [], restarted: [], reloaded: [], started: [] });
    expect(env.sup.mainPid("alpha.service")).toBe(alphaPid);
  });

  test("a changed file restarts (or reloads) only the service watching it", async () => {
    const env = setup();
    await env.apply(makePlan(env.root));
    const alpha = await ready(env, "alpha");
    const beta = await ready(env, "beta");

    const p = makePlan(env.root);
    p.files.find((f) => f.path === "/etc/beta.conf")!.contentBase64 = b64("beta = 2\n");
    const s = await env.apply(p);
    expect(s).toMatchObject({ changed: ["/etc/beta.conf"], reloaded: ["beta.service"], restarted: [], started: [], validated: [] });
    expect(s.details[0]).toMatchObject({ path: "/etc/beta.conf", reasons: ["content"] });
    expect(s.details[0].from).toMatch(/^[0-9a-f]{12}$/);
    await waitFor("beta to see SIGHUP", () => events(env, "beta").includes("reload"));
    expect(env.sup.mainPid("beta.service")).toBe(beta);
    expect(env.sup.mainPid("alpha.service")).toBe(alpha);

    const s2 = await env.apply(makePlan(env.root, { conf: "setting = 2\n" }));
    expect(s2).toMatchObject({ changed: ["/etc/alpha/alpha.conf", "/etc/beta.conf"], restarted: ["alpha.service"], reloaded: ["beta.service"] });
    expect(env.sup.mainPid("alpha.service")).not.toBe(alpha);
    expect(events(env, "alpha")).toBe("term\n");
  });

  test("a mode or owner fix counts as a change: chmod only (same inode), and the watcher restarts", async () => {
    const env = setup();
    await env.apply(makePlan(env.root));
    await ready(env, "alpha");
    const conf = `${env.root}/etc/alpha/alpha.conf`;
    const ino = fs.statSync(conf).ino;
    fs.chmodSync(conf, 0o666);
    const s = await env.apply(makePlan(env.root));
    expect(s.details).toEqual([{ path: "/etc/alpha/alpha.conf", reasons: ["mode"] }]);
    expect(s.restarted).toEqual(["alpha.service"]);
    expect(s.validated).toHaveLength(1);
    expect(modeOf(conf)).toBe(0o644);
    expect(fs.statSync(conf).ino).toBe(ino);
  });

  test("a failed check restores every file exactly, touches no service, and says why", async () => {
    const env = setup();
    await env.apply(makePlan(env.root));
    const alpha = env.sup.mainPid("alpha.service");
    const conf = `${env.root}/etc/alpha/alpha.conf`;
    const before = fs.readFileSync(conf);
    const p = makePlan(env.root, { conf: "broken\n", confMode: 0o600 });
    p.files.push({ path: "/etc/alpha/new.conf", contentBase64: b64("new\n"), mode: 0o644 });
    p.dirs.push({ path: "/etc/alpha/extra.d", mode: 0o755 });
    const err = await env.apply(p).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplyError);
    const e = err as ApplyError;
    expect(e.message).toMatch(/check failed: `\/bin\/sh -c .*` exited 4:\nalpha\.conf: no setting line\nrolled back 3 change\(s\)/);
    expect(e.summary).toMatchObject({ ok: false, restarted: [], reloaded: [], started: [] });
    expect(e.summary.rolledBack?.sort()).toEqual(["/etc/alpha/alpha.conf", "/etc/alpha/extra.d", "/etc/alpha/new.conf"]);
    expect(fs.readFileSync(conf)).toEqual(before);
    expect(modeOf(conf)).toBe(0o644);
    expect(fs.existsSync(`${env.root}/etc/alpha/new.conf`)).toBe(false);
    expect(fs.existsSync(`${env.root}/etc/alpha/extra.d`)).toBe(false);
    expect(fs.existsSync(backupName(conf))).toBe(false);
    expect(fs.readdirSync(`${env.root}/etc/alpha`).sort()).toEqual(["alpha.conf", "webhook-secret"]);
    expect(env.sup.mainPid("alpha.service")).toBe(alpha);
    // The good plan again: nothing to do.
    expect((await env.apply(makePlan(env.root))).changed).toEqual([]);
  });

  test("a symlink where a file belongs is refused before anything changes", async () => {
    const env = setup();
    await env.apply(makePlan(env.root));
    const target = `${env.root}/etc/beta.conf`;
    fs.rmSync(target);
    fs.symlinkSync("/etc/passwd", target);
    const p = makePlan(env.root, { conf: "setting = 3\n" });
    await expect(env.apply(p)).rejects.toThrow(/\/etc\/beta\.conf should be a regular file but is a symlink; remove it or change the plan/);
    expect(fs.readFileSync(`${env.root}/etc/alpha/alpha.conf`, "utf8")).toBe("setting = 1\n");
    expect(fs.readlinkSync(target)).toBe("/etc/passwd");
  });

  test("under a deploy's umask 077, parents it creates are still 0755 (services must traverse them)", async () => {
    const env = setup();
    const previous = process.umask(0o077);
    try {
      await env.apply({ version: PLAN_VERSION, users: [], dirs: [], files: [{ path: "/opt/deep/er/f", contentBase64: b64("x"), mode: 0o644 }], services: [] });
    } finally {
      process.umask(previous);
    }
    for (const d of ["/opt", "/opt/deep", "/opt/deep/er"]) expect([d, modeOf(env.root + d)]).toEqual([d, 0o755]);
    expect(modeOf(`${env.root}/opt/deep/er/f`)).toBe(0o644);
  });

  test("dry run reports the work and does none of it", async () => {
    const env = setup();
    const s = await env.apply(makePlan(env.root), true);
    expect(s).toMatchObject({ dryRun: true, started: ["alpha.service", "beta.service"], enabled: ["alpha.service", "beta.service"] });
    expect(s.changed).toHaveLength(10);
    expect(fs.readdirSync(env.root)).toEqual([]);
  });

  test("content from a sourcePath is streamed and compared by hash", async () => {
    const env = setup();
    const src = path.join(tempDir("apply-src"), "bundle.js");
    fs.writeFileSync(src, Buffer.alloc(3 * 1024 * 1024, "x"));
    const p = (): Plan => ({ version: PLAN_VERSION, users: [], dirs: [], files: [{ path: "/opt/sm/smart-mirror.js", sourcePath: src, mode: 0o644 }], services: [] });
    const s1 = await env.apply(p());
    expect(s1.details[0]).toMatchObject({ reasons: ["new"], to: sha256OfBuffer(fs.readFileSync(src)).slice(0, 12) });
    expect(fs.readFileSync(`${env.root}/opt/sm/smart-mirror.js`).equals(fs.readFileSync(src))).toBe(true);
    expect((await env.apply(p())).changed).toEqual([]);
    fs.appendFileSync(src, "y");
    expect((await env.apply(p())).details[0].reasons).toEqual(["content"]);
  });

  test("secrets: no content, no hash in the summary or the log", async () => {
    const env = setup();
    const s1 = await env.apply(makePlan(env.root));
    const p = makePlan(env.root);
    p.files.find((f) => f.secret)!.contentBase64 = b64(SECRET + "-rotated");
    const s2 = await env.apply(p);
    expect(s2.details).toEqual([{ path: "/etc/alpha/webhook-secret", reasons: ["content"], secret: true }]);
    const all = JSON.stringify([s1, s2]) + env.lines.join("\n");
    const hashes = [SECRET, SECRET + "-rotated"].map((v) => sha256OfBuffer(Buffer.from(v)).slice(0, 8));
    for (const needle of [SECRET, b64(SECRET), ...hashes]) expect(all).not.toContain(needle);
    expect(env.lines.join("\n")).toContain("/etc/alpha/webhook-secret: content (secret)");
  });
});
