/**
 * Durations as the properties file writes them: a plain number of seconds ("180", "1.5") or
 * numbers with units ("500ms", "30s", "5m", "1h", "7d", also combined: "1h30m").
 * Pure functions; the config reference documents the same grammar.
 */

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

// Units are lower case on purpose: "5M" would be ambiguous (minutes or months?), so it is refused.
const PLAIN_SECONDS = /^\d+(?:\.\d+)?$/;
const WITH_UNITS = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;
const ONE_PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;

export const DURATION_GRAMMAR = "a number of seconds, or a number with a unit: 500ms, 30s, 5m, 1h, 7d (combinable: 1h30m)";

/** Milliseconds, or undefined when the text is not a duration. */
export function parseDuration(text: string): number | undefined {
  const t = text.trim();
  if (PLAIN_SECONDS.test(t)) return Math.round(Number(t) * 1000);
  if (!WITH_UNITS.test(t)) return undefined;
  let ms = 0;
  for (const m of t.matchAll(ONE_PART)) ms += Number(m[1]) * UNIT_MS[m[2]];
  return Math.round(ms);
}

/** The shortest exact spelling: 180000 -> "3m", 5400000 -> "1h30m", 1500 -> "1s500ms", 0 -> "0s". */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  let rest = Math.round(ms);
  let out = "";
  for (const unit of ["d", "h", "m", "s", "ms"]) {
    const size = UNIT_MS[unit];
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${unit}`;
      rest -= n * size;
    }
  }
  return out;
}
