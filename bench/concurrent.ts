/**
 * concurrent: a CI fleet starting at once — 16, then 32 simultaneous `git clone`s of the same
 * repository (largeRepo.ts's medium one: ~2,000 commits, ~28,000 objects, ~4 MB packed)
 * through the mirror (TLS -> nginx -> daemon -> git upload-pack) against nginx + fcgiwrap +
 * git-http-backend serving the same directory with as many git processes at once as the
 * daemon allows (its upload-pack slots; the rest queue on both sides). Every clone must
 * succeed with the primary's refs; wall time of the whole batch, clones per second, the
 * daemon's peak memory.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { listRefs } from "../test/bench/repos";
import { tempDir } from "../test/bench/resources";
import { BenchContext, BenchOutcome, Benchmark } from "./benchmark";
import { rotation } from "./clone";
import { memoryOf } from "./daemonRss";
import { HISTORY_REPO_PARAMS } from "./initialSync";
import { scaled } from "./scale";
import { CloneTarget, profiledClone, sameRefs, serveClones, TargetName, timedClone, verifyTargets } from "./servedClones";
import { median, quantile, ratio, round } from "./stats";
import { MetricValue } from "./results";

const LEVELS = [16, 32] as const;
const FULL_ROUNDS = 3;
const TARGETS: TargetName[] = ["ours", "http_backend"];

export interface Batch {
  wallMs: number;
  /** Every clone exited 0 and holds exactly the primary's refs. */
  allOk: boolean;
  failures: string[];
  latencies: number[];
}

/** `n` clones of one target started together; resolves when the last one ends. */
export async function cloneBatch(t: CloneTarget, n: number, primaryRefs: Map<string, string>, dir: string): Promise<Batch> {
  const dests = Array.from({ length: n }, (_, i) => path.join(dir, `${t.name}-${i}.git`));
  const t0 = performance.now();
  const runs = await Promise.all(dests.map((d) => timedClone(t, d)));
  const wallMs = performance.now() - t0;
  const failures: string[] = [];
  for (let i = 0; i < n; i++) {
    if (!runs[i].ok) failures.push(`clone ${i}: ${runs[i].error}`);
    else if (!(await sameRefs(primaryRefs, dests[i]))) failures.push(`clone ${i}: refs differ from the primary's`);
  }
  await Promise.all(dests.map((d) => fs.promises.rm(d, { recursive: true, force: true })));
  return { wallMs, allOk: failures.length === 0, failures, latencies: runs.map((r) => r.ms) };
}

/** Forget a process's peak RSS (VmHWM), so the next reading is the peak from now on. */
function resetPeakRss(pid: number): void {
  fs.writeFileSync(`/proc/${pid}/clear_refs`, "5");
}

async function run(ctx: BenchContext): Promise<BenchOutcome> {
  const rounds = scaled(FULL_ROUNDS, ctx.scale, 1);
  const s = await serveClones(HISTORY_REPO_PARAMS, ctx.log);
  const work = tempDir("concurrent");
  await verifyTargets(s, work, TARGETS);
  const primaryRefs = await listRefs(s.primaryDir);
  const daemonPid = s.mirror.daemon.child.pid as number;
  const prof = { ours: await profiledClone(s, "ours", path.join(work, "profile-ours.git")), http_backend: await profiledClone(s, "http_backend", path.join(work, "profile-hb.git")) };

  const results: Record<string, MetricValue> = {
    "concurrent.objects": s.stats.objects,
    "concurrent.pack_mb": round(s.packBytes / 2 ** 20, 1),
    "concurrent.rounds": rounds,
    "concurrent.slots": s.slots,
    "concurrent.profile.ours_server_cpu_ms_per_clone": Math.round(prof.ours.serverGit),
    "concurrent.profile.ours_nginx_cpu_ms_per_clone": Math.round(prof.ours.nginx),
    "concurrent.profile.http_backend_server_cpu_ms_per_clone": Math.round(prof.http_backend.serverGit),
    "concurrent.profile.http_backend_nginx_cpu_ms_per_clone": Math.round(prof.http_backend.nginx),
    "concurrent.profile.client_cpu_ms_per_clone": Math.round(prof.ours.client),
  };
  const summary: string[] = [];
  for (const level of LEVELS) {
    const batches: Record<TargetName, Batch[]> = { ours: [], http_backend: [], file: [] };
    resetPeakRss(daemonPid);
    for (let r = 0; r < rounds; r++) {
      for (const name of rotation(TARGETS, r)) {
        const b = await cloneBatch(s.targets[name], level, primaryRefs, work);
        batches[name].push(b);
        ctx.log(`${level} at once, round ${r + 1}/${rounds}: ${name} ${Math.round(b.wallMs)} ms, ${b.allOk ? "all ok" : `${b.failures.length} FAILED: ${b.failures[0]}`}`);
      }
    }
    const peak = memoryOf(daemonPid).hwmMb;
    const k = `concurrent${level}`;
    const wall = (n: TargetName) => median(batches[n].map((b) => b.wallMs));
    const all = (n: TargetName) => batches[n].every((b) => b.allOk);
    const lat = batches.ours.flatMap((b) => b.latencies);
    Object.assign(results, {
      [`${k}.all_ok`]: all("ours"),
      [`${k}.http_backend_all_ok`]: all("http_backend"),
      [`${k}.ours_wall_ms`]: Math.round(wall("ours")),
      [`${k}.http_backend_wall_ms`]: Math.round(wall("http_backend")),
      [`${k}.throughput_ratio_vs_http_backend`]: ratio(wall("http_backend"), wall("ours"), 2),
      [`${k}.ours_clones_per_s`]: round((level * 1000) / wall("ours"), 2),
      [`${k}.http_backend_clones_per_s`]: round((level * 1000) / wall("http_backend"), 2),
      [`${k}.ours_clone_p50_ms`]: Math.round(quantile(lat, 0.5)),
      [`${k}.ours_clone_max_ms`]: Math.round(Math.max(...lat)),
      [`${k}.daemon_rss_mb`]: round(peak),
    });
    const failed = [...batches.ours, ...batches.http_backend].flatMap((b) => b.failures);
    if (failed.length) summary.push(`${level} at once: ${failed.length} failed clone(s), e.g. ${failed[0]}`);
  }

  const p = HISTORY_REPO_PARAMS;
  const notes = [
    `One repository made by test/bench/largeRepo.ts (${p.commits} commits, ${p.branches} branches, ${p.files} files: ${s.stats.objects} objects, ${results["concurrent.pack_mb"]} MB packed on the mirror) on a bench primary, synced by the built daemon and served from that one directory by ours (git -> TLS -> nginx with the rendered site -> unix socket -> daemon -> git upload-pack) and by nginx (same certificate, TLS and streaming settings) -> fcgiwrap -> git-http-backend. Both run at most ${s.slots} git upload-packs at once (the daemon's default slots; fcgiwrap preforks as many workers) and queue the rest.`,
    `A batch starts N \`git clone --mirror --quiet\` at the same moment (protocol v2) and ends when the last one does; every clone must exit 0 and hold exactly the primary's refs (all_ok; http_backend_all_ok for the baseline), and each target was first checked to clone an exact copy (every object) of the primary's repository. ${rounds} batches per target and level, alternating which target goes first; medians of the batch wall times. throughput_ratio_vs_http_backend = http_backend wall / ours wall (> 1: ours clears the batch sooner). clones_per_s = N / wall.`,
    `daemon_rss_mb: peak RSS (VmHWM, reset before each level) of the daemon process (node; git runs in its own processes). Profile: CPU ms of one clone on its own (sampled from /proc, bench/cpuSampler.ts) — server side (daemon + upload-pack + pack-objects, or fcgiwrap + git-http-backend + upload-pack + pack-objects), nginx, and the client (git, git-remote-https, index-pack). Clients and servers share the same 2 cores, so a batch's wall time is bounded by the sum of that CPU over the batch, whoever serves.`,
    ...summary,
  ].join("\n\n");
  return { results, notes, goals: { "concurrent32.throughput_ratio_vs_http_backend": ">= 1" } };
}

export const concurrentBenchmark: Benchmark = {
  name: "concurrent",
  summary: "16 and 32 simultaneous clones of one repository: ours vs nginx + git-http-backend; all ok, wall, RSS",
  run,
};
