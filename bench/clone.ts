/**
 * clone: one full clone of a large repository (test/bench/largeRepo.ts defaults: ~10k commits,
 * ~170k objects, ~20 MB packed) through the mirror — TLS, nginx with the rendered site, the
 * built daemon, git upload-pack — against nginx + fcgiwrap + git-http-backend serving the same
 * directory with the same TLS and streaming settings, and against `git clone --no-local
 * file://` of it (git's own transport, no HTTP at all). Runs alternate between the targets
 * (the order rotates every round); each reported time is the median of N.
 *
 * Context measured in the same run: the same clone from a daemon with the pack cache on (a
 * repeated clone answered from the cache, and a first one that fills it), and ours vs
 * http_backend again after the repository got the daemon's scheduled maintenance (one pack
 * with a bitmap, commit-graph), which a freshly synced repository gets only within a day.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { DEFAULT_LARGE_REPO_PARAMS } from "../test/bench/largeRepo";
import { git } from "../test/bench/repos";
import { tempDir } from "../test/bench/resources";
import { BenchContext, BenchOutcome, Benchmark } from "./benchmark";
import { HISTORY_REPO_PARAMS } from "./initialSync";
import { MetricValue } from "./results";
import { scaled } from "./scale";
import { CloneProfile, forgetCachedResponses, PACK_CACHE_MB, profiledClone, ServedClones, serveClones, target, TargetName, timedClone, verifyTargets } from "./servedClones";
import { median, pairedRatio, ratio, round } from "./stats";

/** Rounds: the two servers differ by a few percent at most, clone to clone by ~10% on a shared
 * machine, so enough rounds for a paired median to say which side of 1.0 the ratio is on. */
const FULL_RUNS = 9;

/** Round r's order: rotated, so no target always runs first (cold) or right after another. */
export function rotation<T>(items: readonly T[], r: number): T[] {
  const k = r % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/** One kind of timed clone: a target, and what to do right before each run. */
interface Kind {
  label: string;
  name: TargetName;
  before?: () => void;
}

/** `runs` rounds over `kinds`, rotating; every clone must succeed. Times by label. */
async function rounds(s: ServedClones, kinds: Kind[], runs: number, work: string, log: (m: string) => void): Promise<Record<string, number[]>> {
  const times: Record<string, number[]> = Object.fromEntries(kinds.map((k) => [k.label, []]));
  for (let r = 0; r < runs; r++) {
    for (const k of rotation(kinds, r)) {
      const dest = path.join(work, `${k.label}-${r}.git`);
      k.before?.();
      const res = await timedClone(target(s, k.name), dest);
      if (!res.ok) throw new Error(`${k.label}: clone ${r + 1} failed: ${res.error}`);
      times[k.label].push(res.ms);
      log(`round ${r + 1}/${runs}: ${k.label} ${Math.round(res.ms)} ms`);
      await fs.promises.rm(dest, { recursive: true, force: true });
    }
  }
  return times;
}

/** What the daemon's scheduled maintenance does to a repository (sync/store/repoStore.ts maintain). */
async function maintain(dir: string): Promise<void> {
  await git(["-c", "pack.writeBitmapHashCache=true", "repack", "-a", "-d", "-b", "--quiet"], { cwd: dir });
  await git(["commit-graph", "write", "--reachable", "--no-progress"], { cwd: dir });
  await git(["pack-refs", "--all"], { cwd: dir });
}

async function run(ctx: BenchContext): Promise<BenchOutcome> {
  const runs = scaled(FULL_RUNS, ctx.scale, 1);
  // Below scale 1 (quick checks) the medium repository stands in.
  const params = ctx.scale >= 1 ? DEFAULT_LARGE_REPO_PARAMS : HISTORY_REPO_PARAMS;
  const s = await serveClones(params, ctx.log, { packCache: true });
  const work = tempDir("clones");
  ctx.log(`checking each target clones an exact copy (warms caches too)`);
  await verifyTargets(s, work, ["ours", "http_backend", "file", "ours_pack_cache"]);

  const times = await rounds(
    s,
    [
      { label: "ours", name: "ours" },
      { label: "http_backend", name: "http_backend" },
      { label: "file", name: "file" },
      // A repository that just synced: the first clone of its new state fills the cache...
      { label: "pack_cache_miss", name: "ours_pack_cache", before: () => forgetCachedResponses(s) },
      // ...and the next ones of the same state are answered from it.
      { label: "pack_cache_hit", name: "ours_pack_cache" },
    ],
    runs,
    work,
    ctx.log,
  );
  ctx.log("profile: one more clone each, CPU of every party sampled from /proc");
  const prof = {} as Record<TargetName, CloneProfile>;
  for (const name of ["ours", "http_backend", "file", "ours_pack_cache"] as TargetName[]) prof[name] = await profiledClone(s, name, path.join(work, `profile-${name}.git`));

  ctx.log("the daemon's maintenance on the served repository (repack -a -d -b, commit-graph), then ours and http_backend again");
  await maintain(s.mirrorDir);
  await verifyTargets(s, work, ["ours", "http_backend"]);
  const after = await rounds(
    s,
    [
      { label: "ours", name: "ours" },
      { label: "http_backend", name: "http_backend" },
    ],
    runs,
    work,
    ctx.log,
  );
  const profAfter = { ours: await profiledClone(s, "ours", path.join(work, "pa-ours.git")), http_backend: await profiledClone(s, "http_backend", path.join(work, "pa-hb.git")) };

  const ms = (label: string, t = times) => median(t[label]);
  const results: Record<string, MetricValue> = {
    "clone.objects": s.stats.objects,
    "clone.pack_mb": round(s.packBytes / 2 ** 20, 1),
    "clone.runs": runs,
    "clone.ours_ms": Math.round(ms("ours")),
    "clone.http_backend_ms": Math.round(ms("http_backend")),
    "clone.file_ms": Math.round(ms("file")),
    "clone.ratio_vs_http_backend": pairedRatio(times.http_backend, times.ours),
    "clone.ratio_of_medians_vs_http_backend": ratio(ms("http_backend"), ms("ours"), 2),
    "clone.ratio_vs_file": ratio(ms("file"), ms("ours"), 2),
    "clone.ours_min_ms": Math.round(Math.min(...times.ours)),
    "clone.ours_max_ms": Math.round(Math.max(...times.ours)),
    "clone.http_backend_min_ms": Math.round(Math.min(...times.http_backend)),
    "clone.http_backend_max_ms": Math.round(Math.max(...times.http_backend)),
    "clone.profile.ours_server_cpu_ms": Math.round(prof.ours.serverGit),
    "clone.profile.ours_nginx_cpu_ms": Math.round(prof.ours.nginx),
    "clone.profile.ours_client_cpu_ms": Math.round(prof.ours.client),
    "clone.profile.http_backend_server_cpu_ms": Math.round(prof.http_backend.serverGit),
    "clone.profile.http_backend_nginx_cpu_ms": Math.round(prof.http_backend.nginx),
    "clone.profile.http_backend_client_cpu_ms": Math.round(prof.http_backend.client),
    "clone.profile.file_client_and_upload_pack_cpu_ms": Math.round(prof.file.client),
    "clone.pack_cache_miss_ms": Math.round(ms("pack_cache_miss")),
    "clone.pack_cache_hit_ms": Math.round(ms("pack_cache_hit")),
    "clone.pack_cache_hit_ratio_vs_http_backend": pairedRatio(times.http_backend, times.pack_cache_hit),
    "clone.pack_cache_miss_ratio_vs_http_backend": pairedRatio(times.http_backend, times.pack_cache_miss),
    "clone.profile.pack_cache_hit_server_cpu_ms": Math.round(prof.ours_pack_cache.serverGit),
    "clone.after_maintenance.ours_ms": Math.round(ms("ours", after)),
    "clone.after_maintenance.http_backend_ms": Math.round(ms("http_backend", after)),
    "clone.after_maintenance.ratio_vs_http_backend": pairedRatio(after.http_backend, after.ours),
    "clone.after_maintenance.profile.ours_server_cpu_ms": Math.round(profAfter.ours.serverGit),
    "clone.after_maintenance.profile.http_backend_server_cpu_ms": Math.round(profAfter.http_backend.serverGit),
  };
  const p = params;
  const notes = [
    `One repository made by test/bench/largeRepo.ts (${p.commits} commits on main, ${p.branches} branches, ${p.files} files, a tag every ${p.tagEvery} commits: ${s.stats.objects} objects, ${results["clone.pack_mb"]} MB packed on the mirror) on a bench primary, synced by the built daemon (node dist/smart-mirror.js run) and served from that one directory three ways: ours = git -> TLS -> nginx (the site components/render/nginx.ts renders, worker_processes = cores) -> unix socket -> daemon -> git upload-pack; http_backend = git -> TLS -> nginx (same certificate, TLS and streaming settings) -> unix socket -> fcgiwrap (${s.slots} workers, the daemon's slot count) -> git-http-backend -> git upload-pack; file = \`git clone --no-local file://\` of the directory (git's local transport: upload-pack over a pipe, no HTTP, no TLS).`,
    `Each run is \`git clone --mirror --quiet\` (all refs, no checkout) into a fresh directory, protocol v2 (the client's default); ${runs} rounds, the order rotating each round; medians reported (min/max for ours and http_backend beside them). Every target was first checked to clone an exact copy (refs, HEAD, every object) of the primary's repository. ratio_vs_http_backend = the median over rounds of that round's http_backend time / ours (>= 1: ours is not slower; each round clones from both back to back, so the ratio pairs clones made under the same machine load); ratio_of_medians_vs_http_backend = http_backend_ms / ours_ms, for comparison; ratio_vs_file = file_ms / ours_ms.`,
    `The main numbers serve the repository as the daemon leaves it after its first sync: the pack as fetched, plus the multi-pack-index bitmap and commit-graph the daemon writes right after a first clone (sync/store/repoStore.ts indexFirstClone), so git counts a clone's objects from the bitmap instead of walking ${s.stats.objects} objects. after_maintenance: the same after what the daemon's scheduled maintenance does (repack -a -d -b, commit-graph, pack-refs: one pack with its own bitmap), for both servers.`,
    `ours runs with the pack cache off (mirror.serve.packCacheMb=0): every clone runs git upload-pack, like git-http-backend. pack_cache: a second built daemon as shipped (the pack cache is on by default: mirror.serve.packCacheMb=${PACK_CACHE_MB}, mirror.serve.packCacheScope=clones; sync/serve/git/packCache.ts: identical requests for the same ref state share one upload-pack run, answered from its stored response, as Bitbucket's SCM cache does). pack_cache_miss = the first clone after the ref state changed (it runs git and fills the cache; the ref-state token was changed before each such run); pack_cache_hit = a repeated clone of the same state, answered without starting git: what a CI fleet cloning one commit gets.`,
    `Profile: CPU ms of one more clone per target, every party's processes sampled from /proc every 10 ms (bench/cpuSampler.ts; fcgiwrap's workers ignore SIGCHLD, so their children's CPU never reaches a parent's counters): server = the daemon process plus the upload-pack/pack-objects it ran (ours), or fcgiwrap plus git-http-backend/upload-pack/pack-objects (http_backend); nginx = the TLS proxy; client = git clone, git-remote-https, index-pack (for file://, the upload-pack it runs too). Client and servers share the same 2 cores, so on this machine every CPU ms of the server side is a ms the client waits. The daemon does not relay the pack: for a POST to git-upload-pack it sends the 200 and its headers, then runs git with the client's socket as its stdout (sync/serve/git/handOff.ts), as git-http-backend writes into fcgiwrap; what is left of the daemon's own share is its three spawns per v2 clone (fork of a ~90 MB process: ~5 ms CPU each) and the HTTP handling.`,
  ].join("\n\n");
  return { results, notes, goals: { "clone.ratio_vs_http_backend": ">= 1" } };
}

export const cloneBenchmark: Benchmark = {
  name: "clone",
  summary: "clone of a ~170k-object repository: ours (nginx TLS -> daemon) vs nginx + git-http-backend vs file://",
  run,
};
