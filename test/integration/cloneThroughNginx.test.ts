/**
 * "Serving clones", end to end on loopback with every production part real: git clients over
 * TLS (a private CA, the certificate verified for the name mirror.test) -> nginx running the
 * site components/render/nginx.ts renders -> the daemon's unix socket -> the built daemon
 * (`node dist/smart-mirror.js run --home DIR`) -> git upload-pack on the repositories the
 * daemon synced from a bench primary over SSH.
 *
 * Clones (v0, v2, shallow, partial), ls-remote, an incremental fetch after a push to the
 * primary announced by a signed webhook (itself through nginx), a refused push, hostile paths,
 * and a client killed in the middle of a clone of a bigger repository.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tls from "node:tls";
import { GIT_METRIC_NAMES } from "../../sync/serve/git";
import { ensureBundle } from "../../testbed/daemonProcess";
import { ensureLargeRepo, LargeRepoParams } from "../../testbed/largeRepo";
import { MIRROR_NAME, MirrorBehindNginx, startMirrorBehindNginx } from "../../testbed/mirrorBehindNginx";
import { Primary, startPrimary } from "../../testbed/primary";
import { assertSameRefsAndObjects, git, GitEnv, GitError, pushSampleHistory, workingClone, WorkingClone } from "../../testbed/repos";
import { rawResponse } from "../../testbed/httpClient";
import { onCleanup, tempDir, waitFor } from "../../testbed/resources";
import { refsChangedPayload } from "../../testbed/webhook";
import { HOSTILE_PATHS, leaks, SECRET_FILE_CONTENT } from "../../testbed/hostilePaths";
import { processesOn, signalGroup } from "../../testbed/processes";

/** Processes serving from the mirror home: git upload-pack / pack-objects naming it or running in it. */
const servingOn = (home: string) => processesOn(home, /upload-pack|pack-objects/);

jest.setTimeout(600_000);

const SECRET = "clone-through-nginx-webhook-secret";
/** What writeMirrorProperties sets as plugin.mirroring.upstream.url. */
const PRIMARY_URL = "https://primary.test";
const APP = { project: "PROJ", slug: "app" };
const BIG = { project: "BIG", slug: "large" };

/**
 * The repository a client is killed in the middle of cloning: ~12 MB packed (incompressible
 * base64 assets), well above what the socket buffers between a stopped client and git can hold
 * (~4 MB: nginx's TCP send buffer at most, plus a few 64-200 KiB buffers), so git is still
 * writing when the client dies. Built once, cached in .cache/.
 */
const KILL_REPO_PARAMS: Partial<LargeRepoParams> = { commits: 120, files: 300, filesPerCommit: 3, dirFanout: 4, meanFileBytes: 60000, assetEvery: 1, branches: 2, commitsPerBranch: 5, tagEvery: 40, seed: 11 };

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run git; never throws: exit code and both outputs. */
async function run(args: string[], env: GitEnv, cwd?: string): Promise<Ran> {
  try {
    return { code: 0, stdout: await git(args, { env, cwd }), stderr: "" };
  } catch (e) {
    if (e instanceof GitError) return { code: e.code ?? -1, stdout: "", stderr: e.stderr };
    throw e;
  }
}

async function ok(args: string[], env: GitEnv, cwd?: string): Promise<string> {
  const r = await run(args, env, cwd);
  if (r.code !== 0) throw new Error(`git ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** Bytes exactly as written, over TLS (node's client would refuse NUL, backslashes, raw spaces). */
function rawTlsRequest(m: MirrorBehindNginx, target: string): Promise<{ status: number; text: string }> {
  // write, not end: a TLS close_notify right after the request makes nginx drop the connection unanswered.
  const s = tls.connect({ host: "127.0.0.1", port: m.port, servername: MIRROR_NAME, ca: m.ca.certPem }, () =>
    s.write(Buffer.from(`GET ${target} HTTP/1.1\r\nHost: ${MIRROR_NAME}\r\nConnection: close\r\n\r\n`, "latin1")),
  );
  return rawResponse(s);
}

/** Sum of a counter's samples in the daemon's /metrics (through nginx) whose labels include `labels`. */
async function metric(m: MirrorBehindNginx, name: string, labels: Record<string, string>): Promise<number> {
  const text = (await m.request("GET", "/metrics")).body.toString("utf8");
  let sum = 0;
  for (const line of text.split("\n")) {
    const match = new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`).exec(line);
    if (!match) continue;
    const have = Object.fromEntries([...match[1].matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(match[2]);
  }
  return sum;
}

/** The site's access log (rendered with `accessLog` in the nginx prefix). */
function accessLog(m: MirrorBehindNginx): string[] {
  return fs.readFileSync(path.join(m.nginx.prefix, "logs", "site.access.log"), "utf8").split("\n").filter(Boolean);
}



describe("clones through nginx + TLS in front of the built daemon", () => {
  let primary: Primary;
  let app: WorkingClone;
  let m: MirrorBehindNginx;
  const primaryDir = (r: { project: string; slug: string }) => primary.repoPath(r.project, r.slug);

  beforeAll(async () => {
    ensureBundle();
    primary = await startPrimary();
    await primary.createRepo(APP.project, APP.slug);
    app = await workingClone(primary.remote(APP.project, APP.slug));
    await pushSampleHistory(app, 20);
    await primary.importRepo(BIG.project, BIG.slug, await ensureLargeRepo(KILL_REPO_PARAMS));

    m = await startMirrorBehindNginx({
      primary,
      repos: [APP, BIG],
      webhookSecret: SECRET,
      // Every request runs git here, so the killed-client test sees git held by backpressure;
      // the pack cache (on by default) has its own suite (packCacheServe.test.ts), and e2e and
      // `npm start -- --verify` clone through nginx with the defaults.
      // mirror.push=refuse: the read-only mirror's refusal (pushes forwarded: pushThroughMirror.test.ts).
      properties: { "mirror.serve.packCacheMb": "0", "mirror.push": "refuse" },
    });
    await m.waitSynchronized();
  });

  test.each([0, 2])("clone --mirror over protocol v%i: same refs, HEAD and objects as the primary", async (v) => {
    const dest = path.join(tempDir("clone"), "m.git");
    await ok(["-c", `protocol.version=${v}`, "clone", "--quiet", "--mirror", m.url(APP.project, APP.slug), dest], m.gitEnv());
    await assertSameRefsAndObjects(primaryDir(APP), dest);
    // It went through nginx, over TLS, with the protocol asked for.
    const lines = accessLog(m).filter((l) => l.includes("/scm/PROJ/app.git/git-upload-pack"));
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.at(-1)).toMatch(/ 200 /);
    expect(lines.at(-1)).toMatch(/tls=TLSv1\.[23]/);
    expect(lines.at(-1)).toContain(v === 2 ? 'git_protocol="version=2"' : 'git_protocol="-"');
  });

  test("the certificate is really checked: without the bench CA, git refuses the mirror", async () => {
    const r = await run(["ls-remote", m.url(APP.project, APP.slug)], m.gitEnv({ GIT_SSL_CAINFO: "/etc/ssl/certs/ca-certificates.crt" }));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/certificate|SSL/i);
  });

  test("a push to the primary, announced by a signed webhook through nginx, reaches clones by an incremental fetch (v0 and v2)", async () => {
    const dests = [0, 2].map((v) => ({ v, dest: path.join(tempDir("clone"), `f${v}.git`) }));
    for (const { v, dest } of dests) await ok(["-c", `protocol.version=${v}`, "clone", "--quiet", "--mirror", m.url(APP.project, APP.slug), dest], m.gitEnv());
    const before = await app.revParse("main");
    await app.commit({ "more.txt": "more\n" });
    await app.branch("topic");
    await app.pushAll();
    const after = await app.revParse("main");

    expect(await m.postWebhook(refsChangedPayload(APP.project, APP.slug, "refs/heads/main", before, after))).toBe(202);
    // The webhook names main only (the new branch topic is not in it): main comes by the
    // announced move, topic by the follow-up the sync's check against the primary starts.
    await waitFor(
      "the mirror to serve the pushed commit and the unannounced branch",
      async () => {
        const refs = await ok(["ls-remote", m.url(APP.project, APP.slug), "refs/heads/main", "refs/heads/topic"], m.gitEnv());
        return refs.startsWith(after) && refs.includes("refs/heads/topic");
      },
      120_000,
      100,
    );

    const fetchesBefore = await metric(m, GIT_METRIC_NAMES.uploadPacks, { kind: "fetch", result: "ok" });
    for (const { v, dest } of dests) {
      await ok(["-c", `protocol.version=${v}`, "--git-dir", dest, "fetch", "--quiet", "--prune", "origin"], m.gitEnv());
      await assertSameRefsAndObjects(primaryDir(APP), dest);
    }
    // Fetches (wants with haves), not clones: only the new objects travelled.
    expect(await metric(m, GIT_METRIC_NAMES.uploadPacks, { kind: "fetch", result: "ok" })).toBeGreaterThanOrEqual(fetchesBefore + 2);
  });

  test.each([0, 2])("shallow clone --depth 1 (v%i)", async (v) => {
    const dest = path.join(tempDir("clone"), "shallow");
    await ok(["-c", `protocol.version=${v}`, "clone", "--quiet", "--depth", "1", m.url(APP.project, APP.slug), dest], m.gitEnv());
    expect((await ok(["rev-list", "--count", "HEAD"], m.gitEnv(), dest)).trim()).toBe("1");
    expect(fs.existsSync(path.join(dest, ".git", "shallow"))).toBe(true);
    expect((await ok(["rev-parse", "HEAD"], m.gitEnv(), dest)).trim()).toBe(await app.revParse("main"));
    expect(fs.readFileSync(path.join(dest, "src/main.txt"), "utf8")).toBe("main, second\n");
  });

  test.each([2, 0])("partial clone --filter=blob:none (v%i): blobs come later, on demand, through nginx", async (v) => {
    const dest = path.join(tempDir("clone"), "partial");
    const proto = ["-c", `protocol.version=${v}`];
    await ok([...proto, "clone", "--quiet", "--filter=blob:none", "--no-checkout", m.url(APP.project, APP.slug), dest], m.gitEnv());
    const missing = (await ok(["rev-list", "--objects", "--all", "--missing=print"], m.gitEnv(), dest)).split("\n").filter((l) => l.startsWith("?"));
    expect(missing.length).toBeGreaterThan(0); // the server really filtered
    await ok([...proto, "checkout", "--quiet", "main"], m.gitEnv(), dest); // fetches the missing blobs from the mirror
    expect(fs.readFileSync(path.join(dest, "docs/big.txt"), "utf8")).toBe("x".repeat(50_000));
  });

  test.each([0, 2])("ls-remote (v%i) lists exactly what the primary has", async (v) => {
    const viaMirror = await ok(["-c", `protocol.version=${v}`, "ls-remote", m.url(APP.project, APP.slug)], m.gitEnv());
    const onPrimary = await ok(["ls-remote", primaryDir(APP)], m.gitEnv());
    expect(viaMirror).toBe(onPrimary);
    expect(viaMirror).toContain("refs/heads/feature/19");
  });

  test("mirror.push=refuse: push is refused with a message naming the primary's URL", async () => {
    const wc = await workingClone({ url: m.url(APP.project, APP.slug), env: m.gitEnv() });
    await wc.commit({ "pushed.txt": "nope\n" });
    const r = await run(["push", "origin", "HEAD:refs/heads/main"], m.gitEnv(), wc.dir);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`remote: Push to the primary instead: ${PRIMARY_URL}/scm/PROJ/app.git`);
    expect(r.stderr).toContain("read-only mirror");
    expect((await m.request("POST", "/scm/PROJ/app.git/git-receive-pack", { headers: { "Content-Type": "application/x-git-receive-pack-request" }, body: "0000" })).status).toBe(403);
    // Nothing reached the primary.
    expect(await git(["--git-dir", primaryDir(APP), "log", "--all", "--format=%s"])).not.toContain("pushed.txt");
  });

  test("traversal, encodings and junk through nginx get 4xx and never a file from disk", async () => {
    // A file a traversal would reach, with a recognisable content, next to the served repositories.
    fs.writeFileSync(path.join(m.mh.home, "repos", "PROJ", "secret.txt"), SECRET_FILE_CONTENT);
    const targets = [
      ...HOSTILE_PATHS,
    ];
    const problems: string[] = [];
    for (const t of targets) problems.push(...leaks(t, await rawTlsRequest(m, t)));
    expect(problems).toEqual([]);
  });

  test("a client killed in the middle of a clone leaves no git upload-pack behind", async () => {
    const dest = path.join(tempDir("clone"), "big.git");
    const clone = spawn("git", ["clone", "--bare", m.url(BIG.project, BIG.slug), dest], {
      env: m.gitEnv() as NodeJS.ProcessEnv,
      detached: true, // its own group: git, git-remote-https, index-pack
      stdio: "ignore",
    });
    onCleanup(() => signalGroup(clone, "SIGKILL"));
    const exited = new Promise((r) => clone.once("exit", r));
    const bigDir = m.repoDir(BIG.project, BIG.slug);

    // The pack is being made (pack-objects runs in the repository): stop the client from reading.
    await waitFor("pack-objects for the big repository", () => servingOn(m.mh.home).some((p) => p.includes("pack-objects") && p.includes(`cwd ${bigDir})`)), 120_000, 10);
    signalGroup(clone, "SIGSTOP");
    await new Promise((r) => setTimeout(r, 1500));
    // Still sending: the pack is bigger than every buffer on the way, so backpressure holds git.
    expect(servingOn(m.mh.home).filter((p) => p.includes("upload-pack"))).not.toEqual([]);

    signalGroup(clone, "SIGKILL");
    await exited;
    await waitFor("no git upload-pack / pack-objects left on the mirror home", () => servingOn(m.mh.home).length === 0, 30_000, 50).catch((e: Error) => {
      throw new Error(`${e.message}\nstill running:\n${servingOn(m.mh.home).join("\n")}`);
    });
    expect(await metric(m, GIT_METRIC_NAMES.uploadPacks, { kind: "clone", result: "aborted" })).toBeGreaterThanOrEqual(1);

    // The mirror serves on: the same repository clones completely afterwards.
    const again = path.join(tempDir("clone"), "big-again.git");
    await ok(["clone", "--quiet", "--mirror", m.url(BIG.project, BIG.slug), again], m.gitEnv());
    await assertSameRefsAndObjects(primaryDir(BIG), again);
  });
});
