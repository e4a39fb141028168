/**
 * The repository factory: makes and changes bare repositories through real git, and proves two
 * repositories hold the same refs and objects (what a mirror test asserts in the end).
 *
 *     const bare = await initBare(path);                   // or primary.createRepo("PRJ", "repo")
 *     const w = await workingClone(bare);                  // or workingClone(primary.remote("PRJ", "repo"))
 *     await w.commit({ "README.md": "hello\n" });
 *     await w.push(["main"]);
 *     await assertSameRefsAndObjects(bare, mirrorPath);
 *
 * The factory's everyday commands (init, clone, add, commit, tag, push, ...) go through
 * simple-git; `git()` and `gitLines()` stay for tests that read git's exit code and stderr as a
 * client would, and for the listings streamed line by line.
 *
 * Every git process runs with an isolated environment (isolatedGitEnv): no system config, the
 * bench's own global config (benchGitConfigPath), no $HOME, fixed author/committer, commit dates from a per-clone clock, so the host's
 * git setup cannot change a result and the same script makes the same object ids.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as readline from "node:readline";
import { simpleGit, SimpleGit } from "simple-git";
import { OWN_ENVIRONMENT } from "../sync/store/localGit";
import { tempDir } from "./resources";

/** Environment for a child process; undefined removes a variable. */
export type GitEnv = Record<string, string | undefined>;

/** Author and committer of everything the bench writes. */
export const BENCH_IDENTITY = { name: "Smart Mirror Bench", email: "bench@smart-mirror.invalid" } as const;

/** Commit dates start here (2023-11-14T22:13:20Z) and advance one minute per commit or tag. */
export const BENCH_EPOCH = 1_700_000_000;

/** Config every bench git process gets, as its global config. Why each one: */
const BENCH_GIT_CONFIG: ReadonlyArray<[string, string]> = [
  // Repositories served by the primary belong to its account; the bench runs as root.
  ["safe.directory", "*"],
  ["init.defaultBranch", "main"],
  // No background or automatic gc: object sets must only change when a test changes them,
  // and no detached gc may outlive a test.
  ["gc.auto", "0"],
  ["gc.autoDetach", "false"],
  ["maintenance.auto", "false"],
  ["receive.autogc", "false"],
  ["commit.gpgSign", "false"],
  ["tag.gpgSign", "false"],
  ["core.autocrlf", "false"],
  ["advice.detachedHead", "false"],
];

/** A $HOME that never exists: git finds no ~/.gitconfig, ~/.config/git/{ignore,attributes}. */
const NO_HOME = "/nonexistent/smart-mirror-bench-home";

let benchConfigFile: string | undefined;

/**
 * The file holding BENCH_GIT_CONFIG, used as GIT_CONFIG_GLOBAL. A file rather than
 * GIT_CONFIG_COUNT variables because git drops those for the upload-pack/receive-pack it runs
 * for a local path (its "local repo env"), and those need safe.directory and receive.autogc too.
 * Named by its content, outside the run root, so runs share it and never clean it up under
 * each other; written atomically.
 */
export function benchGitConfigPath(): string {
  const text = BENCH_GIT_CONFIG.map(([k, v]) => {
    const dot = k.lastIndexOf(".");
    return `[${k.slice(0, dot)}]\n\t${k.slice(dot + 1)} = ${v}\n`;
  }).join("");
  if (benchConfigFile && fs.existsSync(benchConfigFile)) return benchConfigFile;
  const file = path.join(os.tmpdir(), `smart-mirror-bench-${createHash("sha256").update(text).digest("hex").slice(0, 12)}.gitconfig`);
  if (!fs.existsSync(file)) {
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, text, { mode: 0o644 });
    fs.renameSync(tmp, file);
  }
  benchConfigFile = file;
  return file;
}

/**
 * The environment for a bench git process: the current environment minus anything that steers
 * git or ssh (GIT_*, SSH_AUTH_SOCK, ...), plus isolation, the bench identity and `extra`.
 */
export function isolatedGitEnv(extra: GitEnv = {}): GitEnv {
  const env: GitEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith("GIT_") || k === "SSH_AUTH_SOCK" || k === "SSH_ASKPASS" || k === "XDG_CONFIG_HOME") continue;
    env[k] = v;
  }
  Object.assign(env, {
    HOME: NO_HOME,
    XDG_CONFIG_HOME: `${NO_HOME}/.config`,
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_CONFIG_GLOBAL: benchGitConfigPath(),
    GIT_TERMINAL_PROMPT: "0",
    LC_ALL: "C",
    GIT_AUTHOR_NAME: BENCH_IDENTITY.name,
    GIT_AUTHOR_EMAIL: BENCH_IDENTITY.email,
    GIT_COMMITTER_NAME: BENCH_IDENTITY.name,
    GIT_COMMITTER_EMAIL: BENCH_IDENTITY.email,
  });
  return { ...env, ...extra };
}

export class GitError extends Error {
  constructor(
    readonly args: string[],
    readonly code: number | null,
    readonly stderr: string,
  ) {
    super(`git ${args.join(" ")} failed (exit ${code}): ${stderr.trim()}`);
    this.name = "GitError";
  }
}

export interface GitRunOptions {
  cwd?: string;
  /** Merged over isolatedGitEnv() (a primary's gitEnv() is already a complete env). */
  env?: GitEnv;
  /** Written to stdin, then stdin is closed. */
  input?: string;
}

function spawnGit(args: string[], opts: GitRunOptions) {
  return spawn("git", args, {
    cwd: opts.cwd,
    env: { ...isolatedGitEnv(), ...opts.env } as NodeJS.ProcessEnv,
    stdio: "pipe",
  });
}

/** simple-git in `dir`, with isolatedGitEnv() plus `env` (the testbed's own environment). */
function benchGit(dir?: string, env: GitEnv = {}): SimpleGit {
  const full: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...isolatedGitEnv(), ...env })) if (v !== undefined) full[k] = v;
  return simpleGit({ baseDir: dir, unsafe: OWN_ENVIRONMENT }).env(full);
}

/** Run git; resolves with stdout (for small outputs; use gitLines to stream big ones). */
export function git(args: string[], opts: GitRunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawnGit(args, opts);
    const out: Buffer[] = [];
    let err = "";
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => (err = (err + b.toString()).slice(-8192)));
    child.stdin.on("error", () => undefined); // EPIPE when git exits before reading: its exit code tells
    child.stdin.end(opts.input ?? "");
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(Buffer.concat(out).toString()) : reject(new GitError(args, code, err))));
  });
}

/** Run git and hand each stdout line to onLine as it arrives (nothing is buffered whole). */
export function gitLines(args: string[], onLine: (line: string) => void, opts: GitRunOptions = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawnGit(args, opts);
    let err = "";
    child.stderr.on("data", (b: Buffer) => (err = (err + b.toString()).slice(-8192)));
    child.stdin.on("error", () => undefined); // EPIPE when git exits before reading: its exit code tells
    child.stdin.end(opts.input ?? "");
    const lines = readline.createInterface({ input: child.stdout, crlfDelay: Infinity });
    lines.on("line", onLine);
    const closed = new Promise<void>((r) => lines.once("close", () => r()));
    child.on("error", reject);
    child.on("close", (code) => {
      void closed.then(() => (code === 0 ? resolve() : reject(new GitError(args, code, err))));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Where a repository is: a bare path on this machine, or a URL with the env to reach it.

/** A repository reached through a URL; env carries what the transport needs (GIT_SSH_COMMAND). */
export interface Remote {
  url: string;
  env?: GitEnv;
}

/** A bare repository path, or a Remote (e.g. `primary.remote("PRJ", "repo")`). */
export type RepoLocation = string | Remote;

function asRemote(loc: RepoLocation): Remote {
  return typeof loc === "string" ? { url: loc } : loc;
}

/** The local directory a location writes to, if it is one (plain path or file:// URL). */
function localPath(loc: RepoLocation): string | undefined {
  const url = asRemote(loc).url;
  if (url.startsWith("file://")) return new URL(url).pathname;
  return path.isAbsolute(url) ? url : undefined;
}

// ---------------------------------------------------------------------------------------------
// Ownership: a primary's repositories belong to its account, the bench runs as root.

/** lchown every entry under dir (and dir) whose owner differs from uid:gid. */
export async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  const fix = async (p: string): Promise<void> => {
    try {
      const st = await fs.promises.lstat(p);
      if (st.uid !== uid || st.gid !== gid) await fs.promises.lchown(p, uid, gid);
      if (st.isDirectory()) {
        for (const name of await fs.promises.readdir(p)) await fix(path.join(p, name));
      }
    } catch (e) {
      // git may remove its temporary files while we walk (a concurrent push): gone is fine.
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
  };
  await fix(dir);
}

/**
 * After root wrote into a bare repository directly (push to its path, update-ref), give the new
 * files back to the repository's owner, or that owner (the primary's SSH account) could no
 * longer write objects/xx/ directories root created.
 */
export async function restoreOwner(bare: string): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const st = await fs.promises.stat(bare);
  if (st.uid === 0 && st.gid === 0) return;
  await chownTree(bare, st.uid, st.gid);
}

// ---------------------------------------------------------------------------------------------
// Bare repositories.

/** `git init --bare` at dir (created if missing), HEAD on initialBranch. Returns dir. */
export async function initBare(dir: string, opts: { initialBranch?: string } = {}): Promise<string> {
  await fs.promises.mkdir(dir, { recursive: true });
  await benchGit(dir).init(true, ["--quiet", `--initial-branch=${opts.initialBranch ?? "main"}`]);
  return dir;
}

/** Every ref (for-each-ref: refs/heads, refs/tags, ...; not HEAD) -> the object it names
 * (for annotated tags, the tag object, not the peeled commit). */
export async function listRefs(bare: string): Promise<Map<string, string>> {
  const refs = new Map<string, string>();
  await gitLines(["--git-dir", bare, "for-each-ref", "--format=%(objectname) %(refname)"], (line) => {
    const sp = line.indexOf(" ");
    if (sp > 0) refs.set(line.slice(sp + 1), line.slice(0, sp));
  });
  return refs;
}

/** What HEAD points at (`refs/heads/main`), or null when HEAD is detached. */
export async function headOf(bare: string): Promise<string | null> {
  try {
    return (await git(["--git-dir", bare, "symbolic-ref", "--quiet", "HEAD"])).trim();
  } catch (e) {
    if (e instanceof GitError && e.code === 1) return null;
    throw e;
  }
}

/**
 * The object ids of a repository. "reachable" (default): what HEAD and the refs reach
 * (rev-list --all --objects), i.e. what a clone or a mirror must hold. "stored": every object
 * on disk, reachable or not (cat-file --batch-all-objects), e.g. to see a rewritten commit linger.
 */
export async function objectsOf(bare: string, which: "reachable" | "stored" = "reachable"): Promise<Set<string>> {
  const ids = new Set<string>();
  const args =
    which === "reachable"
      ? ["--git-dir", bare, "rev-list", "--all", "--objects"]
      : ["--git-dir", bare, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)", "--unordered"];
  await gitLines(args, (line) => {
    const sp = line.indexOf(" ");
    ids.add(sp < 0 ? line : line.slice(0, sp));
  });
  return ids;
}

/** Object type of a revision or id: "commit", "tag", "tree", "blob". */
export async function objectType(bare: string, rev: string): Promise<string> {
  return (await git(["--git-dir", bare, "cat-file", "-t", rev])).trim();
}

/** Set or move a ref directly in a bare repository. */
export async function updateRef(bare: string, ref: string, id: string): Promise<void> {
  await git(["--git-dir", bare, "update-ref", ref, id]);
  await restoreOwner(bare);
}

/** Delete a ref directly in a bare repository. */
export async function deleteRef(bare: string, ref: string): Promise<void> {
  await git(["--git-dir", bare, "update-ref", "-d", ref]);
  await restoreOwner(bare);
}

export interface RefDiff {
  onlyInA: string[];
  onlyInB: string[];
  /** Refs in both that name different objects. */
  differing: string[];
}

/** Compare two ref maps (pure). */
export function diffRefs(a: Map<string, string>, b: Map<string, string>): RefDiff {
  const onlyInA = [...a.keys()].filter((r) => !b.has(r)).sort();
  const onlyInB = [...b.keys()].filter((r) => !a.has(r)).sort();
  const differing = [...a.keys()].filter((r) => b.has(r) && b.get(r) !== a.get(r)).sort();
  return { onlyInA, onlyInB, differing };
}

export interface SameRepoOptions {
  /** Also require HEAD to name the same branch (default true: a clone checks HEAD out). */
  head?: boolean;
  /** Which objects must match (default "reachable"; see objectsOf). */
  objects?: "reachable" | "stored";
}

/**
 * Throw unless repositories a and b (bare paths) have exactly the same refs pointing at the
 * same objects, the same HEAD, and the same set of objects. The message lists what differs.
 */
export async function assertSameRefsAndObjects(a: string, b: string, opts: SameRepoOptions = {}): Promise<void> {
  const which = opts.objects ?? "reachable";
  const [refsA, refsB, objA, objB, headA, headB] = await Promise.all([
    listRefs(a),
    listRefs(b),
    objectsOf(a, which),
    objectsOf(b, which),
    opts.head === false ? null : headOf(a),
    opts.head === false ? null : headOf(b),
  ]);
  const problems: string[] = [];
  const d = diffRefs(refsA, refsB);
  const few = (xs: string[]) => xs.slice(0, 10).join(", ") + (xs.length > 10 ? `, ... (${xs.length})` : "");
  if (d.onlyInA.length) problems.push(`refs only in ${a}: ${few(d.onlyInA)}`);
  if (d.onlyInB.length) problems.push(`refs only in ${b}: ${few(d.onlyInB)}`);
  for (const r of d.differing.slice(0, 10)) problems.push(`${r}: ${refsA.get(r)} in ${a}, ${refsB.get(r)} in ${b}`);
  if (headA !== headB) problems.push(`HEAD: ${headA} in ${a}, ${headB} in ${b}`);
  const missingInB = [...objA].filter((o) => !objB.has(o));
  const missingInA = [...objB].filter((o) => !objA.has(o));
  if (missingInB.length) problems.push(`${missingInB.length} ${which} objects only in ${a}, e.g. ${few(missingInB)}`);
  if (missingInA.length) problems.push(`${missingInA.length} ${which} objects only in ${b}, e.g. ${few(missingInA)}`);
  if (problems.length) throw new Error(`repositories differ:\n  ${problems.join("\n  ")}`);
}

// ---------------------------------------------------------------------------------------------
// Deterministic content.

/** A small seeded PRNG (mulberry32): same seed, same sequence, on every machine. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = "mirror fetch pack ref tree blob commit tag branch remote origin sync delta index object stream socket region primary replica cache shard queue retry timeout".split(" ");

/** Text of about `bytes` bytes made of lines of words, a pure function of (seed, bytes). */
export function deterministicText(seed: number, bytes: number): string {
  const rnd = seededRandom(seed);
  let out = "";
  while (out.length < bytes) {
    const n = 3 + Math.floor(rnd() * 8);
    const words: string[] = [];
    for (let i = 0; i < n; i++) words.push(WORDS[Math.floor(rnd() * WORDS.length)]);
    out += words.join(" ") + "\n";
  }
  return out;
}

/** `count` files under `dir` with deterministic text content: a pure function of its arguments,
 * ready for WorkingClone.commit. */
export function deterministicFiles(seed: number, opts: { count: number; bytes?: number; dir?: string }): Record<string, string> {
  const files: Record<string, string> = {};
  for (let i = 0; i < opts.count; i++) {
    files[path.posix.join(opts.dir ?? "", `file-${String(i).padStart(4, "0")}.txt`)] = deterministicText(seed * 100_003 + i, opts.bytes ?? 256);
  }
  return files;
}

// ---------------------------------------------------------------------------------------------
// Working clones: where commits, branches and tags are made before being pushed.

/** Files to write (string/Buffer) or delete (null), by path relative to the worktree. */
export type FileChanges = Record<string, string | Buffer | null>;

export interface CommitOptions {
  message?: string;
  /** Commit even when nothing changed. */
  allowEmpty?: boolean;
}

export interface PushOptions {
  /** Force every refspec (a leading "+" on one refspec forces just that one). */
  force?: boolean;
  /** Push somewhere else than the clone's origin. */
  to?: RepoLocation;
}

export interface WorkingCloneOptions {
  /** Where to clone (default: a fresh bench temp dir). */
  dir?: string;
  /** First commit/tag date in seconds since the epoch (default BENCH_EPOCH). */
  epoch?: number;
}

/** Clone `from` (bare path or Remote; may be empty) into a working tree. */
export async function workingClone(from: RepoLocation, opts: WorkingCloneOptions = {}): Promise<WorkingClone> {
  const origin = asRemote(from);
  const dir = opts.dir ?? path.join(tempDir("work"), "repo");
  await benchGit(undefined, origin.env).clone(origin.url, dir, ["--quiet"]);
  return new WorkingClone(dir, from, opts.epoch ?? BENCH_EPOCH);
}

function checkRelative(p: string): string {
  const norm = path.posix.normalize(p);
  if (path.posix.isAbsolute(norm) || norm === ".." || norm.startsWith("../") || norm === ".git" || norm.startsWith(".git/")) {
    throw new Error(`file path must stay inside the worktree: ${p}`);
  }
  return norm;
}

export class WorkingClone {
  private clock: number;

  constructor(
    /** The worktree. */
    readonly dir: string,
    /** Where it was cloned from: the default target of push and delete. */
    readonly origin: RepoLocation,
    epoch: number,
  ) {
    this.clock = epoch;
  }

  /** Run git in the worktree, with the origin's env (so SSH remotes work). */
  git(args: string[], env: GitEnv = {}): Promise<string> {
    return git(args, { cwd: this.dir, env: { ...asRemote(this.origin).env, ...env } });
  }

  /** simple-git in the worktree, with the origin's env (so SSH remotes work) and `env`. */
  private sg(env: GitEnv = {}): SimpleGit {
    return benchGit(this.dir, { ...asRemote(this.origin).env, ...env });
  }

  /** Dates for the next commit or tag: the clone's clock, one minute per step. */
  private nextDates(): GitEnv {
    const date = `@${this.clock} +0000`;
    this.clock += 60;
    return { GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date };
  }

  /** The object id a revision names. */
  async revParse(rev: string): Promise<string> {
    return this.sg().revparse(["--verify", "--quiet", `${rev}^{}`]);
  }

  /** Write/delete files and commit them on the current branch; returns the commit id. */
  async commit(files: FileChanges, opts: CommitOptions = {}): Promise<string> {
    const paths: string[] = [];
    for (const [p, content] of Object.entries(files)) {
      const rel = checkRelative(p);
      const abs = path.join(this.dir, rel);
      if (content === null) {
        await fs.promises.rm(abs, { force: true });
      } else {
        await fs.promises.mkdir(path.dirname(abs), { recursive: true });
        await fs.promises.writeFile(abs, content);
      }
      paths.push(rel);
    }
    if (paths.length) await this.sg().add(["--all", "--", ...paths]);
    const message = opts.message ?? `Change ${paths.slice(0, 3).join(", ") || "(empty)"}`;
    await this.sg(this.nextDates()).commit(message, [], { "--quiet": null, "--no-verify": null, ...(opts.allowEmpty ? { "--allow-empty": null } : {}) });
    return this.revParse("HEAD");
  }

  /** Create local branch `name` at `from` (default HEAD) without switching to it. */
  async branch(name: string, from = "HEAD"): Promise<string> {
    await this.git(["branch", "--no-track", name, from]);
    return this.revParse(`refs/heads/${name}`);
  }

  /** Switch to a local branch; with create, make it at HEAD first. */
  async checkout(name: string, opts: { create?: boolean } = {}): Promise<void> {
    await this.sg().checkout(["--quiet", ...(opts.create ? ["-b"] : []), name]);
  }

  /**
   * Tag `at` (default HEAD): lightweight without a message, annotated with one. Returns what
   * refs/tags/name names: the commit (lightweight) or the tag object (annotated).
   */
  async tag(name: string, opts: { at?: string; message?: string } = {}): Promise<string> {
    const at = opts.at ?? "HEAD";
    if (opts.message === undefined) await this.sg().tag([name, at]);
    else await this.sg(this.nextDates()).tag(["--annotate", "-m", opts.message, name, at]);
    return this.sg().revparse([`refs/tags/${name}`]);
  }

  /** Push refspecs (e.g. "main", "refs/tags/v1", "+main", ":refs/heads/old") to origin or opts.to. */
  async push(refspecs: string[], opts: PushOptions = {}): Promise<void> {
    const target = opts.to ?? this.origin;
    const remote = asRemote(target);
    await benchGit(this.dir, remote.env).push(["--quiet", ...(opts.force ? ["--force"] : []), remote.url, ...refspecs]);
    const local = localPath(target);
    if (local) await restoreOwner(local);
  }

  /** Push every local branch and tag. */
  async pushAll(opts: PushOptions = {}): Promise<void> {
    await this.push(["refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*"], opts);
  }

  /**
   * Rewrite history on `branch`: drop its last commit, commit `files` instead, force-push.
   * Returns the branch tip before and after; `before` is no longer reachable from the branch.
   */
  async forcePushRewrite(branch: string, files: FileChanges = {}, opts: PushOptions = {}): Promise<{ before: string; after: string }> {
    await this.checkout(branch);
    const before = await this.revParse("HEAD");
    await this.sg().reset(["--quiet", "--hard", "HEAD~1"]);
    const content = Object.keys(files).length ? files : { [`rewritten-${this.clock}.txt`]: `rewritten at ${this.clock}\n` };
    const after = await this.commit(content, { message: `Rewrite ${branch}` });
    await this.push([`refs/heads/${branch}:refs/heads/${branch}`], { ...opts, force: true });
    return { before, after };
  }

  /** Delete a branch on the remote (and locally, if it exists and is not checked out). */
  async deleteBranch(name: string, opts: PushOptions = {}): Promise<void> {
    await this.push([`:refs/heads/${name}`], opts);
    await this.sg().deleteLocalBranch(name, true).catch(() => undefined);
  }

  /** Delete a tag on the remote and locally. */
  async deleteTag(name: string, opts: PushOptions = {}): Promise<void> {
    await this.push([`:refs/tags/${name}`], opts);
    await this.sg().tag(["-d", name]).catch(() => undefined);
  }
}

/**
 * The sample "app" history the serving tests clone: an annotated and a lightweight tag, a side
 * branch, and `branches` feature branches (40 make a v0 clone's want list big enough for git to
 * gzip it: remote-curl compresses over 1 KB), all pushed.
 */
export async function pushSampleHistory(app: WorkingClone, branches: number): Promise<void> {
  await app.commit({ "README.md": "# app\n", "src/main.txt": "main\n", "docs/big.txt": "x".repeat(50_000) });
  await app.tag("v1.0", { message: "release 1.0" });
  await app.commit({ "src/main.txt": "main, second\n" });
  await app.tag("light");
  for (let i = 0; i < branches; i++) await app.branch(`feature/${String(i).padStart(2, "0")}`);
  await app.checkout("side", { create: true });
  await app.commit({ "side.txt": "side\n" });
  await app.checkout("main");
  await app.pushAll();
}
