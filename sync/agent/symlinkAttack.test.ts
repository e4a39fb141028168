/**
 * apply runs as root inside directories the service account owns. The account (here the real
 * `nobody`, acting through processes running as it) replaces what apply will touch with
 * symlinks to places it must not reach; apply refuses, says why, and changes nothing there.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { tempDir } from "../../testbed/resources";
import { applyPlan } from "./apply";
import { Plan, PLAN_VERSION } from "./plan";
import { parsePlan } from "./planSchema";
import { ServiceManager } from "./serviceManager";
import { DIR_FLAGS, openVerified, resolveBelow, untrustedWriter } from "./safePath";

const IS_ROOT = process.geteuid?.() === 0;
const SERVICE = { name: "nobody", uid: 65534 };
const b64 = (s: string) => Buffer.from(s).toString("base64");

/** No services in these plans; apply must not need any. */
const noServices: ServiceManager = {
  state: async () => ({ exists: false, active: false, enabled: false }),
  daemonReload: async () => undefined,
  enable: async () => undefined,
  restart: async () => undefined,
  reload: async () => undefined,
  start: async () => undefined,
} as unknown as ServiceManager;

function plan(secret: string): Plan {
  const own = { owner: SERVICE.name, group: "nogroup" };
  return {
    version: PLAN_VERSION,
    users: [],
    dirs: [
      { path: "/srv/sm", mode: 0o755, ...own },
      { path: "/srv/sm/shared", mode: 0o750, ...own },
      { path: "/srv/sm/shared/secrets", mode: 0o700, ...own },
    ],
    files: [
      { path: "/srv/sm/shared/secrets/webhook-secret", contentBase64: b64(secret), mode: 0o600, secret: true, ...own },
      { path: "/srv/sm/shared/app.properties", contentBase64: b64(`x=${secret.length}\n`), mode: 0o640, ...own },
    ],
    services: [],
  };
}

/** What the service account does: a shell command run as it (real setuid, not root pretending). */
function asService(cwd: string, script: string): void {
  const r = spawnSync("/bin/sh", ["-c", script], { cwd, uid: SERVICE.uid, gid: 65534, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`as ${SERVICE.name}: ${script}: ${r.stderr}`);
}

/** A root-only directory the attacker wants: owner, mode and entries must stay exactly so. */
function victim(): { dir: string; file: string; state: () => unknown } {
  const dir = tempDir("victim");
  fs.mkdirSync(path.join(dir, "secrets"), { mode: 0o700 });
  fs.chmodSync(dir, 0o711); // traversable, so a link into it resolves for the attacker's purpose
  const file = path.join(dir, "root-only.conf");
  fs.writeFileSync(file, "root only\n", { mode: 0o600 });
  const state = () => {
    const out: Record<string, unknown> = {};
    const walk = (p: string) => {
      const st = fs.lstatSync(p);
      out[path.relative(dir, p) || "."] = { uid: st.uid, gid: st.gid, mode: st.mode & 0o7777, size: st.size };
      if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
    };
    walk(dir);
    return out;
  };
  return { dir, file, state };
}

const apply = (root: string, p: Plan) => applyPlan(parsePlan(JSON.stringify(p)), { root, services: noServices });

(IS_ROOT ? describe : describe.skip)("apply never follows a symlink the service account could have made", () => {
  test.each([
    ["shared/secrets replaced by a link to another directory", "shared", "mv secrets secrets.old && ln -s VICTIM secrets", /refusing to follow the symlink .*\/shared\/secrets -> .*victim/],
    ["a planned file replaced by a link to a root-only file", "shared", "rm app.properties && ln -s VICTIM/root-only.conf app.properties", /app\.properties should be a regular file but is a symlink/],
    ["an intermediate directory (shared) replaced by a link", ".", "mv shared shared.old && ln -s VICTIM shared", /refusing to follow the symlink .*\/srv\/sm\/shared -> .*its owner \(uid 65534\)/],
  ])("%s: refused, nothing there is chowned, chmodded or written", async (_what, where, script, why) => {
    const root = tempDir("apply-attack");
    const v = victim();
    const first = await apply(root, plan("first-secret"));
    expect(first.ok).toBe(true);
    expect(fs.statSync(`${root}/srv/sm/shared/secrets`).uid).toBe(SERVICE.uid);

    asService(path.join(root, "srv/sm", where), script.replace(/VICTIM/g, v.dir));
    const before = v.state();
    // A new secret and other modes: the apply has writes, chmods and chowns to do.
    const err = (await apply(root, plan("rotated-secret-value")).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(why);
    expect(v.state()).toEqual(before);
    expect(fs.readFileSync(v.file, "utf8")).toBe("root only\n");
    expect(JSON.stringify(v.state())).not.toContain("65534");
  });

  test("a link in a root-only directory (an admin's data volume) is followed", async () => {
    const root = tempDir("apply-volume");
    const volume = path.join(root, "data", "sm");
    fs.mkdirSync(volume, { recursive: true });
    fs.mkdirSync(path.join(root, "srv"), { mode: 0o755 });
    fs.symlinkSync(volume, path.join(root, "srv", "sm"));
    const s = await apply(root, plan("s"));
    expect(s.ok).toBe(true);
    expect(fs.readFileSync(path.join(volume, "shared/secrets/webhook-secret"), "utf8")).toBe("s");
    expect(fs.statSync(volume).uid).toBe(SERVICE.uid);
    expect((await apply(root, plan("s"))).changed).toEqual([]);
  });

  test("a directory swapped for a link after the check is caught at the descriptor", async () => {
    const root = tempDir("apply-race");
    const v = victim();
    await apply(root, plan("a"));
    const secrets = `${root}/srv/sm/shared/secrets`;
    // The walk resolved it; then the account swaps it (as it could between check and use).
    const r = await resolveBelow(root, "/srv/sm/shared/secrets");
    expect(r.existing).toBe(fs.realpathSync(secrets));
    asService(`${root}/srv/sm/shared`, `mv secrets s.old && ln -s ${v.dir}/secrets secrets`);
    await expect(openVerified(r.existing, DIR_FLAGS)).rejects.toThrow(/ENOTDIR|ELOOP/);
    // A directory further up swapped: the kernel follows it, and the descriptor tells.
    asService(`${root}/srv/sm`, `mv shared shared.old && ln -s ${v.dir} shared`);
    await expect(openVerified(r.existing, DIR_FLAGS)).rejects.toThrow(/moved while apply was working on it \(it is now at .*victim.*\/secrets\)/);
  });
});

test("who could have made an entry in a directory", () => {
  expect(untrustedWriter({ uid: 0, mode: 0o755 })).toBeUndefined();
  expect(untrustedWriter({ uid: 0, mode: 0o1777 })).toMatch(/world-writable/);
  expect(untrustedWriter({ uid: 0, mode: 0o775 })).toMatch(/group/);
  expect(untrustedWriter({ uid: 1001, mode: 0o700 })).toMatch(/uid 1001/);
});
