/**
 * A large, realistic, deterministic repository for benchmarks, made once with `git fast-import`
 * and cached on disk:
 *
 *     const bare = await ensureLargeRepo();                        // benchmark size (default params)
 *     const small = await ensureLargeRepo({ commits: 40, files: 30, filesPerCommit: 3 });
 *
 * What it holds: `files` text files of realistic sizes (a few hundred bytes to tens of KB, some
 * incompressible base64 "assets") in a two-level directory tree; `commits` commits on main, each
 * editing `filesPerCommit` files a few lines at a time (so packs delta like real history), now and
 * then appending; `branches` side branches of `commitsPerBranch` commits forked along main;
 * a tag every `tagEvery` main commits, alternating lightweight and annotated.
 *
 * Deterministic: the same params give the same object ids on every machine (seeded PRNG, fixed
 * dates). Every generated blob, tree and commit is distinct by construction (each file version
 * carries its path and a global revision number), so the object count is known in advance:
 * LargeRepoStats, which the build checks against git and stores next to the repository.
 *
 * Cache: `<cache>/large-repo-<hash of params + generator version>.git`, where <cache> is
 * $SMART_MIRROR_CACHE_DIR or the package's `.cache/` (gitignored). A build happens in a
 * temporary sibling and is renamed into place only when complete and verified, so an interrupted
 * build is never used; temporaries of dead builders are swept on the next call.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { BENCH_EPOCH, BENCH_IDENTITY, git, isolatedGitEnv, seededRandom } from "./repos";
import { isProcessAlive as alive } from "../sync/daemon/lock";

/** Bump when the generated content changes: it is part of the cache key. */
export const LARGE_REPO_GENERATOR_VERSION = 1;

export interface LargeRepoParams {
  /** Commits on main, the first one adding every file. */
  commits: number;
  /** Files each later commit changes (distinct files). */
  filesPerCommit: number;
  /** Files in the tree. */
  files: number;
  /** Directory fan-out: files live in `pkg-XX/mod-YY/`, dirFanout x dirFanout directories. */
  dirFanout: number;
  /** Mean text file size in bytes (sizes are spread log-normally around it). */
  meanFileBytes: number;
  /** One file in this many is an incompressible base64 asset (0: none). */
  assetEvery: number;
  /** Side branches, forked at evenly spaced main commits. */
  branches: number;
  commitsPerBranch: number;
  /** Tag main every this many commits (0: no tags); odd tags are annotated. */
  tagEvery: number;
  seed: number;
  /** Repack with fresh deltas after the import (what a served repository looks like). */
  repack: boolean;
}

/** Benchmark size: ~10k commits, ~150k objects. Tests should pass small params. */
export const DEFAULT_LARGE_REPO_PARAMS: LargeRepoParams = {
  commits: 10_000,
  filesPerCommit: 5,
  files: 4_000,
  dirFanout: 12,
  meanFileBytes: 3_000,
  assetEvery: 50,
  branches: 8,
  commitsPerBranch: 40,
  tagEvery: 250,
  seed: 1,
  repack: true,
};

export interface LargeRepoStats {
  commits: number;
  trees: number;
  blobs: number;
  /** Annotated tags (tag objects). */
  tags: number;
  objects: number;
  /** Branches (refs/heads) and tags (refs/tags). */
  branchRefs: number;
  tagRefs: number;
  /** Bytes of blob content generated. */
  blobBytes: number;
}

export interface LargeRepoInfo {
  generatorVersion: number;
  params: LargeRepoParams;
  stats: LargeRepoStats;
}

/** Written inside the bare repository; a repository without it is not a finished build. */
export const LARGE_REPO_INFO_FILE = "smart-mirror-large-repo.json";

export function normalizeParams(p: Partial<LargeRepoParams> = {}): LargeRepoParams {
  const params = { ...DEFAULT_LARGE_REPO_PARAMS, ...p };
  const ints: (keyof LargeRepoParams)[] = ["commits", "filesPerCommit", "files", "dirFanout", "meanFileBytes", "assetEvery", "branches", "commitsPerBranch", "tagEvery", "seed"];
  for (const k of ints) {
    const v = params[k];
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0) throw new Error(`largeRepo: ${k} must be a non-negative integer (got ${String(v)})`);
  }
  if (params.commits < 1 || params.files < 1 || params.dirFanout < 1) throw new Error("largeRepo: commits, files and dirFanout must be at least 1");
  if (params.filesPerCommit < 1 || params.filesPerCommit > params.files) throw new Error(`largeRepo: filesPerCommit must be between 1 and files (${params.files})`);
  if (params.dirFanout > 99) throw new Error("largeRepo: dirFanout must be at most 99");
  return params;
}

/** The cache key: params in a fixed order plus the generator version. */
export function largeRepoKey(p: LargeRepoParams): string {
  const ordered = Object.fromEntries(Object.keys(DEFAULT_LARGE_REPO_PARAMS).map((k) => [k, p[k as keyof LargeRepoParams]]));
  return createHash("sha256").update(JSON.stringify({ v: LARGE_REPO_GENERATOR_VERSION, ...ordered })).digest("hex").slice(0, 16);
}

/** $SMART_MIRROR_CACHE_DIR, else the package's .cache/ (testbed/../.cache). */
export function largeRepoCacheDir(): string {
  return process.env.SMART_MIRROR_CACHE_DIR ?? path.resolve(__dirname, "..", ".cache");
}

export function largeRepoPath(p: Partial<LargeRepoParams> = {}, cacheDir = largeRepoCacheDir()): string {
  return path.join(cacheDir, `large-repo-${largeRepoKey(normalizeParams(p))}.git`);
}

export function readLargeRepoInfo(bare: string): LargeRepoInfo {
  return JSON.parse(fs.readFileSync(path.join(bare, LARGE_REPO_INFO_FILE), "utf8")) as LargeRepoInfo;
}

// ---------------------------------------------------------------------------------------------
// The model: files as arrays of rendered lines, edited a few lines per commit.

/** 32-bit mix of several integers (murmur3 finalizer), for per-(file, line, revision) seeds. */
function mix(...xs: number[]): number {
  let h = 0x9e3779b9;
  for (const x of xs) {
    h = Math.imul(h ^ (x >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

const VOCAB = (
  "const let return if else for while await async function class interface export import from type " +
  "mirror fetch pack ref tree blob commit tag branch remote origin sync delta index object stream " +
  "socket region primary replica cache shard queue retry timeout config status metric handler request " +
  "response error value result options state count offset length buffer chunk path name id key"
).split(" ");
const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

function codeLine(seed: number): string {
  const rnd = seededRandom(seed);
  const indent = "  ".repeat(Math.floor(rnd() * 4));
  const n = 2 + Math.floor(rnd() * 9);
  let s = indent;
  for (let i = 0; i < n; i++) s += (i ? " " : "") + VOCAB[Math.floor(rnd() * VOCAB.length)];
  return s + (rnd() < 0.5 ? ";" : rnd() < 0.5 ? " {" : "");
}

function assetLine(seed: number): string {
  const rnd = seededRandom(seed);
  let s = "";
  for (let i = 0; i < 76; i++) s += B64[Math.floor(rnd() * 64)];
  return s;
}

interface FileModel {
  path: string;
  dir: string;
  asset: boolean;
  /** Body lines after the two header lines. */
  lines: string[];
  /** Global revision that last wrote the file: the second header line, unique per version. */
  revision: number;
}

function render(f: FileModel): string {
  return `# ${f.path}\n# revision ${f.revision}\n${f.lines.join("\n")}\n`;
}

function buildFiles(p: LargeRepoParams, rnd: () => number): FileModel[] {
  const files: FileModel[] = [];
  const dirs = p.dirFanout * p.dirFanout;
  for (let i = 0; i < p.files; i++) {
    const d = i % dirs;
    const dir = `pkg-${String(Math.floor(d / p.dirFanout)).padStart(2, "0")}/mod-${String(d % p.dirFanout).padStart(2, "0")}`;
    const asset = p.assetEvery > 0 && i % p.assetEvery === p.assetEvery - 1;
    const name = asset ? `asset-${String(i).padStart(5, "0")}.b64` : `file-${String(i).padStart(5, "0")}.ts`;
    // Log-normal sizes: most files near the mean, a long tail of big ones.
    const gauss = Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
    const bytes = Math.min(256 * 1024, Math.max(120, Math.round(p.meanFileBytes * Math.exp(0.9 * gauss - 0.405))));
    const lineLen = asset ? 77 : 40;
    const lines: string[] = [];
    for (let j = 0, n = Math.max(1, Math.round(bytes / lineLen)); j < n; j++) lines.push((asset ? assetLine : codeLine)(mix(p.seed, i, j, 0)));
    files.push({ path: `${dir}/${name}`, dir, asset, lines, revision: 0 });
  }
  return files;
}

/** Edit a file for revision `rev`: change a few lines, sometimes append some. */
function edit(f: FileModel, rev: number, rnd: () => number, seed: number): FileModel {
  const lines = f.lines.slice();
  const line = f.asset ? assetLine : codeLine;
  const changes = 1 + Math.floor(rnd() * 3);
  for (let c = 0; c < changes; c++) {
    const j = Math.floor(rnd() * lines.length);
    lines[j] = line(mix(seed, rev, j, c + 1));
  }
  if (rnd() < 0.15) for (let c = 0, n = 1 + Math.floor(rnd() * 8); c < n; c++) lines.push(line(mix(seed, rev, lines.length, 99)));
  return { ...f, lines, revision: rev };
}

/** `k` distinct indexes below n. */
function pick(n: number, k: number, rnd: () => number): number[] {
  const chosen = new Set<number>();
  while (chosen.size < k) chosen.add(Math.floor(rnd() * n));
  return [...chosen].sort((a, b) => a - b);
}

/** Directories whose tree changes when these files change: each file's dir and its parents. */
function touchedDirs(paths: string[]): Set<string> {
  const dirs = new Set<string>();
  for (const p of paths) for (let d = path.posix.dirname(p); d !== "."; d = path.posix.dirname(d)) dirs.add(d);
  return dirs;
}

// ---------------------------------------------------------------------------------------------
// The fast-import stream.

/** Buffers small writes into large chunks and respects backpressure; fails fast once the
 * reader is gone (fast-import died) instead of generating the rest into the void. */
class StreamWriter {
  private parts: string[] = [];
  private size = 0;
  private failure: Error | undefined;
  constructor(private readonly out: NodeJS.WritableStream) {
    out.on("error", (e: Error) => (this.failure ??= e));
    out.on("close", () => (this.failure ??= new Error("output closed early")));
  }
  async write(s: string): Promise<void> {
    this.parts.push(s);
    this.size += s.length;
    if (this.size >= 1 << 20) await this.flush();
  }
  async flush(): Promise<void> {
    if (this.failure) throw this.failure;
    if (!this.parts.length) return;
    const chunk = this.parts.join("");
    this.parts = [];
    this.size = 0;
    if (this.out.write(chunk)) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.out.off("drain", done);
        this.out.off("close", done);
        resolve();
      };
      this.out.on("drain", done);
      this.out.on("close", done);
    });
    if (this.failure) throw this.failure;
  }
}

const data = (s: string) => `data ${Buffer.byteLength(s)}\n${s}\n`;

/**
 * Emit the whole history to `out` as a fast-import stream (ending with "done"); returns the
 * object counts it implies. Pure apart from writing: same params, same bytes.
 */
export async function writeFastImportStream(p: LargeRepoParams, out: NodeJS.WritableStream): Promise<LargeRepoStats> {
  const w = new StreamWriter(out);
  const rnd = seededRandom(p.seed);
  const files = buildFiles(p, rnd);
  const stats: LargeRepoStats = { commits: 0, trees: 0, blobs: 0, tags: 0, objects: 0, branchRefs: 1, tagRefs: 0, blobBytes: 0 };
  let revision = 0;
  let mark = 0;
  const when = (rev: number) => `${BENCH_EPOCH + rev * 60} +0000`;
  const who = `${BENCH_IDENTITY.name} <${BENCH_IDENTITY.email}>`;

  const commit = async (ref: string, from: number | null, changed: FileModel[], message: string): Promise<number> => {
    const m = ++mark;
    let s = `commit ${ref}\nmark :${m}\nauthor ${who} ${when(revision)}\ncommitter ${who} ${when(revision)}\n${data(message)}`;
    if (from !== null) s += `from :${from}\n`;
    await w.write(s);
    for (const f of changed) {
      const content = render(f);
      stats.blobs++;
      stats.blobBytes += content.length;
      await w.write(`M 100644 inline ${f.path}\n${data(content)}`);
    }
    await w.write("\n");
    stats.commits++;
    stats.trees += 1 + touchedDirs(changed.map((f) => f.path)).size;
    return m;
  };

  // Where side branches fork: evenly along main (never before the first commit).
  const forkAt = new Map<number, number[]>();
  for (let b = 0; b < p.branches; b++) {
    const at = Math.max(1, Math.round(((b + 1) * p.commits) / (p.branches + 1)));
    forkAt.set(at, [...(forkAt.get(at) ?? []), b]);
  }

  revision++;
  for (const f of files) f.revision = revision;
  let tip = await commit("refs/heads/main", null, files, "Initial import\n");
  for (let i = 1; i <= p.commits; i++) {
    if (i > 1) {
      revision++;
      const changed = pick(files.length, p.filesPerCommit, rnd).map((j) => (files[j] = edit(files[j], revision, rnd, p.seed)));
      tip = await commit("refs/heads/main", tip, changed, `Change ${i}: update ${changed[0].path}\n\nTouches ${changed.length} files.\n`);
    }
    if (p.tagEvery > 0 && i % p.tagEvery === 0) {
      const n = i / p.tagEvery;
      const name = `v${Math.floor(n / 10)}.${n % 10}.0`;
      stats.tagRefs++;
      if (n % 2 === 1) {
        stats.tags++;
        await w.write(`tag ${name}\nfrom :${tip}\ntagger ${who} ${when(revision)}\n${data(`Release ${name}\n`)}`);
      } else {
        await w.write(`reset refs/tags/${name}\nfrom :${tip}\n\n`);
      }
    }
    for (const b of forkAt.get(i) ?? []) {
      // The branch edits copies; main's model is untouched.
      const side = new Map<number, FileModel>();
      let btip = tip;
      for (let c = 1; c <= p.commitsPerBranch; c++) {
        revision++;
        const changed = pick(files.length, p.filesPerCommit, rnd).map((j) => {
          const f = edit(side.get(j) ?? files[j], revision, rnd, p.seed);
          side.set(j, f);
          return f;
        });
        btip = await commit(`refs/heads/feature-${b + 1}`, btip, changed, `Feature ${b + 1}, step ${c}\n`);
      }
      if (p.commitsPerBranch === 0) await w.write(`reset refs/heads/feature-${b + 1}\nfrom :${tip}\n\n`);
      stats.branchRefs++;
    }
  }
  await w.write("done\n");
  await w.flush();
  stats.objects = stats.commits + stats.trees + stats.blobs + stats.tags;
  return stats;
}

// ---------------------------------------------------------------------------------------------
// Building and caching.

async function fastImport(bare: string, p: LargeRepoParams): Promise<LargeRepoStats> {
  const child = spawn("git", ["--git-dir", bare, "fast-import", "--quiet", "--done"], { env: isolatedGitEnv() as NodeJS.ProcessEnv, stdio: ["pipe", "ignore", "pipe"] });
  let err = "";
  child.stderr.on("data", (b: Buffer) => (err = (err + b.toString()).slice(-8192)));
  // EPIPE if fast-import dies mid-stream: the write rejects and its exit code and stderr tell why.
  child.stdin.on("error", () => undefined);
  const exited = new Promise<number | null>((resolve) => {
    child.on("error", (e) => ((err += String(e)), resolve(-1)));
    child.on("close", resolve);
  });
  let stats: LargeRepoStats | undefined;
  let writeError: unknown;
  try {
    stats = await writeFastImportStream(p, child.stdin);
  } catch (e) {
    writeError = e;
  } finally {
    child.stdin.end();
  }
  const code = await exited;
  // Thanks to --done, a truncated stream is an error too, never a short repository.
  if (code !== 0 || !stats) throw new Error(`git fast-import failed (exit ${code}): ${err.trim() || String(writeError)}`);
  return stats;
}

/** Objects on disk, loose and packed. */
async function countObjects(bare: string): Promise<number> {
  const out = await git(["--git-dir", bare, "count-objects", "-v"]);
  const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)$`, "m").exec(out)?.[1] ?? 0);
  return field("count") + field("in-pack");
}

async function build(finalPath: string, p: LargeRepoParams, log: (msg: string) => void): Promise<void> {
  const cacheDir = path.dirname(finalPath);
  const tmp = path.join(cacheDir, `.${path.basename(finalPath)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  const started = Date.now();
  try {
    await git(["init", "--quiet", "--bare", "--initial-branch=main", tmp]);
    const stats = await fastImport(tmp, p);
    if (p.repack) await git(["--git-dir", tmp, "repack", "-a", "-d", "-f", "-q"]);
    await git(["--git-dir", tmp, "pack-refs", "--all"]);
    const objects = await countObjects(tmp);
    if (objects !== stats.objects) throw new Error(`largeRepo: built ${objects} objects, expected ${stats.objects}: the generator made duplicates`);
    const info: LargeRepoInfo = { generatorVersion: LARGE_REPO_GENERATOR_VERSION, params: p, stats };
    await fs.promises.writeFile(path.join(tmp, LARGE_REPO_INFO_FILE), JSON.stringify(info, null, 2) + "\n");
    try {
      await fs.promises.rename(tmp, finalPath);
    } catch (e) {
      // Another process finished the same build first: use theirs.
      const code = (e as NodeJS.ErrnoException).code;
      if ((code === "ENOTEMPTY" || code === "EEXIST") && isFinished(finalPath)) return;
      throw e;
    }
    log(`largeRepo: built ${finalPath} (${stats.objects} objects, ${stats.commits} commits) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await fs.promises.rm(tmp, { recursive: true, force: true });
  }
}

function isFinished(bare: string): boolean {
  return fs.existsSync(path.join(bare, LARGE_REPO_INFO_FILE));
}


/** Remove temporaries whose builder process is gone (an interrupted build). */
export function sweepStaleBuilds(cacheDir = largeRepoCacheDir()): string[] {
  if (!fs.existsSync(cacheDir)) return [];
  const swept: string[] = [];
  for (const name of fs.readdirSync(cacheDir)) {
    const m = /^\.large-repo-.*\.tmp-(\d+)-[a-z0-9]+$/.exec(name);
    if (m && !alive(Number(m[1]))) {
      fs.rmSync(path.join(cacheDir, name), { recursive: true, force: true });
      swept.push(name);
    }
  }
  return swept;
}

const inProgress = new Map<string, Promise<string>>();

export interface EnsureLargeRepoOptions {
  /** Cache directory (default largeRepoCacheDir()). */
  cacheDir?: string;
  /** Progress messages (default: console.log). */
  log?: (msg: string) => void;
}

/**
 * The bare repository for these params (merged over DEFAULT_LARGE_REPO_PARAMS), built on first
 * use and cached. Treat it as read-only: copy it (primary.importRepo) before changing it.
 */
export async function ensureLargeRepo(params: Partial<LargeRepoParams> = {}, opts: EnsureLargeRepoOptions = {}): Promise<string> {
  const p = normalizeParams(params);
  const cacheDir = opts.cacheDir ?? largeRepoCacheDir();
  const finalPath = largeRepoPath(p, cacheDir);
  let pending = inProgress.get(finalPath);
  if (!pending) {
    pending = (async () => {
      if (isFinished(finalPath)) return finalPath;
      await fs.promises.mkdir(cacheDir, { recursive: true });
      sweepStaleBuilds(cacheDir);
      // A directory without the info file is not ours to trust (e.g. made by hand): replace it.
      if (fs.existsSync(finalPath)) await fs.promises.rm(finalPath, { recursive: true, force: true });
      await build(finalPath, p, opts.log ?? ((m) => console.log(m)));
      return finalPath;
    })().finally(() => inProgress.delete(finalPath));
    inProgress.set(finalPath, pending);
  }
  return pending;
}
