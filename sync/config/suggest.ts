/**
 * "Did you mean ...?" for unknown keys: the closest name by edit distance (case-insensitive,
 * so `setup.baseurl` finds `setup.baseUrl`), or a name ending in the same last segment
 * (`mirror.concurrency` finds `mirror.sync.concurrency`). Pure.
 */

/** Levenshtein distance (insert, delete, substitute: cost 1 each). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

export function closestName(unknown: string, names: readonly string[]): string | undefined {
  const u = unknown.toLowerCase();
  let best: string | undefined;
  let bestDist = Infinity;
  for (const n of names) {
    const d = editDistance(u, n.toLowerCase());
    if (d < bestDist) {
      best = n;
      bestDist = d;
    }
  }
  // Close enough to be a typo: up to a third of the name may differ (at least 3 edits).
  if (best !== undefined && bestDist <= Math.max(3, Math.floor(Math.max(u.length, best.length) / 3))) return best;
  const last = u.split(".").pop() ?? "";
  const sameLast = names.filter((n) => n.toLowerCase().split(".").pop() === last);
  return last.length >= 4 && sameLast.length === 1 ? sameLast[0] : undefined;
}
