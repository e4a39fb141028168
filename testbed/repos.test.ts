import * as fs from "node:fs";
import * as path from "node:path";
import { ensureLargeRepo, LARGE_REPO_INFO_FILE, largeRepoPath, LargeRepoParams, readLargeRepoInfo, sweepStaleBuilds } from "./largeRepo";
import {
  assertSameRefsAndObjects,
  benchGitConfigPath,
  deterministicFiles,
  diffRefs,
  git,
  headOf,
  initBare,
  isolatedGitEnv,
  listRefs,
  objectsOf,
  objectType,
  restoreOwner,
  workingClone,
} from "./repos";
import { tempDir } from "./resources";

// Real sshd and git on a shared 2-core machine: generous, and not relying on the project config
// (jest reads testTimeout from the global config only).
jest.setTimeout(120_000);

const isAncestor = (bare: string, a: string, b: string) =>
  git(["--git-dir", bare, "merge-base", "--is-ancestor", a, b]).then(
    () => true,
    () => false,
  );

describe("isolation", () => {
  test("no system or user config reaches bench git, only the bench's own settings", async () => {
    const out = await git(["config", "--list", "--show-origin"], { cwd: tempDir("iso") });
    const origins = new Set(out.trim().split("\n").map((l) => l.split("\t")[0]));
    expect([...origins]).toEqual([`file:${benchGitConfigPath()}`]);
    expect(out).toContain("safe.directory=*");
    expect(out).not.toContain("user.name");
    // Inherited GIT_* variables are dropped (a hook's GIT_DIR must not redirect bench git).
    process.env.GIT_DIR = "/nonexistent";
    try {
      expect(isolatedGitEnv().GIT_DIR).toBeUndefined();
    } finally {
      delete process.env.GIT_DIR;
    }
  });
});

describe("factory on bare paths", () => {
  test("commits, branches, lightweight and annotated tags land as expected", async () => {
    const bare = await initBare(path.join(tempDir("bare"), "r.git"));
    expect(await headOf(bare)).toBe("refs/heads/main");
    const w = await workingClone(bare);
    const c1 = await w.commit({ "a.txt": "one\n", "dir/b.txt": "two\n" });
    const c2 = await w.commit({ "a.txt": null, "dir/b.txt": "two, changed\n" }, { message: "second" });
    const feature = await w.branch("feature", c1);
    expect(feature).toBe(c1);
    const light = await w.tag("v1", { at: c1 });
    const annotated = await w.tag("v2", { message: "release 2" });
    expect(light).toBe(c1);
    await w.pushAll();

    expect(await listRefs(bare)).toEqual(
      new Map([
        ["refs/heads/feature", c1],
        ["refs/heads/main", c2],
        ["refs/tags/v1", c1],
        ["refs/tags/v2", annotated],
      ]),
    );
    expect(await objectType(bare, annotated)).toBe("tag");
    expect(await objectType(bare, "refs/tags/v1")).toBe("commit");
    expect((await git(["--git-dir", bare, "rev-parse", "refs/tags/v2^{commit}"])).trim()).toBe(c2);
    expect(await git(["--git-dir", bare, "show", `${c2}:dir/b.txt`])).toBe("two, changed\n");
    await expect(git(["--git-dir", bare, "show", `${c2}:a.txt`])).rejects.toThrow();
    expect((await git(["--git-dir", bare, "log", "-1", "--format=%an <%ae> %ct", c1])).trim()).toBe("Smart Mirror Bench <bench@smart-mirror.invalid> 1700000000");
  });

  test("force-push rewrites history; deletion removes branches and tags", async () => {
    const bare = await initBare(path.join(tempDir("bare"), "r.git"));
    const w = await workingClone(bare);
    await w.commit({ "a.txt": "1\n" });
    await w.commit({ "a.txt": "2\n" });
    await w.branch("topic");
    await w.tag("t-light");
    await w.tag("t-annotated", { message: "annotated" });
    await w.pushAll();
    const storedBefore = await objectsOf(bare, "stored");

    const { before, after } = await w.forcePushRewrite("main", { "a.txt": "2, rewritten\n" });
    const refs = await listRefs(bare);
    expect(refs.get("refs/heads/main")).toBe(after);
    expect(after).not.toBe(before);
    expect(await isAncestor(bare, before, after)).toBe(false);
    // The old tip is still stored, but no longer reachable from main (the tags keep it alive).
    expect(storedBefore.has(before)).toBe(true);
    expect((await objectsOf(bare, "stored")).has(before)).toBe(true);

    await w.deleteBranch("topic");
    await w.deleteTag("t-light");
    await w.deleteTag("t-annotated");
    expect([...(await listRefs(bare)).keys()]).toEqual(["refs/heads/main"]);
    // Now nothing reaches the old tip: it is stored but not reachable.
    expect((await objectsOf(bare, "reachable")).has(before)).toBe(false);
    expect((await objectsOf(bare, "stored")).has(before)).toBe(true);
  });

  test("reachable objects match cat-file's count on a fresh repository", async () => {
    const bare = await initBare(path.join(tempDir("bare"), "r.git"));
    const w = await workingClone(bare);
    await w.commit(deterministicFiles(1, { count: 5, dir: "d" }));
    await w.tag("t", { message: "tag" });
    await w.pushAll();
    const reachable = await objectsOf(bare);
    // 5 blobs + 2 trees (root, d) + 1 commit + 1 tag object
    expect(reachable.size).toBe(9);
    expect(await objectsOf(bare, "stored")).toEqual(reachable);
  });

  test("the same script makes the same object ids", async () => {
    const make = async () => {
      const w = await workingClone(await initBare(path.join(tempDir("det"), "r.git")));
      await w.commit(deterministicFiles(7, { count: 3, bytes: 500 }));
      await w.commit({ "x.txt": "x\n" });
      return w.revParse("HEAD");
    };
    const [a, b] = await Promise.all([make(), make()]);
    expect(a).toBe(b);
    expect(deterministicFiles(7, { count: 2 })).toEqual(deterministicFiles(7, { count: 2 }));
    expect(deterministicFiles(7, { count: 2 })).not.toEqual(deterministicFiles(8, { count: 2 }));
  });

  test("assertSameRefsAndObjects accepts a mirror and names what differs otherwise", async () => {
    const src = await initBare(path.join(tempDir("src"), "r.git"));
    const w = await workingClone(src);
    await w.commit({ "a.txt": "a\n" });
    await w.tag("v1", { message: "v1" });
    await w.pushAll();
    const mirror = path.join(tempDir("mirror"), "m.git");
    await git(["clone", "--quiet", "--mirror", src, mirror]);
    await assertSameRefsAndObjects(src, mirror);

    await w.commit({ "b.txt": "b\n" });
    await w.push(["main"]);
    await expect(assertSameRefsAndObjects(src, mirror)).rejects.toThrow(/refs\/heads\/main: \w+ in .*\n.*objects only in/);
    await git(["--git-dir", mirror, "fetch", "--quiet", "origin"]);
    await assertSameRefsAndObjects(src, mirror);

    await git(["--git-dir", mirror, "symbolic-ref", "HEAD", "refs/heads/other"]);
    await expect(assertSameRefsAndObjects(src, mirror)).rejects.toThrow(/HEAD: refs\/heads\/main in .*, refs\/heads\/other in/);
    await assertSameRefsAndObjects(src, mirror, { head: false });
  });

  test("diffRefs", () => {
    const a = new Map([
      ["refs/heads/a", "1"],
      ["refs/heads/b", "2"],
    ]);
    const b = new Map([
      ["refs/heads/b", "3"],
      ["refs/heads/c", "4"],
    ]);
    expect(diffRefs(a, b)).toEqual({ onlyInA: ["refs/heads/a"], onlyInB: ["refs/heads/c"], differing: ["refs/heads/b"] });
    expect(diffRefs(a, a)).toEqual({ onlyInA: [], onlyInB: [], differing: [] });
  });

  test("a direct push as root leaves the repository with its owner", async () => {
    if (process.getuid?.() !== 0) return; // only root can own files for someone else
    const bare = await initBare(path.join(tempDir("owned"), "r.git"));
    const nobody = 65534;
    fs.chownSync(bare, nobody, nobody);
    await restoreOwner(bare);
    const w = await workingClone(bare);
    await w.commit({ "a.txt": "a\n" });
    await w.push(["main"]);
    const wrong: string[] = [];
    const walk = (p: string) => {
      const st = fs.lstatSync(p);
      if (st.uid !== nobody) wrong.push(p);
      if (st.isDirectory()) for (const n of fs.readdirSync(p)) walk(path.join(p, n));
    };
    walk(bare);
    expect(wrong).toEqual([]);
  });

  test("file paths must stay inside the worktree", async () => {
    const w = await workingClone(await initBare(path.join(tempDir("bare"), "r.git")));
    await expect(w.commit({ "../escape.txt": "x" })).rejects.toThrow(/inside the worktree/);
    await expect(w.commit({ ".git/config": "x" })).rejects.toThrow(/inside the worktree/);
  });
});

describe("large repository generator", () => {
  // fanout 1: every file lives in pkg-00/mod-00, so each commit makes exactly 3 new trees.
  const params: Partial<LargeRepoParams> = {
    commits: 30,
    filesPerCommit: 3,
    files: 20,
    dirFanout: 1,
    meanFileBytes: 400,
    assetEvery: 5,
    branches: 2,
    commitsPerBranch: 4,
    tagEvery: 10,
    seed: 42,
    repack: true,
  };
  let cacheDir: string;
  const saved = process.env.SMART_MIRROR_CACHE_DIR;
  beforeAll(() => {
    cacheDir = tempDir("cache");
    process.env.SMART_MIRROR_CACHE_DIR = cacheDir;
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.SMART_MIRROR_CACHE_DIR;
    else process.env.SMART_MIRROR_CACHE_DIR = saved;
  });

  test("builds the expected objects, then reuses the cache", async () => {
    // A leftover of an interrupted build (its builder is dead) must be swept, never used.
    const stale = path.join(cacheDir, `.${path.basename(largeRepoPath(params, cacheDir))}.tmp-999999999-abc123`);
    fs.mkdirSync(stale, { recursive: true });

    const logs: string[] = [];
    const bare = await ensureLargeRepo(params, { log: (m) => logs.push(m) });
    expect(path.dirname(bare)).toBe(cacheDir);
    expect(bare).toBe(largeRepoPath(params));
    expect(logs.join("\n")).toMatch(/built/);
    expect(fs.existsSync(stale)).toBe(false);
    expect(fs.readdirSync(cacheDir)).toEqual([path.basename(bare)]);

    const commits = 30 + 2 * 4;
    const blobs = 20 + 29 * 3 + 2 * 4 * 3;
    const trees = 3 * commits;
    const annotated = 2; // tags at 10, 20, 30: v0.1.0 and v0.3.0 annotated, v0.2.0 lightweight
    const types = await git(["--git-dir", bare, "cat-file", "--batch-all-objects", "--batch-check=%(objecttype)"]);
    const count: Record<string, number> = {};
    for (const t of types.trim().split("\n")) count[t] = (count[t] ?? 0) + 1;
    expect(count).toEqual({ commit: commits, blob: blobs, tree: trees, tag: annotated });
    expect(readLargeRepoInfo(bare).stats).toMatchObject({ commits, blobs, trees, tags: annotated, objects: commits + blobs + trees + annotated });
    expect((await objectsOf(bare)).size).toBe(commits + blobs + trees + annotated);

    const refs = await listRefs(bare);
    expect([...refs.keys()].sort()).toEqual(["refs/heads/feature-1", "refs/heads/feature-2", "refs/heads/main", "refs/tags/v0.1.0", "refs/tags/v0.2.0", "refs/tags/v0.3.0"]);
    expect(await headOf(bare)).toBe("refs/heads/main");
    expect((await git(["--git-dir", bare, "rev-list", "--count", "main"])).trim()).toBe("30");
    expect((await git(["--git-dir", bare, "rev-list", "--count", "main..feature-1"])).trim()).toBe("4");
    await git(["--git-dir", bare, "fsck", "--no-progress", "--no-dangling"]);

    // Second call: same path, not rebuilt (same directory inode and info file).
    const before = { dir: fs.statSync(bare).ino, info: fs.statSync(path.join(bare, LARGE_REPO_INFO_FILE)).mtimeMs };
    logs.length = 0;
    const again = await ensureLargeRepo(params, { log: (m) => logs.push(m) });
    expect(again).toBe(bare);
    expect(logs).toEqual([]);
    expect({ dir: fs.statSync(again).ino, info: fs.statSync(path.join(again, LARGE_REPO_INFO_FILE)).mtimeMs }).toEqual(before);
  });

  test("deterministic: a rebuild elsewhere gives the same refs; other params another repo", async () => {
    const first = await ensureLargeRepo(params);
    const other = tempDir("cache2");
    const second = await ensureLargeRepo(params, { cacheDir: other, log: () => undefined });
    expect(second).not.toBe(first);
    expect(await listRefs(second)).toEqual(await listRefs(first));
    const changed = await ensureLargeRepo({ ...params, seed: 43 }, { cacheDir: other, log: () => undefined });
    expect(changed).not.toBe(second);
    expect((await listRefs(changed)).get("refs/heads/main")).not.toBe((await listRefs(second)).get("refs/heads/main"));
  });

  test("only dead builders' temporaries are swept", () => {
    const dir = tempDir("sweep");
    fs.mkdirSync(path.join(dir, `.large-repo-x.git.tmp-${process.pid}-live01`));
    fs.mkdirSync(path.join(dir, ".large-repo-x.git.tmp-999999999-dead01"));
    expect(sweepStaleBuilds(dir)).toEqual([".large-repo-x.git.tmp-999999999-dead01"]);
    expect(fs.readdirSync(dir)).toEqual([`.large-repo-x.git.tmp-${process.pid}-live01`]);
  });

  test("bad params are refused with the field name", async () => {
    await expect(ensureLargeRepo({ commits: 0 })).rejects.toThrow(/commits/);
    await expect(ensureLargeRepo({ files: 2, filesPerCommit: 3 })).rejects.toThrow(/filesPerCommit/);
  });
});
