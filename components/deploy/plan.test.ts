import * as fs from "node:fs";
import * as path from "node:path";
import { applyPlan } from "../../sync/agent/apply";
import { parsePlan } from "../../sync/agent/planSchema";
import type { ServiceManager } from "../../sync/agent/serviceManager";
import { tempDir } from "../../testbed/resources";
import { renderNginxSite } from "../render/nginx";
import { renderDaemonUnit } from "../render/systemd";
import { hostReadyCommand } from "./hostReady";
import { remoteRemoveCommand } from "./commands";
import { DAEMON_GID, DAEMON_UID, DAEMON_USER, mirrorPaths, STAGING_DIR } from "./layout";
import { removalTargets } from "./remoteDeploy";
import { buildMirrorPlan, MirrorPlanInput, serializePlan } from "./plan";
import { spawnSync } from "node:child_process";

const SECRETS = {
  mirrorPrivateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nc3luYy1rZXk=\n-----END OPENSSH PRIVATE KEY-----\n",
  catalogToken: "BBDC-catalog-token-123",
  webhookSecret: "whsec-0123456789abcdef",
  cloneTokens: ["clone-token-a", "clone-token-b"],
  tlsPrivateKeyPem: "-----BEGIN EC PRIVATE KEY-----\ndGxzLWtleQ==\n-----END EC PRIVATE KEY-----\n",
};

function input(stagedBundle = "/var/lib/smart-mirror-deploy/smart-mirror.js"): MirrorPlanInput {
  const paths = mirrorPaths("/var/lib/smart-mirror");
  return {
    paths,
    propertiesText: "setup.displayName=x\n",
    mirrorPublicKey: "ssh-ed25519 AAAA mirror",
    primaryCaPem: "-----BEGIN CERTIFICATE-----\nY2E=\n-----END CERTIFICATE-----",
    tlsCertificateChainPem: "-----BEGIN CERTIFICATE-----\nbGVhZg==\n-----END CERTIFICATE-----\n",
    nginxSite: renderNginxSite({ serverName: "mirror-syd.example.com", certPath: paths.tlsCert, keyPath: paths.tlsKey, upstreamSocket: paths.socket }),
    daemonUnit: renderDaemonUnit({ user: DAEMON_USER, home: paths.home, bundlePath: paths.bundle }),
    stagedBundle,
    ...SECRETS,
  };
}

describe("buildMirrorPlan", () => {
  test("the agent's own parser accepts it", () => {
    const text = serializePlan(buildMirrorPlan(input()));
    expect(() => parsePlan(text)).not.toThrow();
  });

  test("every secret is in a 0600 file flagged secret, and nowhere else", () => {
    const plan = buildMirrorPlan(input());
    const secretPaths = plan.files.filter((f) => f.secret).map((f) => f.path);
    const p = mirrorPaths("/var/lib/smart-mirror");
    expect(secretPaths.sort()).toEqual([p.keyFile, p.catalogTokenFile, p.webhookSecretFile, p.cloneTokensFile, p.tlsKey].sort());
    for (const f of plan.files.filter((x) => x.secret)) expect(f.mode).toBe(0o600);
    const decoded = plan.files.filter((f) => !f.secret && f.contentBase64).map((f) => Buffer.from(f.contentBase64 as string, "base64").toString("utf8"));
    for (const s of [SECRETS.catalogToken, SECRETS.webhookSecret, ...SECRETS.cloneTokens, "c3luYy1rZXk=", "dGxzLWtleQ=="]) {
      for (const d of decoded) expect(d).not.toContain(s);
    }
    const token = plan.files.find((f) => f.path === p.catalogTokenFile);
    expect(Buffer.from(token?.contentBase64 ?? "", "base64").toString()).toBe(`${SECRETS.catalogToken}\n`);
    expect(Buffer.from(plan.files.find((f) => f.path === p.cloneTokensFile)?.contentBase64 ?? "", "base64").toString()).toBe("clone-token-a\nclone-token-b\n");
  });

  test("owners: the daemon's files are the daemon's, the TLS key and units root's", () => {
    const plan = buildMirrorPlan(input());
    const p = mirrorPaths("/var/lib/smart-mirror");
    const owner = (x: string) => plan.files.find((f) => f.path === x)?.owner;
    expect(owner(p.properties)).toBe(DAEMON_USER);
    expect(owner(p.keyFile)).toBe(DAEMON_USER);
    expect(owner(p.tlsKey)).toBe("root");
    expect(owner(p.unitFile)).toBe("root");
    expect(plan.files.find((f) => f.path === p.bundle)).toEqual({ path: p.bundle, sourcePath: "/var/lib/smart-mirror-deploy/smart-mirror.js", mode: 0o755, owner: "root", group: "root" });
    expect(plan.groups).toEqual([{ name: DAEMON_USER, gid: DAEMON_GID, members: ["www-data"] }]);
    // The same ids on every host: a replaced machine's daemon owns the kept data volume's files.
    expect(plan.users).toEqual([{ name: DAEMON_USER, home: p.home, group: DAEMON_USER, uid: DAEMON_UID }]);
  });

  test("a changed bundle or config restarts the daemon; a new certificate reloads nginx; both are checked first", () => {
    const plan = buildMirrorPlan(input());
    const p = mirrorPaths("/var/lib/smart-mirror");
    const daemon = plan.services.find((s) => s.unit === "smart-mirror.service");
    const nginx = plan.services.find((s) => s.unit === "nginx.service");
    expect(daemon?.watches).toEqual(expect.arrayContaining([p.shared, p.bundle, p.unitFile]));
    expect(nginx).toEqual(expect.objectContaining({ reload: true, enable: true }));
    expect(nginx?.watches).toEqual(expect.arrayContaining([p.nginxSite, "/etc/smart-mirror/tls"]));
    expect(plan.validate?.map((v) => v.argv[0])).toEqual(["/usr/sbin/nginx", "/usr/bin/node"]);
    expect(plan.validate?.[1].argv).toEqual(["/usr/bin/node", p.bundle, "check", "--home", p.home]);
  });

  test("optional secrets are left out when not given", () => {
    const i = input();
    const plan = buildMirrorPlan({ ...i, catalogToken: undefined, webhookSecret: undefined, cloneTokens: undefined, primaryCaPem: undefined });
    expect(plan.files.filter((f) => f.secret).map((f) => path.basename(f.path)).sort()).toEqual(["id_ed25519", "privkey.pem"]);
  });

  test("the real agent applies it (dry run under a temp root): every file would be created, nothing restarted yet", async () => {
    const root = tempDir("plan-dry-run");
    const staged = path.join(tempDir("plan-stage"), "smart-mirror.js");
    fs.writeFileSync(staged, "#!/usr/bin/env node\n");
    const plan = parsePlan(serializePlan(buildMirrorPlan(input(staged))));
    const calls: string[] = [];
    const services: ServiceManager = {
      name: "recorder",
      state: async () => ({ active: false, enabled: false }),
      daemonReload: async () => void calls.push("daemon-reload"),
      enable: async (u) => void calls.push(`enable ${u}`),
      start: async (u) => void calls.push(`start ${u}`),
      restart: async (u) => void calls.push(`restart ${u}`),
      reload: async (u) => void calls.push(`reload ${u}`),
    };
    const summary = await applyPlan(plan, { root, services, dryRun: true });
    expect(summary.ok).toBe(true);
    expect(summary.changed).toEqual(expect.arrayContaining(plan.files.map((f) => f.path)));
    expect(calls).toEqual([]);
    expect(fs.readdirSync(root)).toEqual([]);
    // Secrets never reach the summary.
    expect(JSON.stringify(summary)).not.toContain(SECRETS.catalogToken);
  });
});

describe("hostReadyCommand", () => {
  test("passes on a host with git, ssh, nginx and node (this one), and names what is missing otherwise", () => {
    const ok = spawnSync("sh", ["-c", hostReadyCommand({ home: "/", homeIsMount: true, sudo: false, nodePath: process.execPath })], { encoding: "utf8" });
    expect(ok.stderr).toBe("");
    expect(ok.stdout.trim()).toBe("ready");
    const missing = spawnSync("sh", ["-c", hostReadyCommand({ home: "/", homeIsMount: false, sudo: false, nodePath: "/nonexistent/node", nginxPath: "/nonexistent/nginx" })], { encoding: "utf8" });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/missing on the host:\n\s+nginx nodejs\n.*apt-get install/);
  });

  test("refuses a data volume that is not mounted", () => {
    const home = tempDir("not-a-mount");
    const r = spawnSync("sh", ["-c", hostReadyCommand({ home, homeIsMount: true, sudo: false, nodePath: process.execPath })], { encoding: "utf8" });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`the data volume is not mounted at ${home}`);
  });
});

describe("the delete step of an existing host, on a really applied home", () => {
  test("removes every secret, the staged plan, the nginx site and the unit; keeps the repositories and the properties; idempotent", async () => {
    const root = tempDir("remove-root");
    const stage = path.join(root, STAGING_DIR);
    fs.mkdirSync(stage, { recursive: true, mode: 0o700 });
    const staged = path.join(stage, "smart-mirror.js");
    fs.writeFileSync(staged, "#!/usr/bin/env node\n");
    // The plan the deploy keeps in the stage directory (it holds every secret).
    const built = buildMirrorPlan(input(staged));
    fs.writeFileSync(path.join(stage, "plan.json"), serializePlan(built), { mode: 0o600 });
    // Applied for real under the root, owned by the applier (no account is created here).
    const plan = { ...built, users: [], groups: [], validate: [], dirs: built.dirs.map(({ owner: _o, group: _g, ...d }) => d), files: built.files.map(({ owner: _o, group: _g, ...f }) => f) };
    const services: ServiceManager = { name: "none", state: async () => ({ active: false, enabled: false }), daemonReload: async () => undefined, enable: async () => undefined, start: async () => undefined, restart: async () => undefined, reload: async () => undefined };
    expect((await applyPlan(plan, { root, services })).ok).toBe(true);
    const p = mirrorPaths("/var/lib/smart-mirror");
    fs.mkdirSync(path.join(root, p.home, "repos", "PROJ", "r.git"), { recursive: true });
    const under = (x: string) => path.join(root, x);
    const secretFiles = built.files.filter((f) => f.secret).map((f) => f.path);
    for (const f of [...secretFiles, p.nginxSite, p.unitFile]) expect([f, fs.existsSync(under(f))]).toEqual([f, true]);

    const cmd = remoteRemoveCommand({ ...removalTargets(p), root });
    for (let run = 0; run < 2; run++) {
      const r = spawnSync("bash", ["-c", cmd], { encoding: "utf8" });
      expect({ run, code: r.status, err: r.stderr }).toEqual({ run, code: 0, err: "" });
      for (const f of [...secretFiles, p.nginxSite, p.unitFile, p.secretsDir, STAGING_DIR]) expect([f, fs.existsSync(under(f))]).toEqual([f, false]);
      // No file left anywhere under the root holds a secret.
      const left = spawnSync("grep", ["-rlF", "-e", SECRETS.catalogToken, "-e", "c3luYy1rZXk=", "-e", "dGxzLWtleQ==", "-e", SECRETS.webhookSecret, root], { encoding: "utf8" });
      expect(left.stdout).toBe("");
      expect(fs.existsSync(under(path.join(p.home, "repos", "PROJ", "r.git")))).toBe(true);
      expect(fs.existsSync(under(p.properties))).toBe(true);
    }
  });
});
