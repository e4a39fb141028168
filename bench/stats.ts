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

/**
 * A distribution-free confidence interval for the median of `samples` (pure): the k-th smallest
 * and k-th largest sample, k the largest rank with P(Binomial(n, 1/2) < k) <= (1 - level) / 2
 * (the sign test's interval). Undefined when n is too small for any interval at that level
 * (n < 6 at 95%).
 */
export function medianInterval(samples: readonly number[], level = 0.95): [number, number] | undefined {
  const n = samples.length;
  const sorted = [...samples].sort((a, b) => a - b);
  const tail = (1 - level) / 2;
  let k = 0;
  let below = 0; // P(X < k+1) = P(X <= k), built up term by term
  let term = 0.5 ** n; // C(n, 0) / 2^n
  for (let j = 0; j < n; j++) {
    below += term;
    if (below > tail) break;
    k = j + 1;
    term = (term * (n - j)) / (j + 1);
  }
  if (k === 0) return undefined;
  return [sorted[k - 1], sorted[n - k]];
}

/** pairedRatio's per-round ratios' 95% interval (medianInterval), rounded like it. */
export function pairedRatioInterval(baseline: readonly number[], ours: readonly number[], digits = 2): [number, number] | undefined {
  if (baseline.length !== ours.length) throw new Error("pairedRatioInterval: need equally many rounds of each");
  const ci = medianInterval(baseline.map((b, i) => b / ours[i]));
  return ci && [round(ci[0], digits), round(ci[1], digits)];
}

/** Milliseconds since `t0` (a performance.now() value). */
export function since(t0: number): number {
  return performance.now() - t0;
}
