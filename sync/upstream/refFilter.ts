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
 * The kept refs as `<oid> <refname>` lines, sorted by their UTF-8 bytes (what `LC_ALL=C sort`
 * does), so a hash over them can be recomputed from `git for-each-ref` with shell tools.
 */
export function refLines(refs: Iterable<[string, string]>, keep: (ref: string) => boolean): string[] {
  const lines: string[] = [];
  for (const [name, oid] of refs) if (keep(name)) lines.push(`${oid} ${name}`);
  return lines.map((l) => Buffer.from(l, "utf8")).sort(Buffer.compare).map((b) => b.toString("utf8"));
}

/**
 * A stable digest of a repository's mirrored state: kept refs and HEAD's target. The same
 * function is applied to the primary's advertisement and to the local refs after a fetch,
 * so equal fingerprints mean there is nothing to fetch.
 */
export function fingerprint(refs: Iterable<[string, string]>, headTarget: string | undefined, keep: (ref: string) => boolean): string {
  const h = createHash("sha256");
  h.update(`HEAD ${headTarget ?? ""}\n`);
  for (const l of refLines(refs, keep)) h.update(l + "\n");
  return h.digest("hex");
}

/**
 * The content hash (Bitbucket's repo-hashes "content"): SHA-256 over the kept refs' lines, each
 * ending in "\n", HEAD not included (its target is metadata). Equal to
 * `git for-each-ref --format='%(objectname) %(refname)' | LC_ALL=C sort | sha256sum` for a
 * mirror without excluded refs. Same lines as fingerprint(): one definition of "the refs".
 */
export function contentHash(refs: Iterable<[string, string]>, keep: (ref: string) => boolean): string {
  const h = createHash("sha256");
  for (const l of refLines(refs, keep)) h.update(l + "\n");
  return h.digest("hex");
}
