/**
 * Small pure helpers for turning samples into the numbers a result file reports.
 */

/** The q-quantile (0..1) of samples, nearest-rank: p99 of 100 samples is the 99th smallest. */
export function quantile(samples: readonly number[], q: number): number {
  if (samples.length === 0) throw new Error("quantile of no samples");
  if (!(q >= 0 && q <= 1)) throw new Error(`quantile must be in 0..1, got ${q}`);
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1];
}

export function median(samples: readonly number[]): number {
  if (samples.length === 0) throw new Error("median of no samples");
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Round to `digits` decimals (results files hold readable numbers, not float noise). */
export function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** baseline / ours, rounded: "how many times faster". */
export function ratio(baseline: number, ours: number, digits = 1): number {
  if (!(ours > 0)) throw new Error(`ratio: ours must be > 0 (got ${ours})`);
  return round(baseline / ours, digits);
}

/**
 * Median of per-round ratios baseline[i] / ours[i] (pure): each round ran both back to back,
 * so a slow minute of a shared machine weighs on both sides of one ratio instead of on one
 * side of a ratio of medians.
 */
export function pairedRatio(baseline: readonly number[], ours: readonly number[], digits = 2): number {
  if (baseline.length !== ours.length || baseline.length === 0) throw new Error(`pairedRatio: need equally many rounds of each (got ${baseline.length} and ${ours.length})`);
  return round(median(baseline.map((b, i) => b / ours[i])), digits);
}

/** Milliseconds since `t0` (a performance.now() value). */
export function since(t0: number): number {
  return performance.now() - t0;
}
