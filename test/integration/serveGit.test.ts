/**
 * Git smart HTTP served by the daemon's HTTP server, driven by real git clients over loopback
 * TCP: clones (v0, v2, shallow, partial), fetches, ls-remote, refused pushes, the three auth
 * modes (primary against the Bitbucket REST double over real TLS), hostile paths, and a client
 * killed mid-clone.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as path from "node:path";
import { gzipSync } from "node:zlib";
import { Registry } from "prom-client";
import { tokensAuthorizer } from "../../sync/auth/authorizer";
import { hashToken, TokenStore } from "../../sync/auth/tokensFile";
import { catalogResolver, GIT_METRIC_NAMES, gitServeOptionsFromConfig, GitServeOptions } from "../../sync/serve/git";
import { pktLine } from "../../sync/serve/git/protocol";
import { startBitbucketDouble, BitbucketDouble } from "../../testbed/bitbucketDouble";
import { assertSameRefsAndObjects, git, GitError, initBare, isolatedGitEnv, listRefs, pushSampleHistory, workingClone, WorkingClone } from "../../testbed/repos";
import { rawResponse } from "../../testbed/httpClient";
import { onCleanup, tempDir, waitFor } from "../../testbed/resources";
import { createCa, TestCa } from "../../testbed/tls";
import { HOSTILE_PATHS, leaks, SECRET_FILE_CONTENT } from "../../testbed/hostilePaths";
import { processesOn, signalGroup } from "../../testbed/processes";
import { startInProcessGitServer } from "../../testbed/gitServer";

jest.setTimeout(240_000);

const FAKE_PRIMARY = "https://bitbucket.example.com";

// ---- fixtures ---------------------------------------------------------------------------------

interface Served {
  root: string;
  catalog: Map<string, string>;
  dir(key: string): string;
}

async function makeRepos(): Promise<Served & { app: WorkingClone }> {
  const root = tempDir("served");
  const catalog = new Map<string, string>();
  const dir = (key: string) => path.join(root, `${key}.git`);
  const add = async (key: string) => {
    await initBare(dir(key));
    catalog.set(key, dir(key));
    return dir(key);
  };
  await add("PROJ/app");
  const app = await workingClone(dir("PROJ/app"));
  // Enough branches that a v0 clone's want list is gzipped by git (remote-curl: > 1 KB).
  await pushSampleHistory(app, 40);

  await add("PROJ/other");
  const other = await workingClone(dir("PROJ/other"));
  await other.commit({ "other.txt": "other\n" });
  await other.pushAll();

  await add("PROJ/empty");
  return { root, catalog, dir, app };
}

/** A repository with one commit of `files` on main, added to the catalog; its directory. */
async function addRepo(served: Served, key: string, files: Record<string, string | Buffer>): Promise<string> {
  const dir = served.dir(key);
  await initBare(dir);
  served.catalog.set(key, dir);
  const w = await workingClone(dir);
  await w.commit(files);
  await w.push(["main"]);
  return dir;
}

interface GitServer {
  port: number;
  base: string;
  registry: Registry;
  close(): Promise<void>;
}

function startGitServer(served: Served, o: Partial<GitServeOptions> = {}): Promise<GitServer> {
  return startInProcessGitServer(served.catalog, { primaryUrl: FAKE_PRIMARY, ...o });
}

/** Run git; never throws: exit code and both outputs. */
async function run(args: string[], env: Record<string, string> = {}, cwd?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const stdout = await git(args, { env: { GIT_TERMINAL_PROMPT: "0", ...env }, cwd });
    return { code: 0, stdout, stderr: "" };
  } catch (e) {
    if (e instanceof GitError) return { code: e.code ?? -1, stdout: "", stderr: e.stderr };
    throw e;
  }
}

async function ok(args: string[], env: Record<string, string> = {}, cwd?: string): Promise<string> {
  const r = await run(args, env, cwd);
  if (r.code !== 0) throw new Error(`git ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** Sum of a counter's values whose labels include `labels`. */
async function counter(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) return 0;
  const { values } = await m.get();
  return values.filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want)).reduce((a, v) => a + v.value, 0);
}

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(port: number, method: string, p: string, headers: http.OutgoingHttpHeaders = {}, body?: Buffer): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path: p, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("latin1") }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** Bytes exactly as written (node's client would refuse NUL, backslashes, raw spaces). */
function rawRequest(port: number, target: string, method = "GET"): Promise<{ status: number; text: string }> {
  const s = net.connect(port, "127.0.0.1", () => s.end(Buffer.from(`${method} ${target} HTTP/1.1\r\nHost: mirror\r\nConnection: close\r\n\r\n`, "latin1")));
  return rawResponse(s);
}

const basicAuth = (user: string, secret: string) => ({ Authorization: `Basic ${Buffer.from(`${user}:${secret}`).toString("base64")}` });
const INFO = "info/refs?service=git-upload-pack";
const withUser = (base: string, user: string, secret: string) => base.replace("http://", `http://${encodeURIComponent(user)}:${encodeURIComponent(secret)}@`);

// ---- anonymous: the protocol ----------------------------------------------------------------

describe("Git smart HTTP (auth=anonymous)", () => {
  let served: Served & { app: WorkingClone };
  let srv: GitServer;

  beforeAll(async () => {
    served = await makeRepos();
    srv = await startGitServer(served);
  });

  test.each([0, 2])("clone --mirror over protocol v%i: same refs, HEAD and objects as the source", async (v) => {
    const dest = path.join(tempDir("clone"), "m.git");
    await ok(["-c", `protocol.version=${v}`, "clone", "--quiet", "--mirror", `${srv.base}/scm/PROJ/app.git`, dest]);
    await assertSameRefsAndObjects(served.dir("PROJ/app"), dest);
    expect(await counter(srv.registry, GIT_METRIC_NAMES.uploadPacks, { kind: "clone", protocol: `v${v}`, result: "ok" })).toBeGreaterThanOrEqual(1);
  });

  test("16 simultaneous clones through 2 upload-pack slots all succeed (they queue, nobody is refused)", async () => {
    const narrow = await startGitServer(served, { maxConcurrent: 2 });
    const dests = Array.from({ length: 16 }, (_, i) => path.join(tempDir("clone"), `q${i}.git`));
    await Promise.all(dests.map((d) => ok(["clone", "--quiet", "--bare", `${narrow.base}/scm/PROJ/app.git`, d])));
    const want = await listRefs(served.dir("PROJ/app"));
    for (const d of dests) expect(await listRefs(d)).toEqual(want);
    expect(await counter(narrow.registry, GIT_METRIC_NAMES.requests, { code: "503" })).toBe(0);
    await narrow.close();
  });

  test("Bitbucket's URL variants: lower-case project key, no .git", async () => {
    for (const url of [`${srv.base}/scm/proj/app.git`, `${srv.base}/scm/PROJ/app`]) {
      const dest = path.join(tempDir("clone"), "c.git");
      await ok(["clone", "--quiet", "--bare", url, dest]);
      expect(await listRefs(dest)).toEqual(await listRefs(served.dir("PROJ/app")));
    }
  });

  test("an empty repository clones", async () => {
    const r = await run(["clone", `${srv.base}/scm/PROJ/empty.git`, path.join(tempDir("clone"), "e")]);
    expect(r.code).toBe(0);
  });

  test("incremental fetch brings exactly the new commits (v0 and v2)", async () => {
    const dests = [0, 2].map((v) => ({ v, dest: path.join(tempDir("clone"), `f${v}.git`) }));
    for (const { v, dest } of dests) await ok(["-c", `protocol.version=${v}`, "clone", "--quiet", "--mirror", `${srv.base}/scm/PROJ/other.git`, dest]);
    const other = await workingClone(served.dir("PROJ/other"));
    await other.commit({ "more.txt": "more\n" });
    await other.branch("topic");
    await other.pushAll();
    const fetchesBefore = await counter(srv.registry, GIT_METRIC_NAMES.uploadPacks, { kind: "fetch", result: "ok" });
    for (const { v, dest } of dests) {
      await ok(["-c", `protocol.version=${v}`, "--git-dir", dest, "fetch", "--quiet", "--prune", "origin"]);
      await assertSameRefsAndObjects(served.dir("PROJ/other"), dest);
    }
    expect(await counter(srv.registry, GIT_METRIC_NAMES.uploadPacks, { kind: "fetch", result: "ok" })).toBeGreaterThanOrEqual(fetchesBefore + 2);
  });

  test.each([0, 2])("shallow clone --depth 1 (v%i)", async (v) => {
    const dest = path.join(tempDir("clone"), "shallow");
    await ok(["-c", `protocol.version=${v}`, "clone", "--quiet", "--depth", "1", `${srv.base}/scm/PROJ/app.git`, dest]);
    expect((await ok(["rev-list", "--count", "HEAD"], {}, dest)).trim()).toBe("1");
    expect(fs.existsSync(path.join(dest, ".git", "shallow"))).toBe(true);
    expect((await ok(["rev-parse", "HEAD"], {}, dest)).trim()).toBe(await served.app.revParse("main"));
    expect(fs.readFileSync(path.join(dest, "src/main.txt"), "utf8")).toBe("main, second\n");
  });

  test.each([2, 0])("partial clone --filter=blob:none (v%i): blobs come later, on demand", async (v) => {
    const dest = path.join(tempDir("clone"), "partial");
    const proto = ["-c", `protocol.version=${v}`];
    await ok([...proto, "clone", "--quiet", "--filter=blob:none", "--no-checkout", `${srv.base}/scm/PROJ/app.git`, dest]);
    const missing = (await ok(["rev-list", "--objects", "--all", "--missing=print"], {}, dest)).split("\n").filter((l) => l.startsWith("?"));
    expect(missing.length).toBeGreaterThan(0); // the server really filtered
    await ok([...proto, "checkout", "--quiet", "main"], {}, dest); // fetches the missing blobs from the mirror
    expect(fs.readFileSync(path.join(dest, "docs/big.txt"), "utf8")).toBe("x".repeat(50_000));
  });

  test.each([0, 2])("ls-remote (v%i) lists what the source has", async (v) => {
    const mirror = await ok(["-c", `protocol.version=${v}`, "ls-remote", `${srv.base}/scm/PROJ/app.git`]);
    const local = await ok(["ls-remote", served.dir("PROJ/app")]);
    expect(mirror).toBe(local);
    if (v === 2) expect(await counter(srv.registry, GIT_METRIC_NAMES.uploadPacks, { kind: "ls_refs", result: "ok" })).toBeGreaterThanOrEqual(1);
  });

  test("push is refused with a message naming the primary's URL", async () => {
    const wc = await workingClone({ url: `${srv.base}/scm/PROJ/app.git` });
    await wc.commit({ "pushed.txt": "nope\n" });
    const r = await run(["push", "origin", "main"], {}, wc.dir);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`remote: Push to the primary instead: ${FAKE_PRIMARY}/scm/PROJ/app.git`);
    expect(r.stderr).toContain("read-only mirror");
    // And the POST endpoint itself, for clients that skip discovery.
    const post = await request(srv.port, "POST", "/scm/PROJ/app.git/git-receive-pack", { "Content-Type": "application/x-git-receive-pack-request" }, Buffer.from("0000"));
    expect(post.status).toBe(403);
  });

  test("answers like git-http-backend: content types, no-cache, the v0 service line, v2 without it", async () => {
    const v0 = await request(srv.port, "GET", `/scm/PROJ/app.git/${INFO}`);
    expect(v0.status).toBe(200);
    expect(v0.headers["content-type"]).toBe("application/x-git-upload-pack-advertisement");
    expect(v0.headers["cache-control"]).toMatch(/no-cache/);
    expect(v0.body.startsWith("001e# service=git-upload-pack\n0000")).toBe(true);
    const v2 = await request(srv.port, "GET", `/scm/PROJ/app.git/${INFO}`, { "Git-Protocol": "version=2" });
    expect(v2.body.startsWith("000eversion 2\n")).toBe(true);
    const head = await request(srv.port, "HEAD", `/scm/PROJ/app.git/${INFO}`);
    expect(head.status).toBe(200);
  });

  test("gzip request bodies are decoded as they stream", async () => {
    const body = gzipSync(Buffer.concat([pktLine("command=ls-refs\n"), Buffer.from("0001"), pktLine("ref-prefix refs/heads/\n"), Buffer.from("0000")]));
    const r = await request(srv.port, "POST", "/scm/PROJ/app.git/git-upload-pack", { "Content-Type": "application/x-git-upload-pack-request", "Content-Encoding": "gzip", "Git-Protocol": "version=2" }, body);
    expect(r.status).toBe(200);
    expect(r.headers["content-type"]).toBe("application/x-git-upload-pack-result");
    expect(r.body).toContain(`${await served.app.revParse("main")} refs/heads/main`);
  });

  test("request bodies are size-limited after decoding (gzip bombs), and by Content-Length", async () => {
    const small = await startGitServer(served, { maxRequestBytes: 256 * 1024 });
    // 2 MiB of valid ls-refs arguments (git keeps reading until the flush at the end) in ~10 KiB of gzip.
    const args = Buffer.concat(Array.from({ length: 70_000 }, () => pktLine("ref-prefix refs/x/\n")));
    const bomb = gzipSync(Buffer.concat([pktLine("command=ls-refs\n"), Buffer.from("0001"), args, Buffer.from("0000")]));
    expect(bomb.length).toBeLessThan(256 * 1024);
    const headers = { "Content-Type": "application/x-git-upload-pack-request", "Git-Protocol": "version=2" };
    const r = await request(small.port, "POST", "/scm/PROJ/app.git/git-upload-pack", { ...headers, "Content-Encoding": "gzip" }, bomb);
    expect(r.status).toBe(413);
    const declared = await request(small.port, "POST", "/scm/PROJ/app.git/git-upload-pack", headers, Buffer.alloc(300 * 1024, "0"));
    expect(declared.status).toBe(413);
    const notGzip = await request(small.port, "POST", "/scm/PROJ/app.git/git-upload-pack", { ...headers, "Content-Encoding": "gzip" }, Buffer.from("this is not gzip at all"));
    expect(notGzip.status).toBe(400);
    const badType = await request(small.port, "POST", "/scm/PROJ/app.git/git-upload-pack", { "Content-Type": "text/plain" }, Buffer.from("0000"));
    expect(badType.status).toBe(415);
    await small.close();
  });

  test("traversal, encodings and junk get 4xx and never a file from disk", async () => {
    // A file a traversal would reach, with a recognisable content.
    fs.writeFileSync(path.join(served.root, "PROJ", "secret.txt"), SECRET_FILE_CONTENT);
    const targets = [
      ...HOSTILE_PATHS,
      // Kept apart from HOSTILE_PATHS: nginx merges the slashes (and then rightly serves it).
      "/scm/PROJ//app.git/info/refs?service=git-upload-pack",
    ];
    const problems: string[] = [];
    for (const t of targets) problems.push(...leaks(t, await rawRequest(srv.port, t)));
    expect(problems).toEqual([]);
  });
});

// ---- auth=primary ------------------------------------------------------------------------------

describe("Git smart HTTP (auth=primary, against the Bitbucket REST double over TLS)", () => {
  let served: Served & { app: WorkingClone };
  let ca: TestCa;
  let double: BitbucketDouble;

  const config = (ttlMs: number) => ({
    serve: { auth: "primary" as const, authCacheTtlMs: ttlMs },
    upstream: { url: double.url, caFile: ca.certPath },
  });
  const start = (ttlMs = 60_000) => {
    const registry = new Registry();
    const o = gitServeOptionsFromConfig(config(ttlMs), { resolve: catalogResolver((k) => served.catalog.get(k)), registry });
    return startGitServer(served, o);
  };

  beforeAll(async () => {
    served = await makeRepos();
    ca = await createCa();
    const cert = await ca.issueServerCert(["localhost", "127.0.0.1"]);
    double = await startBitbucketDouble({ cert: fs.readFileSync(cert.chainPath, "utf8"), key: fs.readFileSync(cert.keyPath, "utf8") });
    for (const slug of ["app", "other", "empty", "ghost"]) double.addRepo("PROJ", slug);
    double.addUser("alice", "alice-pw", { token: "alice-token" });
    double.addUser("bob", "bob-pw", { canRead: { repos: ["PROJ/other"] } });
    for (const u of ["carol", "dave", "erin"]) double.addUser(u, `${u}-pw`);
  });

  test("a user who can read the repository on the primary clones it (password, or token as Bearer)", async () => {
    const srv = await start();
    const dest = path.join(tempDir("clone"), "a.git");
    await ok(["clone", "--quiet", "--mirror", `${withUser(srv.base, "alice", "alice-pw")}/scm/PROJ/app.git`, dest]);
    await assertSameRefsAndObjects(served.dir("PROJ/app"), dest);
    const viaToken = path.join(tempDir("clone"), "t.git");
    await ok(["-c", "http.extraHeader=Authorization: Bearer alice-token", "clone", "--quiet", "--bare", `${srv.base}/scm/PROJ/app.git`, viaToken]);
    expect(await listRefs(viaToken)).toEqual(await listRefs(served.dir("PROJ/app")));
  });

  test("missing or wrong credentials: 401 with a Basic challenge, and git fails asking for credentials", async () => {
    const srv = await start();
    const none = await request(srv.port, "GET", `/scm/PROJ/app.git/${INFO}`);
    expect(none.status).toBe(401);
    expect(none.headers["www-authenticate"]).toMatch(/^Basic realm="smart-mirror"/);
    const wrong = await request(srv.port, "GET", `/scm/PROJ/app.git/${INFO}`, basicAuth("alice", "nope"));
    expect(wrong.status).toBe(401);
    // Bad credentials on a repository the mirror does not have look the same (no catalog leak).
    expect((await request(srv.port, "GET", `/scm/PROJ/nothing-here.git/${INFO}`, basicAuth("alice", "nope"))).status).toBe(401);
    expect((await request(srv.port, "GET", `/scm/PROJ/nothing-here.git/${INFO}`)).status).toBe(401);

    const anon = await run(["clone", `${srv.base}/scm/PROJ/app.git`, path.join(tempDir("clone"), "x")]);
    expect(anon.code).not.toBe(0);
    expect(anon.stderr).toMatch(/could not read Username|terminal prompts disabled/);
    const bad = await run(["clone", `${withUser(srv.base, "alice", "nope")}/scm/PROJ/app.git`, path.join(tempDir("clone"), "y")]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/Authentication failed/);
  });

  test("a repository the user cannot read on the primary is 'not found', like one that does not exist", async () => {
    const srv = await start();
    const denied = await request(srv.port, "GET", `/scm/PROJ/app.git/${INFO}`, basicAuth("bob", "bob-pw"));
    expect(denied.status).toBe(404);
    expect(denied.body).toContain("Repository not found");
    const absent = await request(srv.port, "GET", `/scm/PROJ/ghost.git/${INFO}`, basicAuth("alice", "alice-pw"));
    expect(absent.status).toBe(404); // on the primary, but not (yet) on the mirror
    expect(absent.body).toBe(denied.body);
    const r = await run(["clone", `${withUser(srv.base, "bob", "bob-pw")}/scm/PROJ/app.git`, path.join(tempDir("clone"), "b")]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/not found/);
    await ok(["clone", "--quiet", `${withUser(srv.base, "bob", "bob-pw")}/scm/PROJ/other.git`, path.join(tempDir("clone"), "o")]);
  });

  test("32 concurrent requests by one user cost one REST call; later ones come from the cache", async () => {
    const srv = await start();
    const before = double.requests.filter((q) => q.user === "carol").length;
    const answers = await Promise.all(Array.from({ length: 32 }, () => request(srv.port, "GET", `/scm/PROJ/app.git/${INFO}`, basicAuth("carol", "carol-pw"))));
    expect(answers.map((a) => a.status)).toEqual(Array(32).fill(200));
    await ok(["clone", "--quiet", "--bare", `${withUser(srv.base, "carol", "carol-pw")}/scm/PROJ/app.git`, path.join(tempDir("clone"), "c.git")]);
    expect(double.requests.filter((q) => q.user === "carol").length - before).toBe(1);
    expect(await counter(srv.registry, GIT_METRIC_NAMES.primaryChecks, { verdict: "allow" })).toBe(1);
  });

  test("primary down: known users keep cloning (grace), unknown users get 503 with a clear message", async () => {
    const srv = await start(1); // every decision is stale at once: each request asks the primary
    await ok(["clone", "--quiet", "--bare", `${withUser(srv.base, "dave", "dave-pw")}/scm/PROJ/app.git`, path.join(tempDir("clone"), "d1.git")]);
    await double.setDown("refused");
    try {
      const dest = path.join(tempDir("clone"), "d2.git");
      await ok(["clone", "--quiet", "--bare", `${withUser(srv.base, "dave", "dave-pw")}/scm/PROJ/app.git`, dest]);
      expect(await listRefs(dest)).toEqual(await listRefs(served.dir("PROJ/app")));
      expect(await counter(srv.registry, GIT_METRIC_NAMES.auth, { mode: "primary", result: "allowed_grace" })).toBeGreaterThanOrEqual(1);

      const stranger = await request(srv.port, "GET", `/scm/PROJ/app.git/${INFO}`, basicAuth("erin", "erin-pw"));
      expect(stranger.status).toBe(503);
      expect(stranger.headers["retry-after"]).toBeDefined();
      const r = await run(["clone", `${withUser(srv.base, "erin", "erin-pw")}/scm/PROJ/app.git`, path.join(tempDir("clone"), "e")]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`remote: The mirror cannot reach the primary (${double.url})`);
    } finally {
      await double.setDown(false);
    }
  });

  test("push is refused with the primary's push URL, before any credentials are asked", async () => {
    const srv = await start();
    const wc = await workingClone({ url: `${withUser(srv.base, "alice", "alice-pw")}/scm/PROJ/app.git` });
    await wc.commit({ "p.txt": "p\n" });
    const r = await run(["push", `${srv.base}/scm/PROJ/app.git`, "main"], {}, wc.dir);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`${double.url}/scm/PROJ/app.git`);
  });
});

// ---- auth=tokens -------------------------------------------------------------------------------

describe("Git smart HTTP (auth=tokens)", () => {
  test("a listed token clones; a wrong or removed one gets 401", async () => {
    const served = await makeRepos();
    const file = path.join(tempDir("tokens"), "tokens");
    const token = randomBytes(24).toString("hex");
    fs.writeFileSync(file, `# test\nci:${hashToken(token).toString("hex")}\n`, { mode: 0o600 });
    const srv = await startGitServer(served, { authorizer: tokensAuthorizer(new TokenStore(file, { checkEveryMs: 0 })) });
    await ok(["clone", "--quiet", "--bare", `${withUser(srv.base, "ci", token)}/scm/PROJ/app.git`, path.join(tempDir("clone"), "t.git")]);
    expect((await request(srv.port, "GET", `/scm/PROJ/app.git/${INFO}`, { Authorization: `Bearer ${token}` })).status).toBe(200);
    expect((await request(srv.port, "GET", `/scm/PROJ/app.git/${INFO}`, basicAuth("ci", "wrong"))).status).toBe(401);
    expect((await request(srv.port, "GET", `/scm/PROJ/app.git/${INFO}`, basicAuth("other", token))).status).toBe(401);
    fs.writeFileSync(file, "# revoked\n");
    const revoked = await request(srv.port, "GET", `/scm/PROJ/app.git/${INFO}`, basicAuth("ci", token));
    expect(revoked.status).toBe(401);
    expect(revoked.headers["www-authenticate"]).toMatch(/^Basic realm="smart-mirror"/);
  });
});

// ---- a client killed mid-clone -----------------------------------------------------------------

describe("clients that leave or stall mid-clone (git writes into their socket itself: handOff.ts)", () => {
  test("leaves no git upload-pack or pack-objects behind, and frees its slot (the only one; others got 503 meanwhile)", async () => {
    const served = await makeRepos();
    const bigKey = "TEAM/big";
    // Incompressible: the pack is as big as the blobs (48 MiB), more than socket buffers can hold
    // (loopback here: tcp_rmem max 32 MiB, and a stopped reader's window does not grow anyway).
    const bigDir = await addRepo(served, bigKey, { "a.bin": randomBytes(16 << 20), "b.bin": randomBytes(16 << 20), "c.bin": randomBytes(16 << 20) });

    const logged: Record<string, unknown>[] = [];
    const log = { info: (o: object) => void logged.push({ ...o }), warn: (o: object) => void logged.push({ ...o }), error: (o: object) => void logged.push({ ...o }) };
    const srv = await startGitServer(served, { maxConcurrent: 1, maxQueue: 4, queueWaitMs: 300, log });
    const dest = path.join(tempDir("clone"), "big.git");
    const clone = spawn("git", ["clone", "--bare", `${srv.base}/scm/TEAM/big.git`, dest], {
      env: isolatedGitEnv({ GIT_TERMINAL_PROMPT: "0" }) as NodeJS.ProcessEnv,
      detached: true, // its own group: git, git-remote-http, index-pack
      stdio: "ignore",
    });
    onCleanup(() => signalGroup(clone, "SIGKILL"));
    const exited = new Promise((r) => clone.once("exit", r));

    // The fetch is running (pack-objects: not the advertisement's or ls-refs' upload-pack): stop the client from reading.
    await waitFor("pack-objects for the big repository", () => processesOn(bigDir).some((p) => p.includes("pack-objects")), 60_000);
    signalGroup(clone, "SIGSTOP");
    await new Promise((r) => setTimeout(r, 1000));
    // Still sending: backpressure holds git, nothing was collected in memory instead.
    expect(processesOn(bigDir).some((p) => p.includes("upload-pack"))).toBe(true);

    // The one slot is taken: another clone waits briefly, then gets 503 with Retry-After.
    const busy = await request(srv.port, "GET", `/scm/PROJ/app.git/${INFO}`);
    expect(busy.status).toBe(503);
    expect(busy.headers["retry-after"]).toBeDefined();

    signalGroup(clone, "SIGKILL");
    await exited;
    await waitFor("no git process left on the big repository", () => processesOn(bigDir).length === 0, 15_000);
    expect(await counter(srv.registry, GIT_METRIC_NAMES.uploadPacks, { kind: "clone", result: "aborted" })).toBe(1);
    // Counted as the client leaving, not as a failure: git writes into the client's socket
    // (handOff.ts), so either the server killed it on seeing the socket close (SIGKILL) or its
    // own next write failed (SIGPIPE / broken pipe).
    expect(logged.filter((l) => l.result === "aborted")).toEqual([expect.objectContaining({ repo: bigKey, kind: "clone" })]);
    expect(logged.filter((l) => l.result === "failed")).toEqual([]);

    // The slot came back.
    const after = await ok(["ls-remote", `${srv.base}/scm/PROJ/app.git`]);
    expect(after).toContain("refs/heads/main");
  });

  test("a client that stops reading for longer than the idle timeout is cut: git killed, counted as aborted", async () => {
    const served = await makeRepos();
    const dir = await addRepo(served, "TEAM/stalled", { "a.bin": randomBytes(24 << 20), "b.bin": randomBytes(24 << 20) });
    const srv = await startGitServer(served, { idleTimeoutMs: 1500 });
    const clone = spawn("git", ["clone", "--bare", `${srv.base}/scm/TEAM/stalled.git`, path.join(tempDir("clone"), "stalled.git")], {
      env: isolatedGitEnv({ GIT_TERMINAL_PROMPT: "0" }) as NodeJS.ProcessEnv,
      detached: true,
      stdio: "ignore",
    });
    onCleanup(() => signalGroup(clone, "SIGKILL"));
    await waitFor("pack-objects for the stalled repository", () => processesOn(dir).some((p) => p.includes("pack-objects")), 60_000);
    signalGroup(clone, "SIGSTOP"); // the client stays connected but reads nothing more
    // The daemon sees no byte of this transfer: it watches git's written bytes (/proc) instead.
    await waitFor("git killed for idling", () => processesOn(dir).length === 0, 15_000);
    await waitFor("the transfer counted as aborted", async () => (await counter(srv.registry, GIT_METRIC_NAMES.uploadPacks, { kind: "clone", result: "aborted" })) === 1, 5_000);
    signalGroup(clone, "SIGKILL");
  });

  test("the bytes counted for a pack are what the client received (sampled from /proc, not relayed)", async () => {
    const served = await makeRepos();
    await addRepo(served, "TEAM/counted", { "r.bin": randomBytes(3 << 20) });
    const srv = await startGitServer(served);
    const dest = path.join(tempDir("clone"), "counted.git");
    await ok(["clone", "--quiet", "--bare", `${srv.base}/scm/TEAM/counted.git`, dest]);
    const packs = fs.readdirSync(path.join(dest, "objects", "pack")).filter((f) => f.endsWith(".pack"));
    const packBytes = packs.reduce((a, f) => a + fs.statSync(path.join(dest, "objects", "pack", f)).size, 0);
    const sent = await counter(srv.registry, GIT_METRIC_NAMES.sentBytes, { endpoint: "upload_pack" });
    // The pack plus its pkt-line/side-band framing (5 bytes per packet of up to 64 KiB) and the
    // few lines around it; never less than the pack.
    expect(sent).toBeGreaterThanOrEqual(packBytes);
    expect(sent).toBeLessThan(packBytes * 1.01 + 64 * 1024);
  });
});
