/**
 * What the clone benchmarks share: one repository on a bench primary, synced by the built
 * daemon and served three ways from the SAME directory on disk, so only the serving path
 * differs:
 *
 *   ours          git -> TLS -> nginx (rendered site) -> unix socket -> daemon -> git upload-pack
 *   http_backend  git -> TLS -> nginx -> unix socket -> fcgiwrap -> git-http-backend -> git upload-pack
 *   file          git clone --no-local file://DIR (git's own local transport: upload-pack, no HTTP)
 *
 * Clones are `git clone --mirror --quiet` (every ref, no checkout: the checkout is the same
 * client-side work whoever served the pack).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { ensureLargeRepo, LargeRepoParams, LargeRepoStats, readLargeRepoInfo } from "../test/bench/largeRepo";
import { MirrorBehindNginx, startMirrorBehindNginx } from "../test/bench/mirrorBehindNginx";
import { Primary, startPrimary } from "../test/bench/primary";
import { assertSameRefsAndObjects, git, GitEnv, GitError, isolatedGitEnv, listRefs } from "../test/bench/repos";
import { sampleTrees } from "./cpuSampler";
import { reapedChildrenCpuMs } from "./profile";
import { warmPageCache } from "./fixtures";
import { HttpBackend, startHttpBackend } from "./httpBackend";

export type TargetName = "ours" | "http_backend" | "file";

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
  targets: Record<TargetName, CloneTarget>;
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

export async function serveClones(params: Partial<LargeRepoParams>, log: (m: string) => void, o: { daemonProperties?: Record<string, string> } = {}): Promise<ServedClones> {
  const source = await ensureLargeRepo(params, { log });
  const stats = readLargeRepoInfo(source).stats;
  const primary = await startPrimary({ label: "bench-primary" });
  const primaryDir = await primary.importRepo(REPO.project, REPO.slug, source);
  log(`mirror: the built daemon behind nginx syncs ${REPO.project}/${REPO.slug} (${stats.objects} objects)`);
  const mirror = await startMirrorBehindNginx({
    primary,
    repos: [REPO],
    properties: { "mirror.log.level": "warn", ...o.daemonProperties },
    // Production runs one worker per core (worker_processes auto).
    workerProcesses: os.cpus().length,
  });
  await mirror.waitSynchronized(900_000);
  const mirrorDir = mirror.repoDir(REPO.project, REPO.slug);
  const slots = daemonSlots();
  const backend = await startHttpBackend({ projectRoot: path.dirname(path.dirname(mirrorDir)), ca: mirror.ca, cert: mirror.cert, workers: slots, workerProcesses: os.cpus().length });
  await warmPageCache(mirrorDir);
  const targets: Record<TargetName, CloneTarget> = {
    ours: { name: "ours", url: mirror.url(REPO.project, REPO.slug), env: mirror.gitEnv(), options: [] },
    http_backend: { name: "http_backend", url: backend.url(REPO.project, REPO.slug), env: backend.gitEnv(), options: [] },
    file: { name: "file", url: `file://${mirrorDir}`, env: isolatedGitEnv(), options: ["--no-local"] },
  };
  return { primary, primaryDir, mirrorDir, mirror, backend, targets, stats, packBytes: packBytesOf(mirrorDir), slots };
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
    const r = await timedClone(s.targets[name], dest);
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
  const roots = {
    ours: s.mirror.daemon.child.pid as number,
    oursNginx: s.mirror.nginx.pid,
    backend: s.backend.fcgiwrap.child.pid as number,
    backendNginx: s.backend.nginx.pid,
  };
  const clients0 = reapedChildrenCpuMs();
  const sampler = sampleTrees(roots);
  const r = await timedClone(s.targets[name], dest);
  const cpu = sampler.stop();
  const client = reapedChildrenCpuMs() - clients0;
  if (!r.ok) throw new Error(`${name}: profiled clone failed: ${r.error}`);
  await fs.promises.rm(dest, { recursive: true, force: true });
  if (name === "ours") return { ms: r.ms, serverGit: cpu.ours, nginx: cpu.oursNginx, client };
  if (name === "http_backend") return { ms: r.ms, serverGit: cpu.backend, nginx: cpu.backendNginx, client };
  return { ms: r.ms, serverGit: 0, nginx: 0, client };
}
