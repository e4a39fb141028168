/**
 * What the clone benchmarks share: one repository on a bench primary, synced by the built
 * daemon and served three ways from the SAME directory on disk, so only the serving path
 * differs:
 *
 *   ours          git -> TLS -> nginx (rendered site) -> unix socket -> daemon -> git upload-pack
 *   http_backend  git -> TLS -> nginx -> unix socket -> fcgiwrap -> git-http-backend -> git upload-pack
 *   file          git clone --no-local file://DIR (git's own local transport: upload-pack, no HTTP)
 *
 * and, on request, a fourth: ours_pack_cache, a second built daemon (its own synced copy of the
 * same repository, its own nginx) with the pack cache on (mirror.serve.packCacheMb).
 *
 * Clones are `git clone --mirror --quiet` (every ref, no checkout: the checkout is the same
 * client-side work whoever served the pack).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { ensureLargeRepo, LargeRepoParams, LargeRepoStats, readLargeRepoInfo } from "../testbed/largeRepo";
import { MirrorBehindNginx, startMirrorBehindNginx } from "../testbed/mirrorBehindNginx";
import { Primary, startPrimary } from "../testbed/primary";
import { assertSameRefsAndObjects, git, GitEnv, GitError, isolatedGitEnv, listRefs } from "../testbed/repos";
import { sampleTrees } from "./cpuSampler";
import { reapedChildrenCpuMs } from "./profile";
import { warmPageCache } from "./fixtures";
import { HttpBackend, startHttpBackend } from "./httpBackend";

export type TargetName = "ours" | "http_backend" | "file" | "ours_pack_cache";

export interface CloneTarget {
  name: TargetName;
  url: string;
  env: GitEnv;
  /** Extra `git clone` options. */
  options: string[];
}

export interface ServedClones {
  primary: Primary;
  /** The repository on the primary (what every clone must equal). */
  primaryDir: string;
  /** The mirror's copy, served by all three targets. */
  mirrorDir: string;
  mirror: MirrorBehindNginx;
  backend: HttpBackend;
  /** The daemon with the pack cache on, when asked for. */
  cached?: MirrorBehindNginx;
  targets: Partial<Record<TargetName, CloneTarget>> & Record<"ours" | "http_backend" | "file", CloneTarget>;
  stats: LargeRepoStats;
  /** Size of the served repository's packs. */
  packBytes: number;
  /** Concurrent upload-packs the daemon allows (its default): fcgiwrap gets as many workers. */
  slots: number;
}

export const REPO = { project: "BIG", slug: "large" } as const;

/** The daemon's default upload-pack concurrency (sync/serve/git/index.ts). */
export function daemonSlots(): number {
  return Math.max(4, 2 * os.cpus().length);
}

function packBytesOf(dir: string): number {
  const packDir = path.join(dir, "objects", "pack");
  return fs
    .readdirSync(packDir)
    .filter((f) => f.endsWith(".pack"))
    .reduce((a, f) => a + fs.statSync(path.join(packDir, f)).size, 0);
}

/** Disk budget of the pack-cache daemon (MiB): the shipped default of mirror.serve.packCacheMb. */
export const PACK_CACHE_MB = 2048;

export async function serveClones(params: Partial<LargeRepoParams>, log: (m: string) => void, o: { packCache?: boolean } = {}): Promise<ServedClones> {
  const source = await ensureLargeRepo(params, { log });
  const stats = readLargeRepoInfo(source).stats;
  const primary = await startPrimary({ label: "bench-primary" });
  const primaryDir = await primary.importRepo(REPO.project, REPO.slug, source);
  log(`mirror: the built daemon behind nginx syncs ${REPO.project}/${REPO.slug} (${stats.objects} objects)`);
  const startMirror = async (properties: Record<string, string> = {}) => {
    const m = await startMirrorBehindNginx({
      primary,
      repos: [REPO],
      properties: { "mirror.log.level": "warn", ...properties },
      // Production runs one worker per core (worker_processes auto).
      workerProcesses: os.cpus().length,
    });
    await m.waitSynchronized(900_000);
    return m;
  };
  // ours: every request runs git (the pack cache, on by default, is turned off here).
  const mirror = await startMirror({ "mirror.serve.packCacheMb": "0" });
  const mirrorDir = mirror.repoDir(REPO.project, REPO.slug);
  const slots = daemonSlots();
  const backend = await startHttpBackend({ projectRoot: path.dirname(path.dirname(mirrorDir)), ca: mirror.ca, cert: mirror.cert, workers: slots, workerProcesses: os.cpus().length });
  await warmPageCache(mirrorDir);
  const targets: ServedClones["targets"] = {
    ours: { name: "ours", url: mirror.url(REPO.project, REPO.slug), env: mirror.gitEnv(), options: [] },
    http_backend: { name: "http_backend", url: backend.url(REPO.project, REPO.slug), env: backend.gitEnv(), options: [] },
    file: { name: "file", url: `file://${mirrorDir}`, env: isolatedGitEnv(), options: ["--no-local"] },
  };
  let cached: MirrorBehindNginx | undefined;
  if (o.packCache) {
    log(`a second daemon as shipped (pack cache on: mirror.serve.packCacheMb=${PACK_CACHE_MB}, scope clones) syncs its own copy`);
    cached = await startMirror();
    const dir = cached.repoDir(REPO.project, REPO.slug);
    // Refs in packed-refs, so forgetCachedResponses() can change the ref-state token by a touch.
    await git(["--git-dir", dir, "pack-refs", "--all"]);
    await warmPageCache(dir);
    targets.ours_pack_cache = { name: "ours_pack_cache", url: cached.url(REPO.project, REPO.slug), env: cached.gitEnv(), options: [] };
  }
  return { primary, primaryDir, mirrorDir, mirror, backend, cached, targets, stats, packBytes: packBytesOf(mirrorDir), slots };
}

/**
 * Make the pack-cache daemon's next requests misses, as for a repository that just synced: a
 * new mtime on packed-refs is a new ref-state token (sync/serve/git/packCache.ts refStateToken).
 */
export function forgetCachedResponses(s: ServedClones): void {
  if (!s.cached) return;
  const packedRefs = path.join(s.cached.repoDir(REPO.project, REPO.slug), "packed-refs");
  const t = new Date();
  fs.utimesSync(packedRefs, t, t);
}

/** The target, which must have been set up. */
export function target(s: ServedClones, name: TargetName): CloneTarget {
  const t = s.targets[name];
  if (!t) throw new Error(`target ${name} was not set up (serveClones with packCache: true)`);
  return t;
}

export interface CloneRun {
  ok: boolean;
  ms: number;
  error?: string;
}

/** One `git clone --mirror` into dest; never throws. */
export async function timedClone(t: CloneTarget, dest: string): Promise<CloneRun> {
  const t0 = performance.now();
  try {
    await git(["clone", "--mirror", "--quiet", ...t.options, t.url, dest], { env: t.env });
    return { ok: true, ms: performance.now() - t0 };
  } catch (e) {
    return { ok: false, ms: performance.now() - t0, error: e instanceof GitError ? e.stderr.trim().slice(-500) : String(e) };
  }
}

/** Throw unless every target clones an exact copy of the primary's repository. */
export async function verifyTargets(s: ServedClones, dir: string, names: TargetName[]): Promise<void> {
  for (const name of names) {
    const dest = path.join(dir, `verify-${name}.git`);
    const r = await timedClone(target(s, name), dest);
    if (!r.ok) throw new Error(`${name}: clone failed: ${r.error}`);
    await assertSameRefsAndObjects(s.primaryDir, dest);
    await fs.promises.rm(dest, { recursive: true, force: true });
  }
}

/** Same refs as the primary: cheap enough to check on every clone of a concurrent batch. */
export async function sameRefs(primaryRefs: Map<string, string>, dest: string): Promise<boolean> {
  const got = await listRefs(dest);
  return got.size === primaryRefs.size && [...primaryRefs].every(([k, v]) => got.get(k) === v);
}

/** CPU ms one clone cost each party, from /proc (see cpuSampler.ts). */
export interface CloneProfile {
  ms: number;
  /** Server-side git: the daemon and the upload-pack/pack-objects it ran (ours), or fcgiwrap and the git-http-backend/upload-pack/pack-objects it ran (http_backend); 0 for file://. */
  serverGit: number;
  /** The TLS proxy in front (0 for file://). */
  nginx: number;
  /** git clone, git-remote-https, index-pack (for file://, the upload-pack it runs too). */
  client: number;
}

/**
 * One clone with its CPU accounted for every party: a profiling run, not a timed one (the
 * sampler polls /proc every 10 ms and costs CPU of its own).
 */
export async function profiledClone(s: ServedClones, name: TargetName, dest: string): Promise<CloneProfile> {
  const mirror = name === "ours_pack_cache" ? (s.cached as MirrorBehindNginx) : s.mirror;
  const roots = {
    ours: mirror.daemon.child.pid as number,
    oursNginx: mirror.nginx.pid,
    backend: s.backend.fcgiwrap.child.pid as number,
    backendNginx: s.backend.nginx.pid,
  };
  const clients0 = reapedChildrenCpuMs();
  const sampler = sampleTrees(roots);
  const r = await timedClone(target(s, name), dest);
  const cpu = sampler.stop();
  const client = reapedChildrenCpuMs() - clients0;
  if (!r.ok) throw new Error(`${name}: profiled clone failed: ${r.error}`);
  await fs.promises.rm(dest, { recursive: true, force: true });
  if (name === "ours" || name === "ours_pack_cache") return { ms: r.ms, serverGit: cpu.ours, nginx: cpu.oursNginx, client };
  if (name === "http_backend") return { ms: r.ms, serverGit: cpu.backend, nginx: cpu.backendNginx, client };
  return { ms: r.ms, serverGit: 0, nginx: 0, client };
}
