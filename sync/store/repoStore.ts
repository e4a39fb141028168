/**
 * The mirror's bare repositories on disk. Invariants that make kill -9 at any moment safe:
 * - a repository appears under repos/ only complete: first clones are built in .incoming/
 *   and renamed into place; what a killed first clone received is kept there and the next
 *   attempt continues from it (resumableClone.ts);
 * - refs change only through git's own lock+rename (fetch --atomic), so a killed fetch leaves
 *   the old refs, and at worst stale *.lock files and partial temp packs, which sweepLocks()
 *   and sweepTempFiles() remove at start, before a fetch and after a failed one;
 * - the fingerprint is written after the refs, from the refs, so it never claims more than
 *   is on disk;
 * - removal is a rename into .trash/ followed by a delete.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { RepoId } from "../types";
import { mirrorRefspecs } from "../upstream/refFilter";
import { FINGERPRINT_FILE, homePath, repoDir, repoIdOfDir } from "../homeLayout";
import { packBytes, packCount } from "./packFiles";
import { initBare, readHeadTarget, readLocalRefs, setHead } from "./localGit";
import { DEFAULT_FIRST_CLONE_STEP_BYTES, isShallow, resumableClone, STEPWISE_MARKER } from "./resumableClone";
import { git, GitError, runGit, runGitInput } from "./runGit";
import { PackIndexer, packContains, releasePack, startIndexPack, writeBareSkeleton, writePackedRefs } from "./packIngest";
import type { V2Session } from "../upstream/protocolV2";
import { readdirOrEmpty, SweptFile, sweepTempFiles } from "./tempFiles";

/**
 * A temp file younger than this is left alone unless it is known to be ours (a writer
 * /proc cannot show, or one that has just created it); open files are never removed.
 */
export const TEMP_MIN_AGE_MS = 10_000;

/** A stepwise first clone that fails this many times in a row without progress is discarded. */
const MAX_FAILURES_WITHOUT_PROGRESS = 3;
const FAILURES_FILE = "smart-mirror.failures";

export interface FetchOutcome {
  /** Bytes added to objects/pack by this fetch (new pack files). */
  bytes: number;
  /** True when this fetch created the repository. */
  created: boolean;
  /** Pack files in the repository after the fetch. */
  packs: number;
  /** First clone resumed: pack bytes earlier attempts had already received (0 otherwise). */
  resumedFromBytes: number;
  /** First clone: the fetches this attempt ran (see resumableClone.ts). */
  steps?: string[];
}

/** A first clone over a v2 session received more than a step: continue with resumable steps. */
export class CloneTooLargeError extends Error {
  override name = "CloneTooLargeError";
}

/** One ref move the primary announced (a webhook): `old` and `new` are object ids, zeros for none. */
export interface RefMove {
  ref: string;
  old: string;
  new: string;
}

const ZERO = /^0+$/;

/** What git accepts as a ref name (check-ref-format, the parts a primary could abuse). Pure. */
export function isSafeRefName(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) return false; // control characters and space
  }
  return /^refs\/[^~^:?*[\\]+$/.test(name) && !/\.\.|\/\/|@\{|\/\.|\.lock(\/|$)|[/.]$/.test(name);
}

export interface RepoStoreOptions {
  /** A first clone receiving more than this continues in resumable steps (resumableClone.ts). */
  firstCloneStepBytes?: number;
}

export interface LocalRefs {
  refs: Map<string, string>;
  headTarget?: string;
}

export class RepoStore {
  constructor(private readonly home: string, private readonly excludeRefs: readonly string[], private readonly opts: RepoStoreOptions = {}) {}

  dir(id: RepoId): string {
    return repoDir(this.home, id);
  }

  exists(id: RepoId): boolean {
    return fs.existsSync(path.join(this.dir(id), "HEAD"));
  }

  /**
   * Startup recovery, run while holding the daemon lock (so no git of ours is running):
   * first clones in progress are kept to be resumed (their locks and pack temporaries swept),
   * anything else in .incoming/ is discarded, trash is emptied, stale locks and pack
   * temporaries of killed fetches are removed.
   */
  recover(): { removedIncoming: number; keptIncoming: number; removedLocks: string[]; removedTemp: SweptFile[] } {
    fs.mkdirSync(homePath(this.home, "repos"), { recursive: true });
    let removedIncoming = 0;
    let keptIncoming = 0;
    const removedLocks: string[] = [];
    const inc = homePath(this.home, "incoming");
    for (const name of readdirOrEmpty(inc)) {
      const p = path.join(inc, name);
      if (/^[^.]+\..+\.git$/.test(name) && fs.existsSync(path.join(p, "HEAD"))) {
        keptIncoming++;
        removedLocks.push(...sweepLocks(p));
      } else {
        removedIncoming++;
        fs.rmSync(p, { recursive: true, force: true });
      }
    }
    fs.rmSync(homePath(this.home, "trash"), { recursive: true, force: true });
    for (const dir of this.repoDirs()) removedLocks.push(...sweepLocks(dir), ...sweepOurKeeps(dir));
    return { removedIncoming, keptIncoming, removedLocks, removedTemp: this.sweepTemp() };
  }

  /**
   * Pack temporaries of killed or failed fetches, in served repositories and first clones kept
   * to resume. Safe while syncs run: a file some process has open, or one younger than
   * TEMP_MIN_AGE_MS, stays (a fetch orphaned by a kill -9 of the daemon may still be writing).
   * Run at start and once more when the start's too-young files have aged (daemon.ts).
   */
  sweepTemp(): SweptFile[] {
    return this.repoDirs().flatMap((dir) => sweepTempFiles(dir, { minAgeMs: TEMP_MIN_AGE_MS }));
  }

  /** Every served repository and every first clone kept in .incoming/ to resume. */
  private repoDirs(): string[] {
    const dirs: string[] = [];
    const inc = homePath(this.home, "incoming");
    for (const name of readdirOrEmpty(inc)) if (fs.existsSync(path.join(inc, name, "HEAD"))) dirs.push(path.join(inc, name));
    for (const id of localRepoIds(this.home)) dirs.push(repoDir(this.home, id));
    return dirs;
  }

  readFingerprint(id: RepoId): string | undefined {
    try {
      return fs.readFileSync(path.join(this.dir(id), FINGERPRINT_FILE), "utf8").trim() || undefined;
    } catch {
      return undefined;
    }
  }

  fingerprintTime(id: RepoId): number | undefined {
    try {
      return fs.statSync(path.join(this.dir(id), FINGERPRINT_FILE)).mtimeMs;
    } catch {
      return undefined;
    }
  }

  /** Fetch the primary's refs into the mirror (creating it on first sync). */
  async fetch(id: RepoId, url: string, env: NodeJS.ProcessEnv, signal: AbortSignal, headTarget?: string): Promise<FetchOutcome> {
    const args = [
      "-c", "fetch.writeCommitGraph=false",
      "-c", "gc.auto=0",
      "-c", "core.fsync=committed",
      // Keep what arrives as a pack (like servers' receive.unpackLimit=1): the bytes are countable
      // and no loose objects pile up; consolidate() merges packs when there are too many.
      "-c", "fetch.unpackLimit=1",
      "fetch", "--atomic", "--prune", "--no-write-fetch-head", "--quiet", "--no-auto-maintenance",
      url, ...mirrorRefspecs(this.excludeRefs),
    ];
    if (!this.exists(id)) return this.firstClone(id, args, env, signal, headTarget);
    const target = this.dir(id);
    // Only our own killed children can have left them (per-repo jobs are serialized).
    sweepLocks(target);
    sweepTempFiles(target, { minAgeMs: TEMP_MIN_AGE_MS });
    const before = packBytes(target);
    try {
      await git(args, { cwd: target, env, signal });
      if (headTarget) await setHead(target, headTarget, env);
    } catch (e) {
      sweepLocks(target);
      // Our git is gone: its partial pack (often most of the bytes it received) goes too, at
      // once, whatever its age; anything still open by a live process stays.
      sweepTempFiles(target, { minAgeMs: 0 });
      throw e;
    }
    return { bytes: Math.max(0, packBytes(target) - before), created: false, packs: packCount(target), resumedFromBytes: 0 };
  }

  /** A first clone that an earlier attempt left in .incoming/ to resume. */
  hasIncoming(id: RepoId): boolean {
    return fs.existsSync(path.join(this.incomingPath(id), "HEAD"));
  }

  /**
   * A first clone over an open v2 session, whose `ls-refs` gave `refs` (already filtered to the
   * kept ones) and HEAD: one pack into a skeleton in .incoming/, checked self-contained and
   * connected by index-pack, every tip checked present, refs and HEAD written, renamed into
   * place. Past the step size it stops (CloneTooLargeError) and leaves the copy marked for the
   * resumable steps (resumableClone.ts) that `fetch` runs.
   */
  async cloneFromSession(id: RepoId, session: V2Session, refs: ReadonlyMap<string, string>, headTarget: string | undefined, env: NodeJS.ProcessEnv, signal: AbortSignal): Promise<FetchOutcome> {
    for (const name of refs.keys()) if (!isSafeRefName(name)) throw new Error(`the primary advertised a ref name git would refuse: ${JSON.stringify(name)}`);
    const target = this.incomingPath(id);
    // Asynchronous file work from here: a first clone of many repositories at once must not
    // stall the event loop (and the other clones' streams) on the disk.
    await fs.promises.rm(target, { recursive: true, force: true });
    await writeBareSkeleton(target, headTarget?.startsWith("refs/") && isSafeRefName(headTarget) ? headTarget : "refs/heads/main");
    const wants = [...new Set(refs.values())];
    const stepBytes = this.opts.firstCloneStepBytes ?? DEFAULT_FIRST_CLONE_STEP_BYTES;
    try {
      if (wants.length > 0) {
        const indexer = startIndexPack(target, env, signal, { fixThin: false, selfContained: true });
        let tooBig = false;
        try {
          await session.fetch(wants, [], async (chunk) => {
            await indexer.write(chunk);
            if (indexer.bytes > stepBytes) {
              tooBig = true;
              throw new CloneTooLargeError(`first clone of ${id.project}/${id.slug} passed ${stepBytes} bytes`);
            }
          }, signal);
          const pack = await indexer.finish();
          const present = await packContains(path.join(target, "objects", "pack", `${pack}.idx`), wants);
          const missing = wants.filter((w) => !present.has(w));
          if (missing.length > 0) throw new Error(`the primary's pack for ${id.project}/${id.slug} lacks ${missing.length} of the advertised tips (e.g. ${missing[0]})`);
          await writePackedRefs(target, refs);
          await releasePack(target, pack);
        } catch (e) {
          await indexer.abort();
          if (tooBig) {
            // The copy has no refs yet: the steps begin with --depth=1 (resumableClone.ts).
            sweepTempFiles(target, { minAgeMs: 0 });
            fs.writeFileSync(path.join(target, STEPWISE_MARKER), `${new Date().toISOString()}\n`);
          }
          throw e;
        }
      }
    } catch (e) {
      if (!(e instanceof CloneTooLargeError)) await fs.promises.rm(target, { recursive: true, force: true });
      throw e;
    }
    await fs.promises.mkdir(path.dirname(this.dir(id)), { recursive: true });
    await fs.promises.rename(target, this.dir(id));
    const packs = (await fs.promises.readdir(path.join(this.dir(id), "objects", "pack"))).filter((f) => f.endsWith(".pack"));
    let bytes = 0;
    for (const f of packs) bytes += (await fs.promises.stat(path.join(this.dir(id), "objects", "pack", f))).size;
    return { bytes, created: true, packs: packs.length, resumedFromBytes: 0, steps: ["v2"] };
  }

  /**
   * Apply ref moves the primary announced, over an open v2 session: fetch exactly the new
   * tips (haves: the old ones), index them with every link checked, then move the refs in one
   * transaction that also checks each ref still holds its announced old value. Returns false,
   * changing no ref, when the mirror did not hold the old values (a missed or reordered
   * webhook): the caller then runs a full fetch. The objects fetched stay (harmless).
   */
  async applyMoves(id: RepoId, session: V2Session, moves: readonly RefMove[], env: NodeJS.ProcessEnv, signal: AbortSignal): Promise<{ bytes: number; packs: number } | false> {
    const dir = this.dir(id);
    for (const m of moves) if (!isSafeRefName(m.ref)) throw new Error(`webhook named a ref git would refuse: ${JSON.stringify(m.ref)}`);
    const wants = [...new Set(moves.filter((m) => !ZERO.test(m.new)).map((m) => m.new))];
    const haves = [...new Set(moves.filter((m) => !ZERO.test(m.old)).map((m) => m.old))];
    sweepLocks(dir);
    const before = packBytes(dir);
    let pack: string | undefined;
    try {
      if (wants.length > 0) {
        let indexer: PackIndexer | undefined;
        // --strict: every link of the new objects exists (ours are connected): git fetch's
        // connectivity check without its rev-list process. A tip the pack lacks makes
        // update-ref refuse below ("nonexistent object"), so no ref can name a missing object.
        const start = () => (indexer ??= startIndexPack(dir, env, signal, { fixThin: haves.length > 0, selfContained: false, strict: true }));
        try {
          await session.fetch(wants, haves, (chunk) => start().write(chunk), signal, start);
        } finally {
          pack = await indexer?.finish().catch((e: unknown) => {
            if (!signal.aborted && session.open) throw e;
            return undefined;
          });
        }
      }
      const tx = moves.map((m) => (ZERO.test(m.new) ? `delete ${m.ref} ${m.old}\n` : `update ${m.ref} ${m.new} ${ZERO.test(m.old) ? "0".repeat(m.new.length) : m.old}\n`)).join("");
      const r = await runGitInput(["update-ref", "--stdin"], tx, { cwd: dir, env, signal });
      if (r.code !== 0) {
        sweepLocks(dir);
        return false;
      }
    } catch (e) {
      sweepLocks(dir);
      sweepTempFiles(dir, { minAgeMs: 0 });
      throw e;
    } finally {
      if (pack) await releasePack(dir, pack);
    }
    return { bytes: Math.max(0, packBytes(dir) - before), packs: packCount(dir) };
  }

  /**
   * A first clone, built in .incoming/PROJECT.slug.git and renamed into place when complete.
   * What a failed or killed attempt received stays there for the next one (resumableClone.ts).
   */
  private async firstClone(id: RepoId, args: string[], env: NodeJS.ProcessEnv, signal: AbortSignal, headTarget?: string): Promise<FetchOutcome> {
    const target = this.incomingPath(id);
    if (!fs.existsSync(path.join(target, "HEAD"))) {
      fs.rmSync(target, { recursive: true, force: true });
      fs.mkdirSync(path.dirname(target), { recursive: true });
      // HEAD named at init when the primary's is a branch: no `symbolic-ref` run after the fetch.
      const initialBranch = headTarget?.startsWith("refs/heads/") ? headTarget.slice("refs/heads/".length) : undefined;
      await initBare(target, env, signal, initialBranch);
    } else sweepLocks(target);
    const before = packBytes(target);
    let steps: string[];
    try {
      ({ steps } = await resumableClone({ dir: target, fetchArgs: args, env, signal, stepBytes: this.opts.firstCloneStepBytes ?? DEFAULT_FIRST_CLONE_STEP_BYTES }));
      if (headTarget) await setHead(target, headTarget, env);
    } catch (e) {
      this.keepOrDiscardIncoming(target, before);
      throw e;
    }
    if (isShallow(target)) throw new Error(`first clone of ${id.project}/${id.slug} ended shallow`);
    fs.rmSync(path.join(target, STEPWISE_MARKER), { force: true });
    fs.rmSync(path.join(target, FAILURES_FILE), { force: true });
    fs.mkdirSync(path.dirname(this.dir(id)), { recursive: true });
    fs.renameSync(target, this.dir(id));
    const after = packBytes(this.dir(id));
    return { bytes: Math.max(0, after - before), created: true, packs: packCount(this.dir(id)), resumedFromBytes: before, steps };
  }

  /**
   * After a failed first-clone attempt: a stepwise copy keeps what it has (the next attempt
   * resumes) unless it failed repeatedly without getting anywhere (damaged, or a step that never
   * fits the timeout): then it starts over. A copy without steps holds nothing worth keeping.
   */
  private keepOrDiscardIncoming(target: string, before: number): void {
    sweepLocks(target);
    sweepTempFiles(target, { minAgeMs: 0 });
    if (!fs.existsSync(path.join(target, STEPWISE_MARKER))) {
      fs.rmSync(target, { recursive: true, force: true });
      return;
    }
    const file = path.join(target, FAILURES_FILE);
    let failures = 0;
    if (packBytes(target) <= before) {
      try {
        failures = Number(fs.readFileSync(file, "utf8").trim()) || 0;
      } catch {
        /* first failure */
      }
      failures++;
    }
    if (failures >= MAX_FAILURES_WITHOUT_PROGRESS) fs.rmSync(target, { recursive: true, force: true });
    else fs.writeFileSync(file, `${failures}\n`);
  }

  /**
   * Right after a first clone: a multi-pack-index bitmap over the pack as it arrived and a
   * commit-graph. Cheap (no pack rewrite), and clones are served with bitmaps from the start
   * instead of after the first scheduled repack.
   */
  async indexFirstClone(id: RepoId, env: NodeJS.ProcessEnv, signal: AbortSignal): Promise<void> {
    const dir = this.dir(id);
    await git(["multi-pack-index", "write", "--bitmap", "--no-progress"], { cwd: dir, env, signal });
    await git(["commit-graph", "write", "--reachable", "--no-progress"], { cwd: dir, env, signal });
  }

  /** Merge small packs geometrically (cheap, unlike a full repack) and keep a bitmap. */
  async consolidate(id: RepoId, env: NodeJS.ProcessEnv, signal: AbortSignal): Promise<void> {
    await git(["repack", "-d", "--geometric=2", "--write-midx", "--write-bitmap-index", "--quiet"], { cwd: this.dir(id), env, signal });
  }

  localRefs(id: RepoId, env: NodeJS.ProcessEnv): Promise<LocalRefs> {
    return readLocalRefs(this.dir(id), env);
  }

  /** Where the copy's HEAD points (`refs/heads/main`); undefined without a symbolic HEAD. */
  headTarget(id: RepoId): string | undefined {
    return readHeadTarget(this.dir(id));
  }

  /** Record what the repository now holds (written atomically after the refs changed). */
  writeFingerprint(id: RepoId, fp: string): void {
    const file = path.join(this.dir(id), FINGERPRINT_FILE);
    const tmp = `${file}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, fp + "\n");
    fs.renameSync(tmp, file);
  }

  /** writeFingerprint without blocking the event loop. */
  async writeFingerprintAsync(id: RepoId, fp: string): Promise<void> {
    const file = path.join(this.dir(id), FINGERPRINT_FILE);
    const tmp = `${file}.tmp-${process.pid}`;
    await fs.promises.writeFile(tmp, fp + "\n");
    await fs.promises.rename(tmp, file);
  }

  /** Move a repository out of service (purge or reclone): atomic rename, then delete. */
  remove(id: RepoId): void {
    const dir = this.dir(id);
    if (!fs.existsSync(dir)) return;
    const trash = path.join(homePath(this.home, "trash"), `${id.project}.${id.slug}.${Date.now()}.${process.pid}`);
    fs.mkdirSync(homePath(this.home, "trash"), { recursive: true });
    fs.renameSync(dir, trash);
    fs.rmSync(trash, { recursive: true, force: true });
    const projectDir = path.dirname(dir);
    if (readdirOrEmpty(projectDir).length === 0) fs.rmSync(projectDir, { recursive: true, force: true });
  }

  /** Repositories present on disk (for purge decisions). */
  listLocal(): RepoId[] {
    return localRepoIds(this.home);
  }

  /** Full connectivity and object check; returns git's complaint, or undefined when clean. */
  async fsck(id: RepoId, env: NodeJS.ProcessEnv, signal: AbortSignal): Promise<string | undefined> {
    const r = await runGit(["fsck", "--no-progress", "--no-dangling"], { cwd: this.dir(id), env, signal });
    return r.code === 0 ? undefined : r.stderrTail || `git fsck exit ${r.code ?? r.signal}`;
  }

  /** Repack into one pack with a bitmap and write the commit-graph: fast clones and fetches. */
  async maintain(id: RepoId, env: NodeJS.ProcessEnv, signal: AbortSignal): Promise<void> {
    const dir = this.dir(id);
    await git(["-c", "pack.writeBitmapHashCache=true", "repack", "-a", "-d", "-b", "--quiet"], { cwd: dir, env, signal });
    await git(["commit-graph", "write", "--reachable", "--no-progress"], { cwd: dir, env, signal });
    await git(["pack-refs", "--all"], { cwd: dir, env, signal });
  }

  /** One stable place per repository (project keys have no "."), so a restart finds it again. */
  private incomingPath(id: RepoId): string {
    this.dir(id); // validates the name
    return path.join(homePath(this.home, "incoming"), `${id.project}.${id.slug}.git`);
  }
}

/**
 * Repositories in service under `home` (repos/PROJECT/slug.git), not first clones in .incoming.
 * Only names the store could have made: anything else there is not ours to purge or sweep.
 */
export function localRepoIds(home: string): RepoId[] {
  const root = homePath(home, "repos");
  const out: RepoId[] = [];
  for (const project of readdirOrEmpty(root)) {
    for (const entry of readdirOrEmpty(path.join(root, project))) {
      const id = repoIdOfDir(project, entry);
      if (id) out.push(id);
    }
  }
  return out;
}

/** Remove git lock files left by a killed git process. Returns what was removed. */
export function sweepLocks(dir: string): string[] {
  const removed: string[] = [];
  const walk = (d: string, depth: number) => {
    for (const e of safeReaddirEntries(d)) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        if (depth < 12 && e.name !== "pack") walk(p, depth + 1);
      } else if (e.name.endsWith(".lock")) {
        fs.rmSync(p, { force: true });
        removed.push(p);
      }
    }
  };
  for (const top of ["HEAD.lock", "config.lock", "packed-refs.lock", "shallow.lock", "index.lock"]) {
    const p = path.join(dir, top);
    if (fs.existsSync(p)) {
      fs.rmSync(p, { force: true });
      removed.push(p);
    }
  }
  walk(path.join(dir, "refs"), 0);
  walk(path.join(dir, "objects", "info"), 0);
  return removed;
}

/**
 * `.keep` files our index-pack runs (packIngest.ts) leave when killed between indexing a pack
 * and writing the refs that name it: the pack stays, but must not be kept from repacks forever.
 */
export function sweepOurKeeps(dir: string): string[] {
  const packDir = path.join(dir, "objects", "pack");
  const removed: string[] = [];
  for (const f of readdirOrEmpty(packDir)) {
    if (!f.endsWith(".keep")) continue;
    const p = path.join(packDir, f);
    try {
      if (!fs.readFileSync(p, "utf8").startsWith("smart-mirror ")) continue;
      fs.rmSync(p, { force: true });
      removed.push(p);
    } catch {
      /* gone meanwhile */
    }
  }
  return removed;
}

function safeReaddirEntries(dir: string): fs.Dirent[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}

export { GitError };
