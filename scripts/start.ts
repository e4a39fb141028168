/**
 * `npm start`: a complete mirror on this machine. A built-in demo primary (real sshd, sample
 * projects) unless --primary names a real one; the daemon and nginx with TLS from a local CA,
 * laid down by the same `smart-mirror apply` agent and the same rendered files as `pulumi up`,
 * supervised directly (systemd is not required). Ctrl-C stops everything.
 *
 * Stopping is robust to what terminals do: SIGINT (also sent to the whole pipeline by Ctrl-C
 * under `npm start | tee log`, whose reader may die first: writes to a closed pipe are then
 * dropped, never fatal), SIGHUP (terminal closed) and SIGTERM all stop the daemon, nginx and the
 * demo primary, at any phase of the start. A next start first stops whatever an earlier run left
 * (its pid files, then any process running from its directories), before it checks ports.
 *
 * `npm start -- --verify` does the same non-interactively, then clones through the mirror,
 * pushes to the demo primary, sends the primary's webhook, waits for the change on the mirror,
 * pushes through the mirror (forwarded to the demo primary's HTTPS door) and checks the mirror
 * serves that push as soon as `git push` returned, prints what it checked and exits 0 or 1.
 */
import { Command } from "commander";
import { execFile, execFileSync, spawn, spawnSync } from "node:child_process";
import { promisify } from "node:util";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as https from "node:https";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { buildLocalPlan, localPaths } from "../components/deploy/localPlan";
import { serializePlan } from "../components/deploy/plan";
import { renderProperties } from "../components/render/properties";
import { execSupervisor } from "../sync/agent/execSupervisor";
import { parsePinnedKeys } from "../sync/upstream/hostKeys";
import { createCa } from "../testbed/tls";
import { benchRoot, cleanupAll, freePort } from "../testbed/resources";
import { postWebhook, refsChangedPayload } from "../testbed/webhook";
import { DEMO_LFS_REPO, DEMO_REPOS, DemoPrimary, startDemoPrimary } from "./start/demoPrimary";
import { withGitConfig } from "../testbed/lfsFixture";
import { stopLeftovers } from "./start/leftovers";
import { describeMissing, missingRequirements } from "./start/prerequisites";

const REPO_ROOT = path.resolve(__dirname, "..");
const BUNDLE = path.join(REPO_ROOT, "dist", "smart-mirror.js");
/** The local host's root; SMART_MIRROR_LOCAL_ROOT moves it (tests run starts side by side). */
const ROOT = path.resolve(process.env.SMART_MIRROR_LOCAL_ROOT ?? path.join(os.tmpdir(), "smart-mirror-local"));
const UNITS = ["smart-mirror.service", "nginx.service"];
// The demo primary lives in the testbed's dirs; a run id fixed per ROOT makes them a known
// place, so a next start finds (and stops) what an earlier one left there.
process.env.SMART_MIRROR_BENCH_RUN = `local-${createHash("sha256").update(ROOT).digest("hex").slice(0, 8)}`;
const DEMO_ROOT = benchRoot();

// A closed pipe (`npm start | tee log`, tee gone first) must not kill us before we cleaned up.
let outputGone = false;
for (const stream of [process.stdout, process.stderr]) stream.on("error", () => (outputGone = true));

interface Options {
  primary?: string;
  primaryUrl?: string;
  hostKey?: string;
  key?: string;
  tokenFile?: string;
  repos?: string;
  port: string;
  verify?: boolean;
}

const say = (s = "") => {
  if (!outputGone) process.stdout.write(s + "\n");
};

function has(command: string): boolean {
  if (command.startsWith("/")) return fs.existsSync(command);
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}

async function pickPort(preferred: number): Promise<{ port: number; note?: string }> {
  const free = await new Promise<boolean>((resolve) => {
    const srv = net.createServer();
    srv.once("error", () => resolve(false));
    srv.listen(preferred, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
  if (free) return { port: preferred };
  const port = await freePort();
  return { port, note: `port ${preferred} is busy; using ${port} instead (choose one with --port)` };
}

function getStatus(port: number, ca: string): Promise<{ state: string; syncedRepos: number; totalRepos: number } | undefined> {
  return new Promise((resolve) => {
    const req = https.get({ host: "127.0.0.1", port, path: "/status", servername: "localhost", ca, timeout: 3000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => {
        try {
          resolve(JSON.parse(body));
        } catch {
          resolve(undefined);
        }
      });
    });
    req.on("error", () => resolve(undefined));
    req.on("timeout", () => req.destroy());
  });
}

async function main(o: Options): Promise<number> {
  const demo = !o.primary;
  const missing = missingRequirements(has, demo);
  if (missing.length > 0) {
    process.stderr.write(describeMissing(missing) + "\n");
    return 1;
  }
  if (process.geteuid?.() !== 0) {
    process.stderr.write(
      "npm start needs root: like a real deploy, it creates the daemon's service account (smart-mirror) and runs nginx;\n" +
        "the demo primary also needs its own git-shell account. Run it as root (e.g. sudo -E npm start).\n",
    );
    return 1;
  }
  if (!demo && (!o.primaryUrl || !o.hostKey)) {
    process.stderr.write("--primary needs --primary-url https://... (the primary's web URL) and --host-key 'ssh-ed25519 AAAA...' (its pinned SSH host key: ssh-keyscan -p PORT HOST, verified out of band)\n");
    return 1;
  }
  if (!fs.existsSync(BUNDLE)) {
    process.stderr.write(`${BUNDLE} is missing: run npm run build (npm start does this first)\n`);
    return 1;
  }

  // A fresh local host each run: stop what an earlier run left (before looking at ports: it
  // may hold ours), then start from nothing.
  const sup = execSupervisor(ROOT);
  await stopEverything(sup);
  fs.rmSync(ROOT, { recursive: true, force: true });
  fs.rmSync(DEMO_ROOT, { recursive: true, force: true });
  fs.mkdirSync(ROOT, { recursive: true, mode: 0o755 });
  onStopSignal(() => stopAll(sup));
  const { port, note } = await pickPort(Number(o.port));
  if (note) say(`note: ${note}`);

  // One local CA: nginx's certificate, and the demo primary's HTTPS door (which the mirror trusts through it).
  const ca = await createCa("smart-mirror local CA");
  let demoPrimary: DemoPrimary | undefined;
  if (demo) {
    say("starting the demo primary (OpenSSH sshd with sample projects, and its HTTPS door for pushes)...");
    demoPrimary = await startDemoPrimary(ca);
  }
  const sshUrl = demo ? `ssh://${demoPrimary!.primary.user}@${demoPrimary!.primary.host}:${demoPrimary!.primary.port}` : o.primary!;
  const hostKeys = demo ? [demoPrimary!.primary.hostKeyLine] : parsePinnedKeys(o.hostKey!).map((k) => `${k.type} ${k.base64}`);

  // The mirror's own SSH key: approved on the demo primary as a read-only key.
  const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), "smart-mirror-key-"));
  const keyFile = o.key ?? path.join(keyDir, "id_ed25519");
  if (!o.key) execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "smart-mirror@localhost", "-f", keyFile]);
  const privateKey = fs.readFileSync(keyFile, "utf8");
  const publicKey = execFileSync("ssh-keygen", ["-y", "-f", keyFile], { encoding: "utf8" }).trim();
  fs.rmSync(keyDir, { recursive: true, force: true });
  if (demo) await demoPrimary!.primary.authorizeKey(publicKey, { readOnly: true });

  const cert = await ca.issueServerCert(["localhost", "127.0.0.1"]);
  const caFile = path.join(ROOT, "ca.pem");
  fs.copyFileSync(ca.certPath, caFile);
  const webhookSecret = randomBytes(24).toString("hex");

  const repos = demo ? DEMO_REPOS.map((r) => `${r.project}/${r.slug}`) : o.repos?.split(",").map((s) => s.trim()).filter(Boolean);
  // The production layout under ROOT (the plan is applied with --root ROOT).
  const real = localPaths(ROOT);
  const baseUrl = `https://localhost:${port}`;
  const propertiesText = renderProperties({
    displayName: demo ? "Local demo mirror" : "Local mirror",
    baseUrl,
    // The demo primary's HTTPS door (REST double, git http-backend for pushes, Git LFS), trusted through the local CA.
    upstreamUrl: demo ? demoPrimary!.https.double.url : o.primaryUrl!,
    caFile: demo ? real.primaryCaFile : undefined,
    sshUrl,
    hostKeys,
    keyFile: real.keyFile,
    catalog: repos && repos.length > 0 ? "static" : "rest",
    catalogRepos: repos,
    tokenFile: real.catalogTokenFile,
    projects: "ALL",
    webhookSecretFile: real.webhookSecretFile,
    // The demo primary has no REST API to check users against.
    auth: demo ? "anonymous" : "primary",
    listen: `unix:${real.socket}`,
    syncInterval: "1m",
    tlsCertificateFile: real.tlsCert,
  });
  const { plan } = buildLocalPlan({
    root: ROOT,
    serverName: "localhost",
    httpsPort: port,
    httpPort: false,
    propertiesText,
    mirrorPrivateKey: privateKey,
    mirrorPublicKey: publicKey,
    webhookSecret,
    catalogToken: o.tokenFile ? fs.readFileSync(o.tokenFile, "utf8") : undefined,
    tlsCertificateChainPem: fs.readFileSync(cert.chainPath, "utf8"),
    tlsPrivateKeyPem: fs.readFileSync(cert.keyPath, "utf8"),
    stagedBundle: BUNDLE,
    primaryCaPem: demo ? ca.certPem : undefined,
  });
  const planFile = path.join(ROOT, "plan.json");
  fs.writeFileSync(planFile, serializePlan(plan), { mode: 0o600 });

  say("laying down the mirror with `smart-mirror apply` (the agent pulumi up runs on a host)...");
  const apply = spawnSync("node", [BUNDLE, "apply", "--plan", planFile, "--root", ROOT, "--services", "exec"], { encoding: "utf8" });
  fs.rmSync(planFile, { force: true });
  if (apply.status !== 0) {
    process.stderr.write(`apply failed:\n${apply.stderr}\n${apply.stdout}\n`);
    await stopAll(sup);
    return 1;
  }

  const caPem = fs.readFileSync(caFile, "utf8");
  const cloneUrl = (r: string) => `${baseUrl}/scm/${r}.git`;
  say("");
  say(`  smart-mirror is running   ${baseUrl}`);
  say(`  status                    ${baseUrl}/status`);
  say(`  primary                   ${sshUrl}${demo ? "  (built-in demo)" : ""}`);
  say(`  mirror's public key       ${publicKey}${demo ? "  (approved on the demo primary, read-only)" : "  <- grant it read access on the primary"}`);
  say(`  logs                      ${path.join(ROOT, "var/log/smart-mirror-exec")}`);
  say("");
  say("  clone through the mirror (trusting the local CA):");
  for (const r of (repos ?? []).slice(0, 3)) say(`    GIT_SSL_CAINFO=${caFile} git clone ${cloneUrl(r)}`);
  say("");
  if (demoPrimary) {
    // One remote for everything: the push goes through the mirror to the primary, with these credentials.
    say("  push through the mirror (forwarded to the demo primary as its user; the mirror shows it at once):");
    say(`    GIT_SSL_CAINFO=${caFile} git push ${pushUrl(baseUrl, demoPrimary, "DEMO/website")} HEAD:refs/heads/main`);
    say("");
  }
  say(o.verify ? "  verifying..." : "  Ctrl-C stops the mirror, nginx and the demo primary.");
  say("");

  // Initial sync progress, from /status through nginx.
  let last = "";
  const deadline = Date.now() + 180_000;
  let state = "";
  while (Date.now() < deadline) {
    const s = await getStatus(port, caPem);
    if (s) {
      const line = `  ${s.state} ${s.syncedRepos}/${s.totalRepos} repositories synced`;
      if (line !== last) say(line);
      last = line;
      state = s.state;
      if (s.state === "SYNCHRONIZED" || (!o.verify && s.state === "DEGRADED")) break;
    }
    await new Promise((r) => setTimeout(r, 300));
  }

  if (o.verify) {
    const ok = state === "SYNCHRONIZED" && demoPrimary ? await verify(demoPrimary, port, caFile, caPem, webhookSecret, cloneUrl) : false;
    if (state !== "SYNCHRONIZED") say(`  FAIL  the mirror did not reach SYNCHRONIZED (last state: ${state || "no answer"})`);
    if (!demoPrimary) say("  --verify needs the built-in demo primary (it pushes to it)");
    await stopAll(sup);
    say(ok ? "verify: all checks passed" : "verify: FAILED");
    return ok ? 0 : 1;
  }

  // Runs until a signal: the handler stops everything and exits.
  await new Promise<never>(() => undefined);
  return 0;
}

async function verify(d: DemoPrimary, port: number, caFile: string, caPem: string, secret: string, cloneUrl: (r: string) => string): Promise<boolean> {
  const env = { ...process.env, GIT_SSL_CAINFO: caFile, GIT_TERMINAL_PROMPT: "0", GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null" };
  const results: Array<[string, boolean, string?]> = [];
  const check = async (what: string, fn: () => Promise<string | void> | string | void) => {
    try {
      const detail = await fn();
      results.push([what, true, detail || undefined]);
    } catch (e) {
      results.push([what, false, (e as Error).message.split("\n")[0]]);
    }
    const [w, ok, detail] = results[results.length - 1];
    say(`  ${ok ? "ok  " : "FAIL"}  ${w}${detail ? `  (${detail})` : ""}`);
  };
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "smart-mirror-verify-"));
  const lsRemote = (url: string, e: NodeJS.ProcessEnv) =>
    execFileSync("git", ["ls-remote", url], { env: e, encoding: "utf8" })
      .trim()
      .split("\n")
      .filter((l) => !l.endsWith("\tHEAD"))
      .sort()
      .join("\n");
  try {
    for (const r of DEMO_REPOS) {
      const key = `${r.project}/${r.slug}`;
      await check(`clone ${cloneUrl(key)} over HTTPS (TLS verified against the local CA); refs equal to the primary's`, () => {
        execFileSync("git", ["clone", "--quiet", "--mirror", cloneUrl(key), path.join(work, `${r.slug}.git`)], { env, stdio: "pipe" });
        const mirror = lsRemote(path.join(work, `${r.slug}.git`), env);
        const primary = lsRemote(d.primary.sshUrl(r.project, r.slug), { ...process.env, ...d.primary.gitEnv() } as NodeJS.ProcessEnv);
        if (mirror !== primary) throw new Error("refs differ from the primary");
        return `${mirror.split("\n").length} refs`;
      });
    }
    await check(`git lfs: clone + checkout of ${DEMO_LFS_REPO.project}/${DEMO_LFS_REPO.slug} through the mirror; LFS files equal to the primary's objects`, async () => {
      const dir = path.join(work, "assets");
      const lfsEnv = withGitConfig(env, { "filter.lfs.clean": "git-lfs clean -- %f", "filter.lfs.smudge": "git-lfs smudge -- %f", "filter.lfs.process": "git-lfs filter-process", "filter.lfs.required": "true" }) as NodeJS.ProcessEnv;
      // Not execFileSync: the primary's LFS endpoint runs in this process and must keep answering.
      await promisify(execFile)("git", ["clone", "--quiet", cloneUrl(`${DEMO_LFS_REPO.project}/${DEMO_LFS_REPO.slug}`), dir], { env: lfsEnv });
      for (const [name, o] of Object.entries(d.lfsFiles)) {
        const got = createHash("sha256").update(fs.readFileSync(path.join(dir, name))).digest("hex");
        if (got !== o.oid) throw new Error(`${name} is not the LFS object (${got.slice(0, 12)} != ${o.oid.slice(0, 12)})`);
      }
      return `${Object.keys(d.lfsFiles).length} LFS files, served by the mirror`;
    });
    await check("clone without the CA is refused (certificate not trusted)", () => {
      const r = spawnSync("git", ["ls-remote", cloneUrl("DEMO/hello-world")], { env: { ...env, GIT_SSL_CAINFO: "/dev/null", SSL_CERT_FILE: "/dev/null" }, encoding: "utf8" });
      if (r.status === 0) throw new Error("an untrusted certificate was accepted");
    });
    const tip = await d.hello.commit({ "NEWS.md": `pushed by npm start --verify at ${new Date().toISOString()}\n` });
    await d.hello.push(["main"]);
    const pushedAt = Date.now();
    await check("push to the primary, then the primary's repo:refs_changed webhook (HMAC-signed) through nginx", async () => {
      const code = await postWebhook({ port, tls: { ca: caPem, servername: "localhost" } }, secret, refsChangedPayload("DEMO", "hello-world"));
      if (code !== 202) throw new Error(`webhook answered ${code}`);
      return "202";
    });
    await check("the pushed commit is served by the mirror", async () => {
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline) {
        const refs = lsRemote(cloneUrl("DEMO/hello-world"), env);
        if (refs.includes(`${tip}\trefs/heads/main`)) return `visible ${Date.now() - pushedAt} ms after the push`;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error("not visible after 20 s");
    });
    await check("push through the mirror (forwarded to the primary's HTTPS door with the demo user's credentials); served by the mirror as soon as `git push` returns", async () => {
      const next = await d.hello.commit({ "NEWS.md": `pushed through the mirror by npm start --verify at ${new Date().toISOString()}\n` });
      const t0 = Date.now();
      const r = await gitAsync(["push", "--quiet", pushUrl(`https://localhost:${port}`, d, "DEMO/hello-world"), "HEAD:refs/heads/main"], d.hello.dir, env);
      if (r.status !== 0) throw new Error(`git push failed: ${r.stderr.trim().split("\n").pop()}`);
      const ms = Date.now() - t0;
      // No waiting: read-your-writes means the very next request sees it.
      if (!lsRemote(cloneUrl("DEMO/hello-world"), env).includes(`${next}\trefs/heads/main`)) throw new Error("the mirror did not serve the push right after `git push` returned");
      const onPrimary = lsRemote(d.primary.sshUrl("DEMO", "hello-world"), { ...process.env, ...d.primary.gitEnv() } as NodeJS.ProcessEnv);
      if (!onPrimary.includes(`${next}\trefs/heads/main`)) throw new Error("the push did not reach the primary");
      return `git push took ${ms} ms, read-your-writes included`;
    });
    await check("a push with a wrong password is refused by the primary, relayed by the mirror", async () => {
      const r = await gitAsync(["push", cloneUrl("DEMO/hello-world").replace("https://", `https://${d.user.name}:wrong@`), "HEAD:refs/heads/x"], d.hello.dir, env);
      if (r.status === 0) throw new Error("the push was accepted");
      if (!/Authentication failed/.test(r.stderr)) throw new Error(`git did not report the failed authentication: ${r.stderr.trim().split("\n").pop()}`);
    });
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  return results.every(([, ok]) => ok);
}

/**
 * git without blocking: the demo primary's HTTPS door runs in this process, so a synchronous
 * child (spawnSync) would starve the very server it talks to.
 */
function gitAsync(args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn("git", args, { cwd, env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    child.on("close", (status) => resolve({ status, stderr }));
  });
}

/** The mirror's URL of a demo repository with the demo user's credentials in it. */
function pushUrl(baseUrl: string, d: DemoPrimary, repo: string): string {
  return `${baseUrl.replace("https://", `https://${d.user.name}:${d.user.password}@`)}/scm/${repo}.git`;
}

async function stopAll(sup: ReturnType<typeof execSupervisor>): Promise<void> {
  await stopEverything(sup);
  await cleanupAll().catch(() => undefined);
}

/** The units by their pid files, then anything still running from this run's directories. */
async function stopEverything(sup: ReturnType<typeof execSupervisor>): Promise<void> {
  for (const u of UNITS) await sup.stop(u).catch(() => undefined);
  await stopLeftovers([ROOT, DEMO_ROOT]).catch(() => undefined);
}

let stopping: Promise<void> | undefined;
let stopper: () => Promise<void> = () => cleanupAll().catch(() => undefined);
const SIGNAL_EXIT: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 };

/** From now on a stop signal stops what `fn` knows of (before: the bench's own cleanups). */
function onStopSignal(fn: () => Promise<void>): void {
  stopper = fn;
}

// Installed first thing: a signal at any phase (demo primary starting, apply running, waiting
// for SYNCHRONIZED) stops what was started so far. Repeated signals (Ctrl-C twice, the group's
// SIGINT then the pipe's SIGHUP) do not interrupt the stop.
for (const sig of Object.keys(SIGNAL_EXIT) as NodeJS.Signals[]) {
  process.on(sig, () => {
    if (stopping) return;
    say("\nstopping...");
    stopping = stopper()
      .catch(() => undefined)
      .then(() => {
        say("stopped.");
        process.exit(SIGNAL_EXIT[sig]);
      });
  });
}

const program = new Command()
  .name("npm start --")
  .description("a complete local mirror: demo primary (or --primary), daemon, nginx with TLS from a local CA")
  .option("--primary <sshUrl>", "mirror a real primary instead of the demo: ssh://git@host:7999")
  .option("--primary-url <url>", "the primary's https:// web URL (with --primary)")
  .option("--host-key <key>", "the primary's SSH host key to pin, 'ssh-ed25519 AAAA...' (with --primary)")
  .option("--key <file>", "the mirror's SSH private key (default: a new one; its public key is printed for approval)")
  .option("--token-file <file>", "Bitbucket HTTP access token for the REST catalog (with --primary, without --repos)")
  .option("--repos <list>", "PROJECT/repo,... to mirror (with --primary; default: the REST catalog)")
  .option("--port <n>", "HTTPS port on 127.0.0.1 (a busy one is replaced by a free one)", "8443")
  .option("--verify", "run non-interactively: clone, push, webhook, check the change arrives; exit 0 or 1");

program.parse(process.argv);
main(program.opts<Options>())
  .then((code) => process.exit(code))
  .catch(async (e: unknown) => {
    process.stderr.write(`npm start: ${e instanceof Error ? e.message : String(e)}\n`);
    await cleanupAll().catch(() => undefined);
    process.exit(1);
  });
