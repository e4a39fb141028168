/**
 * Which refs a mirror keeps, and the fingerprint that tells "the primary has changed"
 * without fetching (as grokmirror and GitLab Geo do). Pure functions.
 */
import { createHash } from "node:crypto";

/** Glob-ish ref patterns as git refspecs use them: one `*` matches any run of characters. */
export function refPatternToRegExp(pattern: string): RegExp {
  const escaped = pattern.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${escaped.join(".*")}$`);
}

export function makeRefFilter(excludePatterns: readonly string[]): (ref: string) => boolean {
  const res = excludePatterns.map(refPatternToRegExp);
  return (ref) => ref.startsWith("refs/") && !res.some((re) => re.test(ref));
}

/** The fetch refspecs for a mirror: everything, minus excluded patterns (negative refspecs). */
export function mirrorRefspecs(excludePatterns: readonly string[]): string[] {
  return ["+refs/*:refs/*", ...excludePatterns.map((p) => `^${p}`)];
}

/**
 * A stable digest of a repository's mirrored state: kept refs and HEAD's target. The same
 * function is applied to the primary's advertisement and to the local refs after a fetch,
 * so equal fingerprints mean there is nothing to fetch.
 */
export function fingerprint(refs: Iterable<[string, string]>, headTarget: string | undefined, keep: (ref: string) => boolean): string {
  const lines: string[] = [];
  for (const [name, oid] of refs) if (keep(name)) lines.push(`${oid} ${name}`);
  lines.sort();
  const h = createHash("sha256");
  h.update(`HEAD ${headTarget ?? ""}\n`);
  for (const l of lines) h.update(l + "\n");
  return h.digest("hex");
}
