/**
 * Git LFS through the mirror (issue 16), end to end with every part real: the `git lfs` client
 * (Debian's git-lfs) over TLS -> nginx running the rendered site -> the built daemon, which
 * syncs the Git repository from the SSH primary and fetches LFS objects from the primary's LFS
 * endpoint (the Bitbucket double over HTTPS with primaryLfs.ts), with mirror.serve.auth=primary:
 * every request's access is asked of the primary with the user's own credentials.
 *
 * Clients reach the mirror as https://127.0.0.1:PORT (the certificate has that address):
 * git-lfs is not curl, so git's http.curloptResolve does not steer it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { LFS_METRIC_NAMES } from "../../sync/serve/lfs";
import { homePath } from "../../sync/homeLayout";
import { ensureBundle } from "../../testbed/daemonProcess";
import { commitLfsFiles, LfsPrimary, lfsClientEnv, startLfsPrimary } from "../../testbed/lfsFixture";
import { MirrorBehindNginx, startMirrorBehindNginx } from "../../testbed/mirrorBehindNginx";
import { Primary, startPrimary } from "../../testbed/primary";
import type { LfsObject } from "../../testbed/primaryLfs";
import { git, GitEnv, GitError, workingClone, WorkingClone } from "../../testbed/repos";
import { tempDir, waitFor } from "../../testbed/resources";
import { refsChangedPayload } from "../../testbed/webhook";

jest.setTimeout(600_000);

const ART = { project: "ART", slug: "assets" };
const SECRET = { project: "ART", slug: "secret" };
/** Public on the primary: the mirror's prefetch (no catalog token here) may read it. */
const PUBLIC = { project: "ART", slug: "public" };
const WEBHOOK_SECRET = "lfs-webhook-secret";
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}`;
const LFS_JSON = "application/vnd.git-lfs+json";

let primary: Primary;
let lp: LfsPrimary;
let m: MirrorBehindNginx;
let work: WorkingClone;
let publicClone: WorkingClone;
/** Objects by file name: main's, and one per extra branch. */
let objs: Record<string, LfsObject>;

const lfsEnv = (user = "alice", password = "alice-pw", extra: Record<string, string> = {}): GitEnv => lfsClientEnv(m.gitEnv(), { user, password, caFile: m.ca.certPath, extra });
const url = (r: { project: string; slug: string }) => `https://127.0.0.1:${m.port}/scm/${r.project}/${r.slug}.git`;

async function run(args: string[], env: GitEnv, cwd?: string): Promise<{ code: number; stderr: string }> {
  try {
    await git(args, { env, cwd });
    return { code: 0, stderr: "" };
  } catch (e) {
    if (e instanceof GitError) return { code: e.code ?? -1, stderr: e.stderr };
    throw e;
  }
}

async function cloneThroughMirror(branch: string, env = lfsEnv()): Promise<{ code: number; stderr: string; dir: string }> {
  const dir = path.join(tempDir("lfs-clone"), "w");
  const r = await run(["clone", "--quiet", "--branch", branch, url(ART), dir], env);
  return { ...r, dir };
}

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const text = (await m.request("GET", "/metrics")).body.toString("utf8");
  let sum = 0;
  for (const line of text.split("\n")) {
    const match = new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`).exec(line);
    if (match && Object.entries(labels).every(([k, v]) => match[1].includes(`${k}="${v}"`))) sum += Number(match[2]);
  }
  return sum;
}

const stored = (oid: string) => fs.existsSync(path.join(homePath(m.mh.home, "lfsObjects"), oid.slice(0, 2), oid.slice(2, 4), oid));

beforeAll(async () => {
  ensureBundle();
  primary = await startPrimary();
  lp = await startLfsPrimary({ publicRead: (p, s) => p === PUBLIC.project && s === PUBLIC.slug });
  for (const r of [ART, SECRET, PUBLIC]) lp.double.addRepo(r.project, r.slug);
  lp.double.addUser("alice", "alice-pw", { canRead: { repos: ["ART/assets", "ART/public"] } });

  await primary.createRepo(ART.project, ART.slug);
  await primary.createRepo(SECRET.project, SECRET.slug);
  await primary.createRepo(PUBLIC.project, PUBLIC.slug);
  work = await workingClone(primary.remote(ART.project, ART.slug));
  objs = await commitLfsFiles(work, lp.lfs, ART.project, ART.slug, { "model.bin": randomBytes(3 << 20), "texture.png": randomBytes(200 << 10) });
  await work.push(["HEAD:refs/heads/main"]);
  for (const b of ["corrupt", "concurrent"]) {
    await work.checkout(b, { create: true });
    Object.assign(objs, await commitLfsFiles(work, lp.lfs, ART.project, ART.slug, { [`${b}.bin`]: randomBytes(b === "concurrent" ? 8 << 20 : 1 << 20) }));
    await work.push([`HEAD:refs/heads/${b}`]);
    await work.checkout("main");
  }
  const secret = await workingClone(primary.remote(SECRET.project, SECRET.slug));
  await commitLfsFiles(secret, lp.lfs, SECRET.project, SECRET.slug, { "hidden.bin": randomBytes(1000) });
  await secret.push(["HEAD:refs/heads/main"]);

  const pub = await workingClone(primary.remote(PUBLIC.project, PUBLIC.slug));
  await pub.commit({ "README.md": "public\n" });
  await pub.push(["HEAD:refs/heads/main"]);
  publicClone = pub;

  m = await startMirrorBehindNginx({
    primary,
    repos: [ART, SECRET, PUBLIC],
    webhookSecret: WEBHOOK_SECRET,
    properties: {
      "plugin.mirroring.upstream.url": lp.double.url,
      "mirror.upstream.caFile": lp.ca.certPath,
      "mirror.serve.auth": "primary",
      // On for the whole suite: the prefetches after the first syncs of ART/* are refused by the
      // primary (no catalog token), which the other tests show does not get in clients' way.
      "mirror.lfs.prefetch": "true",
    },
  });
  await m.waitSynchronized();
});

test("clone + checkout of an LFS repository through the mirror: objects fetched once from the primary, checked and stored", async () => {
  const r = await cloneThroughMirror("main");
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  for (const name of ["model.bin", "texture.png"]) {
    const content = fs.readFileSync(path.join(r.dir, name));
    expect(content.length).toBe(objs[name].size);
    expect(lp.lfs.downloads(objs[name].oid)).toBe(1);
  }
  expect(stored(objs["model.bin"].oid)).toBe(true);
  expect(await metric(LFS_METRIC_NAMES.objects, { result: "miss" })).toBeGreaterThanOrEqual(2);
});

test("with the primary's LFS endpoint down, a fresh clone is served from the mirror's store", async () => {
  await cloneThroughMirror("main"); // warm (a no-op when the previous test ran)
  const before = lp.lfs.downloads(objs["model.bin"].oid);
  lp.lfs.setDown(true);
  try {
    const r = await cloneThroughMirror("main");
    expect(r.stderr).toBe("");
    expect(fs.readFileSync(path.join(r.dir, "model.bin")).length).toBe(objs["model.bin"].size);
  } finally {
    lp.lfs.setDown(false);
  }
  expect(lp.lfs.downloads(objs["model.bin"].oid)).toBe(before);
  expect(await metric(LFS_METRIC_NAMES.objects, { result: "hit" })).toBeGreaterThanOrEqual(2);
});

test("a corrupt object from the primary is refused: never stored, the client's checkout fails; intact again, it is served", async () => {
  const o = objs["corrupt.bin"];
  lp.lfs.setCorrupt(o.oid);
  try {
    // One try: git-lfs would otherwise retry the failed transfer with backoff for a minute.
    const r = await cloneThroughMirror("corrupt", lfsEnv("alice", "alice-pw", { "lfs.transfer.maxretries": "1" }));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/corrupt\.bin/);
    expect(stored(o.oid)).toBe(false);
    expect(await metric(LFS_METRIC_NAMES.failures, { reason: "corrupt" })).toBeGreaterThanOrEqual(1);
  } finally {
    lp.lfs.setCorrupt(undefined);
  }
  const again = await cloneThroughMirror("corrupt");
  expect(again.code).toBe(0);
  expect(fs.readFileSync(path.join(again.dir, "corrupt.bin")).length).toBe(o.size);
  expect(stored(o.oid)).toBe(true);
});

test("concurrent downloads of one object make exactly one upstream request", async () => {
  const o = objs["concurrent.bin"];
  expect(stored(o.oid)).toBe(false);
  const auth = { Authorization: basic("alice", "alice-pw") };
  // The batch names the mirror's own href (the client never sees the primary's).
  const b = await m.request("POST", "/scm/ART/assets.git/info/lfs/objects/batch", {
    headers: { ...auth, Accept: LFS_JSON, "Content-Type": LFS_JSON },
    body: JSON.stringify({ operation: "download", transfers: ["basic"], objects: [{ oid: o.oid, size: o.size }] }),
  });
  expect(b.status).toBe(200);
  const href = (JSON.parse(b.body.toString()) as { objects: { actions: { download: { href: string } } }[] }).objects[0].actions.download.href;
  expect(href).toBe(`https://mirror.test:${m.port}/scm/ART/assets.git/info/lfs/objects/${o.oid}`);
  const target = new URL(href).pathname;
  const answers = await Promise.all([
    ...Array.from({ length: 6 }, () => m.request("GET", target, { headers: auth })),
    cloneThroughMirror("concurrent"),
    cloneThroughMirror("concurrent"),
  ]);
  for (const a of answers.slice(0, 6) as { status: number; body: Buffer }[]) {
    expect(a.status).toBe(200);
    expect(a.body.length).toBe(o.size);
  }
  for (const c of answers.slice(6) as { code: number; stderr: string }[]) expect(c.stderr).toBe("");
  expect(lp.lfs.downloads(o.oid)).toBe(1);
});

test("a repository the user may not read: refused like a clone (404), and 401 with LFS-Authenticate without credentials", async () => {
  const body = JSON.stringify({ operation: "download", objects: [{ oid: objs["model.bin"].oid, size: 1 }] });
  const headers = { Accept: LFS_JSON, "Content-Type": LFS_JSON };
  const denied = await m.request("POST", "/scm/ART/secret.git/info/lfs/objects/batch", { headers: { ...headers, Authorization: basic("alice", "alice-pw") }, body });
  expect(denied.status).toBe(404);
  expect(denied.headers["content-type"]).toBe(LFS_JSON);
  const anon = await m.request("POST", "/scm/ART/assets.git/info/lfs/objects/batch", { headers, body });
  expect(anon.status).toBe(401);
  expect(anon.headers["lfs-authenticate"]).toMatch(/^Basic /);
  // Object GETs pass the same check: the oid of an object the mirror holds is no key to it.
  const get = await m.request("GET", `/scm/ART/secret.git/info/lfs/objects/${objs["model.bin"].oid}`, { headers: { Authorization: basic("alice", "alice-pw") } });
  expect(get.status).toBe(404);
  // And real git-lfs: the clone of the repository is refused outright.
  const r = await run(["clone", "--quiet", url(SECRET), path.join(tempDir("lfs-clone"), "s")], lfsEnv());
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/not found/i);
});

test("an LFS upload through the mirror reaches the primary (git objects pushed to the primary, lfs.url the mirror)", async () => {
  const env = lfsEnv("alice", "alice-pw", { "lfs.url": `${url(ART)}/info/lfs` });
  const dir = path.join(tempDir("lfs-push"), "w");
  await git(["clone", "--quiet", "--branch", "main", primary.sshUrl(ART.project, ART.slug), dir], { env: { ...primary.gitEnv(), ...env } });
  const pushEnv = { ...env, GIT_SSH_COMMAND: primary.gitEnv().GIT_SSH_COMMAND };
  await git(["lfs", "install", "--local"], { cwd: dir, env: pushEnv });
  const content = randomBytes(600 << 10);
  fs.writeFileSync(path.join(dir, "upload.bin"), content);
  await git(["lfs", "track", "upload.bin"], { cwd: dir, env: pushEnv });
  await git(["add", ".gitattributes", "upload.bin"], { cwd: dir, env: pushEnv });
  await git(["commit", "--quiet", "-m", "upload through the mirror"], { cwd: dir, env: pushEnv });
  const batches = lp.lfs.batches.upload;
  await git(["push", "--quiet", "origin", "HEAD:refs/heads/uploaded"], { cwd: dir, env: pushEnv });
  const oid = createHash("sha256").update(content).digest("hex");
  expect(lp.lfs.has(ART.project, ART.slug, oid)).toBe(true);
  expect(lp.lfs.batches.upload).toBeGreaterThan(batches);
  expect(await metric(LFS_METRIC_NAMES.relayed, { kind: "upload", code: "200" })).toBeGreaterThanOrEqual(1);
  // git-lfs asked /locks/verify before pushing; the primary answered through the mirror.
  expect(await metric(LFS_METRIC_NAMES.relayed, { kind: "locks", code: "200" })).toBeGreaterThanOrEqual(1);
});

test("prefetch: after a push and its webhook, the new commit's LFS objects are in the mirror's store before anyone asks", async () => {
  const objects = await commitLfsFiles(publicClone, lp.lfs, PUBLIC.project, PUBLIC.slug, { "level.bin": randomBytes(400 << 10) });
  await publicClone.push(["HEAD:refs/heads/main"]);
  const o = objects["level.bin"];
  expect(await m.postWebhook(refsChangedPayload(PUBLIC.project, PUBLIC.slug))).toBe(202);
  await waitFor("the prefetched object in the mirror's store", () => stored(o.oid), 60_000, 50);
  expect(lp.lfs.downloads(o.oid)).toBe(1);
  expect(await metric(LFS_METRIC_NAMES.prefetched, { result: "stored" })).toBeGreaterThanOrEqual(1);
  // A clone now is served from the store: the primary sees no second download.
  const dir = path.join(tempDir("lfs-clone"), "p");
  const r = await run(["clone", "--quiet", url(PUBLIC), dir], lfsEnv());
  expect(r.stderr).toBe("");
  expect(fs.readFileSync(path.join(dir, "level.bin")).length).toBe(o.size);
  expect(lp.lfs.downloads(o.oid)).toBe(1);
});
