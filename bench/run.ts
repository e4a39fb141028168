/**
 * `npm run bench [-- NAME...]`: run the benchmarks (all, or the ones named), write
 * bench/results/NAME.json for each, and regenerate bench/results/README.md.
 *
 * Every benchmark runs with the testbed's bookkeeping: its servers, temp dirs and
 * connections are undone by cleanupAll() in a finally, and after each benchmark the leak
 * check (testbed/leaks.ts) must find nothing; a leak fails the run loudly (after sweeping).
 * Exit status: 0 when every benchmark ran and nothing leaked.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import { performance } from "node:perf_hooks";
import { deadRuns, findLeaks, isClean, LeakReport, sweep } from "../testbed/leaks";
import { benchRoot, benchRunId, cleanupAll } from "../testbed/resources";
import { Benchmark, BenchContext } from "./benchmark";
import { ciRaceBenchmark } from "./ciRace";
import { cloneBenchmark } from "./clone";
import { concurrentBenchmark } from "./concurrent";
import { daemonRssBenchmark } from "./daemonRss";
import { farmBenchmark } from "./farmBench";
import { initialSyncBenchmark } from "./initialSync";
import { pushBenchmark } from "./push";
import { lfsBenchmark } from "./lfs";
import { reconcileBenchmark } from "./reconcile";
import { reliabilityBenchmark } from "./reliability";
import { commandFor, machineInfo, RESULTS_DIR, writeReadme, writeResult } from "./results";
import { benchScale, SCALE_ENV } from "./scale";
import { syncLagBenchmark } from "./syncLag";
import { scaleBenchmark } from "./scaleBench";

export const BENCHMARKS: readonly Benchmark[] = [reconcileBenchmark, syncLagBenchmark, initialSyncBenchmark, daemonRssBenchmark, cloneBenchmark, concurrentBenchmark, reliabilityBenchmark, ciRaceBenchmark, pushBenchmark, lfsBenchmark, scaleBenchmark, farmBenchmark];

function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

function usage(): string {
  return [
    "usage: npm run bench [-- NAME...]",
    "",
    ...BENCHMARKS.map((b) => `  ${b.name.padEnd(14)} ${b.summary}`),
    "",
    `${SCALE_ENV}=0.1 runs every benchmark at a tenth of its size (quick check; results say so).`,
  ].join("\n");
}

/** Leftovers of this run: poll a little, since killed process groups take a moment to be reaped. */
async function leaksAfter(runId: string): Promise<LeakReport> {
  let report = findLeaks(runId);
  for (let i = 0; i < 40 && !isClean(report); i++) {
    await new Promise((r) => setTimeout(r, 100));
    report = findLeaks(runId);
  }
  return report;
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args.includes("--help") || args.includes("-h")) {
    process.stdout.write(usage() + "\n");
    return 0;
  }
  const unknown = args.filter((a) => !BENCHMARKS.some((b) => b.name === a));
  if (unknown.length) {
    process.stderr.write(`unknown benchmark(s): ${unknown.join(", ")}\n\n${usage()}\n`);
    return 2;
  }
  const selected = args.length ? BENCHMARKS.filter((b) => args.includes(b.name)) : BENCHMARKS;
  const scale = benchScale();

  // Same bookkeeping as a jest run (testbed/globalSetup.ts): sweep what dead runs left.
  for (const id of deadRuns()) {
    const stale = findLeaks(id);
    if (!isClean(stale)) sweep(stale);
    fs.rmSync(benchRoot(id), { recursive: true, force: true });
  }
  process.env.SMART_MIRROR_BENCH_RUN = benchRunId();
  const runId = benchRunId();
  const machine = machineInfo();
  log(`machine: ${machine}`);
  log(`scale ${scale}; running ${selected.map((b) => b.name).join(", ")}`);

  let failed = 0;
  for (const b of selected) {
    const ctx: BenchContext = { scale, log: (m) => log(`${b.name}: ${m}`) };
    const t0 = performance.now();
    const when = new Date().toISOString();
    const loadBefore = os.loadavg()[0];
    try {
      const outcome = await b.run(ctx);
      // Other work on the machine shows in every number: say how busy it was.
      const load = `Machine load (1-minute average, this benchmark's own processes included) ${loadBefore.toFixed(1)} at the start, ${os.loadavg()[0].toFixed(1)} at the end, on ${os.cpus().length} cores; scale ${scale}.`;
      const notes = `${outcome.notes.trim()}\n\n${load}`;
      const file = writeResult({ benchmark: b.name, command: commandFor(b.name, scale), when, machine, results: outcome.results, notes, ...(outcome.goals ? { goals: outcome.goals } : {}) });
      log(`${b.name}: done in ${Math.round((performance.now() - t0) / 1000)} s, wrote ${file}`);
      for (const [k, v] of Object.entries(outcome.results)) log(`  ${k} = ${v}`);
    } catch (e) {
      failed++;
      log(`${b.name}: FAILED: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    } finally {
      const tc = performance.now();
      try {
        await cleanupAll();
        log(`${b.name}: cleaned up in ${Math.round(performance.now() - tc)} ms`);
      } catch (e) {
        failed++;
        log(`${b.name}: cleanup failed: ${String(e)}`);
      }
    }
    const leaks = await leaksAfter(runId);
    if (!isClean(leaks)) {
      sweep(leaks);
      log(`${b.name}: LEAKED resources (swept now):\n${JSON.stringify(leaks, null, 2)}`);
      failed++;
    }
  }
  fs.rmSync(benchRoot(runId), { recursive: true, force: true });
  const readme = writeReadme(RESULTS_DIR);
  log(`wrote ${readme}`);
  if (failed) log(`${failed} failure(s)`);
  return failed ? 1 : 0;
}

// Bench servers run in their own process groups: on Ctrl-C they would outlive us. Undo first.
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    log(`${sig}: cleaning up`);
    void cleanupAll()
      .catch(() => undefined)
      .finally(() => process.exit(130));
  });
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    log(`bench runner crashed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    void cleanupAll().finally(() => process.exit(1));
  },
);
