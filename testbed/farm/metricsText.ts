/**
 * One sample of a Prometheus text exposition, by name and exact labels: what the farm's
 * test and bench read from a node's /metrics (seed bytes by source, reconcile rounds). Pure.
 */
export function sample(exposition: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
    .join(",");
  for (const line of exposition.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = (m[2] ?? "")
      .split(",")
      .filter(Boolean)
      .sort()
      .join(",");
    if (got === want) return Number(m[3]);
  }
  return undefined;
}

/** The sum of every series of a metric, whatever its labels (e.g. a histogram's _count by result). */
export function sampleSum(exposition: string, name: string): number {
  let sum = 0;
  for (const line of exposition.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m && m[1] === name) sum += Number(m[2]);
  }
  return sum;
}
