/**
 * clone: one full clone of a large repository (testbed/largeRepo.ts defaults: ~10k commits,
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
import { DEFAULT_LARGE_REPO_PARAMS } from "../testbed/largeRepo";
import { git } from "../testbed/repos";
import { tempDir } from "../testbed/resources";
import { BenchContext, BenchOutcome, Benchmark } from "./benchmark";
import { HISTORY_REPO_PARAMS } from "./initialSync";
import { MetricValue } from "./results";
import { scaled } from "./scale";
import { CloneProfile, forgetCachedResponses, PACK_CACHE_MB, profiledClone, ServedClones, serveClones, target, TargetName, timedClone, verifyTargets } from "./servedClones";
import { median, pairedRatio, pairedRatioInterval, ratio, round } from "./stats";
import { clonePhases } from "./clientTrace";
import { timedServe, writeCloneRequest } from "./serveOnly";
import { settle } from "./fixtures";

/** Rounds: the two servers differ by a few percent at most, clone to clone by ~10% on a shared
 * machine; 15 paired rounds give the median a 95% interval between the 4th and 12th ratio. */
const FULL_RUNS = 15;
/** Serve-only rounds: ~0.3 s each. */
const SERVE_RUNS = 15;

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

/** Each label's clone times, and of each clone the time until its last byte had come in. */
interface Rounds {
  times: Record<string, number[]>;
  received: Record<string, number[]>;
}

/**
 * `runs` rounds over `kinds`, rotating; every clone must succeed. Each clone writes its trace2
 * events to a file (clientTrace.ts reads its phases from it).
 */
async function rounds(s: ServedClones, kinds: Kind[], runs: number, work: string, log: (m: string) => void): Promise<Rounds> {
  const times: Record<string, number[]> = Object.fromEntries(kinds.map((k) => [k.label, []]));
  const received: Record<string, number[]> = Object.fromEntries(kinds.map((k) => [k.label, []]));
  for (let r = 0; r < runs; r++) {
    for (const k of rotation(kinds, r)) {
      const dest = path.join(work, `${k.label}-${r}.git`);
      const trace = path.join(work, `${k.label}-${r}.trace2.json`);
      const t = target(s, k.name);
      k.before?.();
      await settle();
      const res = await timedClone({ ...t, env: { ...t.env, GIT_TRACE2_EVENT: trace } }, dest);
      if (!res.ok) throw new Error(`${k.label}: clone ${r + 1} failed: ${res.error}`);
      const phases = clonePhases(await fs.promises.readFile(trace, "utf8"));
      times[k.label].push(res.ms);
      received[k.label].push(phases.receivedMs);
      log(`round ${r + 1}/${runs}: ${k.label} ${Math.round(res.ms)} ms (last byte in at ${Math.round(phases.receivedMs)} ms)`);
      await fs.promises.rm(dest, { recursive: true, force: true });
      await fs.promises.rm(trace, { force: true });
    }
  }
  return { times, received };
}

/** Serve-only rounds (serveOnly.ts): each target's time to get a whole clone's answer out. */
async function serveRounds(s: ServedClones, names: TargetName[], runs: number, work: string, log: (m: string) => void): Promise<Record<string, number[]>> {
  const body = path.join(work, "clone-request");
  await writeCloneRequest(s.mirrorDir, body);
  // The answer is the pack plus sideband framing; anything much smaller is an error reply.
  const minBytes = Math.floor(s.packBytes * 0.9);
  for (const name of names) await timedServe(target(s, name), body, minBytes); // warm
  const times: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < runs; r++) {
    for (const name of rotation(names, r)) {
      await settle();
      times[name].push((await timedServe(target(s, name), body, minBytes)).ms);
    }
  }
  log(`serve-only: ${names.map((n) => `${n} ${Math.round(median(times[n]))} ms`).join(", ")} (medians of ${runs})`);
  return times;
}

/** What the daemon's scheduled maintenance does to a repository (sync/store/repoStore.ts maintain). */
async function maintain(dir: string): Promise<void> {
  await git(["-c", "pack.writeBitmapHashCache=true", "repack", "-a", "-d", "-b", "--quiet"], { cwd: dir });
  await git(["commit-graph", "write", "--reachable", "--no-progress"], { cwd: dir });
  await git(["pack-refs", "--all"], { cwd: dir });
}

/** A paired ratio's 95% interval as "low..high" ("n/a" with too few rounds: quick runs). */
function interval(baseline: number[], ours: number[]): string {
  const ci = pairedRatioInterval(baseline, ours);
  return ci ? `${ci[0]}..${ci[1]}` : "n/a";
}

async function run(ctx: BenchContext): Promise<BenchOutcome> {
  const runs = scaled(FULL_RUNS, ctx.scale, 1);
  // Below scale 1 (quick checks) the medium repository stands in.
  const params = ctx.scale >= 1 ? DEFAULT_LARGE_REPO_PARAMS : HISTORY_REPO_PARAMS;
  const s = await serveClones(params, ctx.log, { packCache: true });
  const work = tempDir("clones");
  ctx.log(`checking each target clones an exact copy (warms caches too)`);
  await verifyTargets(s, work, ["ours", "http_backend", "file", "ours_pack_cache"]);

  const { times, received } = await rounds(
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

  ctx.log("serve-only: the clone's fetch POSTed with curl, the answer thrown away (no index-pack on the other end)");
  const serve = await serveRounds(s, ["ours", "http_backend", "ours_pack_cache"], scaled(SERVE_RUNS, ctx.scale, 3), work, ctx.log);

  ctx.log("the daemon's maintenance on the served repository (repack -a -d -b, commit-graph), then ours and http_backend again");
  await maintain(s.mirrorDir);
  await verifyTargets(s, work, ["ours", "http_backend"]);
  const { times: after } = await rounds(
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
    "clone.ratio_vs_http_backend_ci95": interval(times.http_backend, times.ours),
    "clone.ratio_of_medians_vs_http_backend": ratio(ms("http_backend"), ms("ours"), 2),
    "clone.ratio_vs_file": ratio(ms("file"), ms("ours"), 2),
    "clone.ours_min_ms": Math.round(Math.min(...times.ours)),
    "clone.ours_max_ms": Math.round(Math.max(...times.ours)),
    "clone.http_backend_min_ms": Math.round(Math.min(...times.http_backend)),
    "clone.http_backend_max_ms": Math.round(Math.max(...times.http_backend)),
    "clone.received.ours_ms": Math.round(ms("ours", received)),
    "clone.received.http_backend_ms": Math.round(ms("http_backend", received)),
    "clone.received.file_ms": Math.round(ms("file", received)),
    "clone.received.pack_cache_hit_ms": Math.round(ms("pack_cache_hit", received)),
    "clone.received.ratio_vs_http_backend": pairedRatio(received.http_backend, received.ours),
    "clone.received.ratio_vs_http_backend_ci95": interval(received.http_backend, received.ours),
    "clone.received.pack_cache_hit_ratio_vs_http_backend": pairedRatio(received.http_backend, received.pack_cache_hit),
    "clone.client_after_last_byte_ms": Math.round(median(times.ours.map((t, i) => t - received.ours[i]))),
    "clone.client_after_last_byte_pct": Math.round(median(times.ours.map((t, i) => (100 * (t - received.ours[i])) / t))),
    "clone.serve.runs": serve.ours.length,
    "clone.serve.ours_ms": Math.round(median(serve.ours)),
    "clone.serve.http_backend_ms": Math.round(median(serve.http_backend)),
    "clone.serve.pack_cache_hit_ms": Math.round(median(serve.ours_pack_cache)),
    "clone.serve.ratio_vs_http_backend": pairedRatio(serve.http_backend, serve.ours),
    "clone.serve.ratio_vs_http_backend_ci95": interval(serve.http_backend, serve.ours),
    "clone.serve.pack_cache_hit_ratio_vs_http_backend": pairedRatio(serve.http_backend, serve.ours_pack_cache),
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
    "clone.pack_cache_hit_ratio_vs_http_backend_ci95": interval(times.http_backend, times.pack_cache_hit),
    "clone.pack_cache_miss_ratio_vs_http_backend": pairedRatio(times.http_backend, times.pack_cache_miss),
    "clone.profile.pack_cache_hit_server_cpu_ms": Math.round(prof.ours_pack_cache.serverGit),
    "clone.after_maintenance.ours_ms": Math.round(ms("ours", after)),
    "clone.after_maintenance.http_backend_ms": Math.round(ms("http_backend", after)),
    "clone.after_maintenance.ratio_vs_http_backend": pairedRatio(after.http_backend, after.ours),
    "clone.after_maintenance.ratio_vs_http_backend_ci95": interval(after.http_backend, after.ours),
    "clone.after_maintenance.profile.ours_server_cpu_ms": Math.round(profAfter.ours.serverGit),
    "clone.after_maintenance.profile.http_backend_server_cpu_ms": Math.round(profAfter.http_backend.serverGit),
  };
  const p = params;
  const notes = [
    `One repository made by testbed/largeRepo.ts (${p.commits} commits on main, ${p.branches} branches, ${p.files} files, a tag every ${p.tagEvery} commits: ${s.stats.objects} objects, ${results["clone.pack_mb"]} MB packed on the mirror) on a bench primary, synced by the built daemon (node dist/smart-mirror.js run) and served from that one directory three ways: ours = git -> TLS -> nginx (the site components/render/nginx.ts renders, worker_processes = cores) -> unix socket -> daemon -> git upload-pack; http_backend = git -> TLS -> nginx (same certificate, TLS and streaming settings) -> unix socket -> fcgiwrap (${s.slots} workers, the daemon's slot count) -> git-http-backend -> git upload-pack; file = \`git clone --no-local file://\` of the directory (git's local transport: upload-pack over a pipe, no HTTP, no TLS).`,
    `Each run is \`git clone --mirror --quiet\` (all refs, no checkout) into a fresh directory, protocol v2 (the client's default), started after \`sync\` and a 250 ms pause (bench/fixtures.ts settle: the previous run's dirty pages are written back before, not during, the next); ${runs} rounds, the order rotating each round; medians reported (min/max for ours and http_backend beside them). Every target was first checked to clone an exact copy (refs, HEAD, every object) of the primary's repository. ratio_vs_http_backend = the median over rounds of that round's http_backend time / ours (>= 1: ours is not slower; each round clones from both back to back, so the ratio pairs clones made under the same machine load); ratio_vs_http_backend_ci95 = the 95% confidence interval of that median (the sign test's order statistics of the per-round ratios, bench/stats.ts medianInterval; with 15 rounds the 4th and 12th smallest): where it spans 1.0, the two servers are not told apart by this many clones on this machine; ratio_of_medians_vs_http_backend = http_backend_ms / ours_ms, for comparison; ratio_vs_file = file_ms / ours_ms.`,
    `The main numbers serve the repository as the daemon leaves it after its first sync: the pack as fetched, plus the multi-pack-index bitmap and commit-graph the daemon writes right after a first clone (sync/store/repoStore.ts indexFirstClone), so git counts a clone's objects from the bitmap instead of walking ${s.stats.objects} objects. after_maintenance: the same after what the daemon's scheduled maintenance does (repack -a -d -b, commit-graph, pack-refs: one pack with its own bitmap), for both servers.`,
    `ours runs with the pack cache off (mirror.serve.packCacheMb=0): every clone runs git upload-pack, like git-http-backend. pack_cache: a second built daemon as shipped (the pack cache is on by default: mirror.serve.packCacheMb=${PACK_CACHE_MB}, mirror.serve.packCacheScope=clones; sync/serve/git/packCache.ts: identical requests for the same ref state share one upload-pack run, answered from its stored response, as Bitbucket's SCM cache does). pack_cache_miss = the first clone after the ref state changed (it runs git and fills the cache; the ref-state token was changed before each such run); pack_cache_hit = a repeated clone of the same state, answered without starting git: what a CI fleet cloning one commit gets.`,
    `Where a clone's time goes (each timed clone ran with GIT_TRACE2_EVENT; bench/clientTrace.ts): received = from the clone's start until git-remote-https (file://: upload-pack) exits, i.e. until the last byte of the pack is in. Everything a server can speed up or slow down happens inside that window; the rest (client_after_last_byte: index-pack resolving deltas and hashing objects, then writing refs) is the client alone, the same for any server that sends the same pack, and on this machine its clone-to-clone spread alone is larger than the whole serving difference. received.ratio_vs_http_backend = paired median, as above.`,
    `serve = the server's half of a clone alone (bench/serveOnly.ts): the protocol v2 fetch a \`git clone --mirror\` sends (every ref wanted, done) POSTed with curl through the same TLS front, the answer read to the end and thrown away (${results["clone.serve.runs"]} rounds), so no index-pack competes for the 2 cores: what a mirror host sees when its clients are other machines. serve.pack_cache_hit = the same request answered by the pack-cache daemon from its cache. Ratios = paired medians, http_backend / ours.`,
    `Profile: CPU ms of one more clone per target, every party's processes sampled from /proc every 10 ms (bench/cpuSampler.ts; fcgiwrap's workers ignore SIGCHLD, so their children's CPU never reaches a parent's counters): server = the daemon process plus the upload-pack/pack-objects it ran (ours), or fcgiwrap plus git-http-backend/upload-pack/pack-objects (http_backend); nginx = the TLS proxy; client = git clone, git-remote-https, index-pack (for file://, the upload-pack it runs too). Client and servers share the same 2 cores, so on this machine every CPU ms of the server side is a ms the client waits. The daemon does not relay the pack: for a POST to git-upload-pack it sends the 200 and its headers, then runs git with the client's socket as its stdout (sync/serve/git/handOff.ts), as git-http-backend writes into fcgiwrap; what is left of the daemon's own share is its three spawns per v2 clone (fork of a ~90 MB process: ~5 ms CPU each) and the HTTP handling.`,
  ].join("\n\n");
  return { results, notes, goals: { "clone.ratio_vs_http_backend": ">= 1" } };
}

export const cloneBenchmark: Benchmark = {
  name: "clone",
  summary: "clone of a ~170k-object repository: ours (nginx TLS -> daemon) vs nginx + git-http-backend vs file://",
  run,
};
