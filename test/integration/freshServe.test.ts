/**
 * Fresh by construction (sync/serve/git/freshness.ts), with a real sshd primary, the real
 * daemon syncing from it, and real git clients: a commit pushed a moment ago, with no webhook
 * and no reconcile (interval 1 h), is fetched by id (v2, v0, shallow, partial) and cloned and
 * checked out through the mirror; a want that exists nowhere is answered "not our ref" and
 * asks the primary once; the wait is bounded; the primary down gets a clear message; and the
 * pack cache never answers a new state from an old one.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { startFreshMirror } from "../../testbed/freshMirror";
import { Primary, startPrimary } from "../../testbed/primary";
import { git, GitEnv, GitError, workingClone, WorkingClone } from "../../testbed/repos";
import { tempDir } from "../../testbed/resources";
import { PACK_CACHE_METRIC_NAMES } from "../../sync/serve/git/packCache";

jest.setTimeout(240_000);

const ID = { project: "PROJ", slug: "app" };

let primary: Primary;
let wc: WorkingClone;
let n = 0;

beforeAll(async () => {
  primary = await startPrimary();
  await primary.createRepo(ID.project, ID.slug);
  wc = await workingClone(primary.remote(ID.project, ID.slug));
  await wc.commit({ "a.txt": "first\n" });
  await wc.pushAll();
});

/** A new commit on the primary's main; returns its id. */
async function push(): Promise<string> {
  const sha = await wc.commit({ "a.txt": `push ${++n}\n`, [`f${n}.txt`]: `${n}\n` });
  await wc.push(["HEAD:refs/heads/main"]);
  return sha;
}

/** git's failure output (stderr), or throws when it succeeded. */
async function gitFails(args: string[], opts: { cwd?: string; env?: GitEnv }): Promise<string> {
  try {
    await git(args, opts);
  } catch (e) {
    if (e instanceof GitError) return e.stderr;
    throw e;
  }
  throw new Error(`git ${args.join(" ")} succeeded, expected a failure`);
}

async function cloneOf(url: string, env: GitEnv, extra: string[] = []): Promise<string> {
  const dir = path.join(tempDir("client"), "repo");
  await git(["clone", "--quiet", ...extra, url, dir], { env });
  return dir;
}

describe("wants the mirror lacks are fetched on demand", () => {
  test("fetch by id right after a push: v2, v0, shallow and partial (freshness=never, so the want alone does it)", async () => {
    const f = await startFreshMirror(primary, [ID], { freshness: "never" });
    const env = f.gitEnv();
    const url = f.url(ID.project, ID.slug);
    const full = await cloneOf(url, env);
    const shallow = await cloneOf(url, env, ["--depth", "1"]);
    const partial = await cloneOf(url, env, ["--filter=blob:none"]);
    const cases: Array<[string, string, string[]]> = [
      ["v2", full, ["-c", "protocol.version=2", "fetch", "--quiet", "origin"]],
      ["v0", full, ["-c", "protocol.version=0", "fetch", "--quiet", "origin"]],
      ["shallow", shallow, ["fetch", "--quiet", "--depth", "1", "origin"]],
      ["partial", partial, ["fetch", "--quiet", "origin"]],
    ];
    for (const [label, dir, args] of cases) {
      const sha = await push();
      const before = f.counts.syncNow;
      await git([...args, sha], { cwd: dir, env });
      // The client has the commit, and the mirror went to the primary for it.
      expect(`${label}: ${(await git(["cat-file", "-t", sha], { cwd: dir, env })).trim()}`).toBe(`${label}: commit`);
      expect(`${label}: ${f.counts.syncNow - before}`).toBe(`${label}: 1`);
    }
    // Checked out, the partial clone fetches its missing blobs by id too (v2 wants of blobs).
    await git(["checkout", "--quiet", "--detach", "FETCH_HEAD"], { cwd: partial, env });
    expect(fs.readFileSync(path.join(partial, "a.txt"), "utf8")).toBe(`push ${n}\n`);
  });

  test("a want that exists nowhere: git's own 'not our ref', and the primary is asked once (negative cache)", async () => {
    const f = await startFreshMirror(primary, [ID], { freshness: "never" });
    const env = f.gitEnv();
    const dir = await cloneOf(f.url(ID.project, ID.slug), env);
    const ghost = "0123456789abcdef0123456789abcdef01234567";
    for (const version of ["2", "0", "2", "0"]) {
      const stderr = await gitFails(["-c", `protocol.version=${version}`, "fetch", "origin", ghost], { cwd: dir, env });
      expect(stderr).toMatch(/not our ref/);
      expect(stderr).not.toMatch(/behind the primary/);
    }
    expect(f.counts.syncNow).toBe(1);
    // The refs change (a sync brought a push): the entry is void, the next miss asks again.
    await push();
    await f.m.daemon.syncNow("PROJ/app"); // straight to the daemon: not counted
    expect(await gitFails(["fetch", "origin", ghost], { cwd: dir, env })).toMatch(/not our ref/);
    expect(f.counts.syncNow).toBe(2);
  });

  test("the wait is bounded: a fetch slower than mirror.serve.onDemandWait gets a clear error, the sync goes on", async () => {
    const f = await startFreshMirror(primary, [ID], { freshness: "never", waitMs: 1000 });
    const env = f.gitEnv();
    const dir = await cloneOf(f.url(ID.project, ID.slug), env);
    const sha = await push();
    // The primary's pack-objects takes 4 s (a real git hook: uploadpack.packObjectsHook, read
    // from the primary's global config only).
    const hook = path.join(primary.dir, "slow-pack-objects.sh");
    fs.writeFileSync(hook, '#!/bin/sh\nsleep 4\nexec "$@"\n', { mode: 0o755 });
    const config = path.join(primary.dir, "gitconfig");
    const original = fs.readFileSync(config, "utf8");
    fs.appendFileSync(config, `[uploadpack]\n\tpackObjectsHook = ${hook}\n`);
    try {
      const stderr = await gitFails(["fetch", "origin", sha], { cwd: dir, env });
      expect(stderr).toMatch(/remote error: the mirror is behind the primary: it does not have [0-9a-f]{40} yet, and fetching it from the primary did not finish within 1 s/);
      expect(stderr).toContain("https://primary.test/scm/PROJ/app.git");
    } finally {
      fs.writeFileSync(config, original);
    }
    // The on-demand sync was not abandoned: once it lands, the same fetch works.
    await f.m.daemon.idle();
    await git(["fetch", "--quiet", "origin", sha], { cwd: dir, env });
  });

  test("the primary down: a missing want says so at once; what the mirror has is still served", async () => {
    const f = await startFreshMirror(primary, [ID], { freshness: "always", waitMs: 5000 });
    const env = f.gitEnv();
    const url = f.url(ID.project, ID.slug);
    const dir = await cloneOf(url, env);
    const sha = await push();
    await primary.stop();
    try {
      // Both protocols print git's ERR packet as "fatal: remote error: ...".
      for (const version of ["2", "0", "2"]) {
        const stderr = await gitFails(["-c", `protocol.version=${version}`, "fetch", "origin", sha], { cwd: dir, env });
        expect(stderr).toMatch(/fatal: remote error: the mirror is behind the primary: it does not have [0-9a-f]{40} yet, and (fetching it from the primary failed|the primary cannot be reached)/);
      }
      // Clones and fetches of what the mirror holds go on (the advertisement is the mirror's copy).
      const clone = await cloneOf(url, env);
      expect((await git(["rev-parse", "HEAD"], { cwd: clone, env })).trim()).toBe((await git(["rev-parse", "origin/main"], { cwd: dir, env })).trim());
    } finally {
      await primary.restart();
    }
  });
});

describe("advertisements are fresh (mirror.serve.freshness=always)", () => {
  test("clone + checkout of a just-pushed commit, v2 and v0; with freshness=never the same clone misses it", async () => {
    const f = await startFreshMirror(primary, [ID], { freshness: "always" });
    const env = f.gitEnv();
    for (const version of ["2", "0"]) {
      const sha = await push();
      const dir = path.join(tempDir("client"), "repo");
      await git(["-c", `protocol.version=${version}`, "clone", "--quiet", f.url(ID.project, ID.slug), dir], { env });
      await git(["checkout", "--quiet", sha], { cwd: dir, env });
      expect(`v${version}: ${(await git(["rev-parse", "HEAD"], { cwd: dir, env })).trim()}`).toBe(`v${version}: ${sha}`);
    }
    // The same race without the check: the clone gets the last sync's tip, and the checkout fails.
    const stale = await startFreshMirror(primary, [ID], { freshness: "never" });
    const sha = await push();
    const dir = path.join(tempDir("client"), "repo");
    await git(["clone", "--quiet", stale.url(ID.project, ID.slug), dir], { env: stale.gitEnv() });
    expect(await gitFails(["checkout", "--quiet", sha], { cwd: dir, env: stale.gitEnv() })).toMatch(/reference is not a tree|did not match|unable to read tree/);
  });

  // How many checks concurrent clients share depends on when each arrives (freshness.test.ts
  // holds NextFlight to "one running, one waiting"); here: every one of them gets the push.
  test("concurrent clones of a just-pushed commit all get it", async () => {
    const f = await startFreshMirror(primary, [ID], { freshness: "always" });
    const env = f.gitEnv();
    const sha = await push();
    const before = f.counts.refsBehind;
    const dirs = await Promise.all(Array.from({ length: 8 }, () => cloneOf(f.url(ID.project, ID.slug), env)));
    for (const dir of dirs) expect((await git(["rev-parse", "HEAD"], { cwd: dir, env })).trim()).toBe(sha);
    // At most one check per clone (v2: its ls-refs), and at least one.
    expect(f.counts.refsBehind - before).toBeGreaterThanOrEqual(1);
    expect(f.counts.refsBehind - before).toBeLessThanOrEqual(8);
    expect(f.routes.packCache).toBeDefined();
  });

  test("the pack cache never answers a new state from an old one", async () => {
    const f = await startFreshMirror(primary, [ID], { freshness: "always" });
    const env = f.gitEnv();
    const url = f.url(ID.project, ID.slug);
    const outcomes = async () => {
      const m = f.m.board.metrics.registry.getSingleMetric(PACK_CACHE_METRIC_NAMES.requests);
      const out: Record<string, number> = { hit: 0, shared: 0, miss: 0 };
      for (const v of (await m?.get())?.values ?? []) out[String(v.labels.outcome)] = v.value;
      return out;
    };
    for (const version of ["2", "0"]) {
      const first = await cloneOf(url, env, ["-c", `protocol.version=${version}`]);
      const tip = (await git(["rev-parse", "HEAD"], { cwd: first, env })).trim();
      // The same clone again: answered from the cache (advertisement and pack).
      const hitsBefore = (await outcomes()).hit;
      await cloneOf(url, env, ["-c", `protocol.version=${version}`]);
      expect((await outcomes()).hit).toBeGreaterThan(hitsBefore);
      // A push: the identical request now belongs to a new state and gets the new tip.
      const sha = await push();
      expect(sha).not.toBe(tip);
      const after = await cloneOf(url, env, ["-c", `protocol.version=${version}`]);
      expect(`v${version}: ${(await git(["rev-parse", "HEAD"], { cwd: after, env })).trim()}`).toBe(`v${version}: ${sha}`);
    }
  });
});
