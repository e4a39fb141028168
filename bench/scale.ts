/**
 * How big a benchmark run is. SMART_MIRROR_BENCH_SCALE=0.1 makes every benchmark ten times
 * smaller (quick checks while developing); the published results are taken at scale 1.
 */

export const SCALE_ENV = "SMART_MIRROR_BENCH_SCALE";

/** Parse the scale; throws a message naming the variable and what it accepts. */
export function parseScale(raw: string | undefined): number {
  if (raw === undefined || raw.trim() === "") return 1;
  const s = Number(raw);
  if (!Number.isFinite(s) || s <= 0 || s > 10) throw new Error(`${SCALE_ENV} must be a number in (0, 10], got ${JSON.stringify(raw)}`);
  return s;
}

export function benchScale(): number {
  return parseScale(process.env[SCALE_ENV]);
}

/** `full` scaled, never below `min` (a handful of samples still makes a percentile). */
export function scaled(full: number, scale: number, min = 1): number {
  return Math.max(min, Math.round(full * scale));
}
