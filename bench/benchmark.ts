/**
 * What a benchmark module provides to the runner (bench/run.ts), and the checks every
 * benchmark uses to make sure it measured a mirror that really worked.
 */
import type { InProcessMirror } from "../testbed/inProcessMirror";
import type { MetricValue } from "./results";

export interface BenchContext {
  /** SMART_MIRROR_BENCH_SCALE (1 = the published size). */
  scale: number;
  log(msg: string): void;
}

export interface BenchOutcome {
  /** Flat metric names (`reconcile.ours_ms`), ours and the baseline side by side, and the ratio. */
  results: Record<string, MetricValue>;
  /** How it was measured, what was scaled, what the numbers mean. */
  notes: string;
  goals?: Record<string, string>;
}

/** One part of a benchmark that runs several (reliability: kills, ENOSPC, hostile requests, slow bodies). */
export interface BenchSection {
  name: string;
  run(ctx: BenchContext): Promise<Omit<BenchOutcome, "goals">>;
}

export interface Benchmark {
  name: string;
  /** One line for `bench/run.ts --help`. */
  summary: string;
  run(ctx: BenchContext): Promise<BenchOutcome>;
}

/** Throw unless the in-process mirror holds every repository of its catalog, nothing failing. */
export function assertAllSynced(m: InProcessMirror, expected: number, what: string): void {
  const s = m.board.snapshot();
  if (s.byState.synced !== expected || s.facts.totalRepos !== expected || s.byState.failing > 0) {
    throw new Error(`${what}: expected ${expected} synced repositories, board says ${JSON.stringify({ byState: s.byState, total: s.facts.totalRepos, lastError: s.primary.lastError })}`);
  }
}

/** Throw unless the last reconcile checked `expected` repositories, found none changed, and succeeded. */
export function assertQuietReconcile(m: InProcessMirror, expected: number, what: string): void {
  const r = m.board.snapshot().lastReconcile;
  if (!r || r.result !== "ok" || r.checked !== expected || r.changed !== 0) {
    throw new Error(`${what}: expected a no-change reconcile of ${expected} repositories, got ${JSON.stringify(r)}`);
  }
}
