/**
 * clone: one full clone of a large repository (test/bench/largeRepo.ts defaults: ~10k commits,
 * ~170k objects, ~25 MB packed) through the mirror — TLS, nginx with the rendered site, the
 * built daemon, git upload-pack — against nginx + fcgiwrap + git-http-backend serving the same
 * directory with the same TLS and streaming settings, and against `git clone --no-local
 * file://` of it (git's own transport, no HTTP at all). Runs alternate between the three
 * (the order rotates every round); each reported time is the median of N.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { DEFAULT_LARGE_REPO_PARAMS } from "../test/bench/largeRepo";
import { tempDir } from "../test/bench/resources";
import { BenchContext, BenchOutcome, Benchmark } from "./benchmark";
import { HISTORY_REPO_PARAMS } from "./initialSync";
import { scaled } from "./scale";
import { CloneProfile, profiledClone, serveClones, TargetName, timedClone, verifyTargets } from "./servedClones";
import { median, ratio, round } from "./stats";

const FULL_RUNS = 5;
const ORDER: TargetName[] = ["ours", "http_backend", "file"];

/** Round r's order: rotated, so no target always runs first (cold) or right after another. */
export function rotation<T>(items: readonly T[], r: number): T[] {
  const k = r % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

async function run(ctx: BenchContext): Promise<BenchOutcome> {
  const runs = scaled(FULL_RUNS, ctx.scale, 1);
  // Below scale 1 (quick checks) the medium repository stands in: the large one's first sync
  // alone takes minutes.
  const params = ctx.scale >= 1 ? DEFAULT_LARGE_REPO_PARAMS : HISTORY_REPO_PARAMS;
  const s = await serveClones(params, ctx.log);
  const work = tempDir("clones");
  ctx.log(`checking each target clones an exact copy (warms caches too)`);
  await verifyTargets(s, work, ORDER);

  const times: Record<TargetName, number[]> = { ours: [], http_backend: [], file: [] };
  for (let r = 0; r < runs; r++) {
    for (const name of rotation(ORDER, r)) {
      const dest = path.join(work, `${name}-${r}.git`);
      const res = await timedClone(s.targets[name], dest);
      if (!res.ok) throw new Error(`${name}: clone ${r + 1} failed: ${res.error}`);
      times[name].push(res.ms);
      ctx.log(`round ${r + 1}/${runs}: ${name} ${Math.round(res.ms)} ms`);
      await fs.promises.rm(dest, { recursive: true, force: true });
    }
  }
  ctx.log("profile: one more clone each, CPU of every party sampled from /proc");
  const prof = {} as Record<TargetName, CloneProfile>;
  for (const name of ORDER) prof[name] = await profiledClone(s, name, path.join(work, `profile-${name}.git`));

  const ms = (n: TargetName) => median(times[n]);
  const results = {
    "clone.objects": s.stats.objects,
    "clone.pack_mb": round(s.packBytes / 2 ** 20, 1),
    "clone.runs": runs,
    "clone.ours_ms": Math.round(ms("ours")),
    "clone.http_backend_ms": Math.round(ms("http_backend")),
    "clone.file_ms": Math.round(ms("file")),
    "clone.ratio_vs_http_backend": ratio(ms("http_backend"), ms("ours"), 2),
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
  };
  const p = params;
  const notes = [
    `One repository made by test/bench/largeRepo.ts (${p.commits} commits on main, ${p.branches} branches, ${p.files} files, a tag every ${p.tagEvery} commits: ${s.stats.objects} objects, ${results["clone.pack_mb"]} MB packed on the mirror) on a bench primary, synced by the built daemon (node dist/smart-mirror.js run) and served from that one directory three ways: ours = git -> TLS -> nginx (the site components/render/nginx.ts renders, worker_processes = cores) -> unix socket -> daemon -> git upload-pack; http_backend = git -> TLS -> nginx (same certificate, TLS and streaming settings) -> unix socket -> fcgiwrap (${s.slots} workers, the daemon's slot count) -> git-http-backend -> git upload-pack; file = \`git clone --no-local file://\` of the directory (git's local transport: upload-pack over a pipe, no HTTP, no TLS).`,
    `Each run is \`git clone --mirror --quiet\` (all refs, no checkout) into a fresh directory, protocol v2 (the client's default); ${runs} rounds, the order of the three rotating each round; medians reported (min/max for ours and http_backend beside them). Every target was first checked to clone an exact copy (refs, HEAD, every object) of the primary's repository.`,
    `ratio_vs_http_backend = http_backend_ms / ours_ms (>= 1: ours is not slower); ratio_vs_file = file_ms / ours_ms. The repository is served as the daemon leaves it after its first sync (the pack as fetched, no bitmap until its scheduled maintenance), for all three alike.`,
    `Profile: CPU ms of one more clone per target, every party's processes sampled from /proc every 10 ms (bench/cpuSampler.ts; fcgiwrap's workers ignore SIGCHLD, so their children's CPU never reaches a parent's counters): server = the daemon process plus the upload-pack/pack-objects it ran (ours), or fcgiwrap plus git-http-backend/upload-pack/pack-objects (http_backend); nginx = the TLS proxy; client = git clone, git-remote-https, index-pack (for file://, the upload-pack it runs too). Client and servers share the same 2 cores.`,
  ].join("\n\n");
  return { results, notes, goals: { "clone.ratio_vs_http_backend": ">= 1" } };
}

export const cloneBenchmark: Benchmark = {
  name: "clone",
  summary: "clone of a ~170k-object repository: ours (nginx TLS -> daemon) vs nginx + git-http-backend vs file://",
  run,
};
