/**
 * The metric names a PromQL expression reads, and whether a /metrics exposition has them: so a
 * dashboard or rule naming a metric the daemon does not export (a typo, a renamed metric) fails
 * a test instead of drawing an empty panel or never alerting.
 *
 * A reasonable lexer, not a full PromQL parser: string literals, label matchers `{...}`, range
 * and subquery brackets `[...]` and label lists after by/without/on/ignoring/group_left/
 * group_right are removed; what remains that looks like an identifier and is neither a function
 * call, a keyword nor a number is a metric name.
 */

const KEYWORDS = new Set(["and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "atan2", "inf", "nan"]);

export function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/gi, " ");
  const names = new Set<string>();
  for (const m of stripped.matchAll(/(?<![\w$.])([a-zA-Z_:][\w:]*)(\s*\()?/g)) {
    if (m[2] !== undefined || KEYWORDS.has(m[1].toLowerCase())) continue;
    names.add(m[1]);
  }
  return [...names].sort();
}

/** The series names an exposition offers: every `# TYPE` metric, histograms and summaries with their _bucket/_sum/_count. */
export function exportedNames(exposition: string): Set<string> {
  const out = new Set<string>();
  for (const m of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m;
    out.add(name);
    if (type === "histogram") for (const s of ["_bucket", "_sum", "_count"]) out.add(name + s);
    if (type === "summary") for (const s of ["_sum", "_count"]) out.add(name + s);
  }
  return out;
}

/** Grafana's label_values(metric, label) / label_values(metric{...}, label) / metrics(...) in variable queries. */
export function metricNamesInGrafanaQuery(query: string): string[] {
  const lv = /label_values\(\s*([^,)]+?)\s*,/.exec(query);
  if (lv) return metricNamesIn(lv[1]);
  const qr = /query_result\((.*)\)\s*$/.exec(query);
  return qr ? metricNamesIn(qr[1]) : [];
}
