/**
 * What `smart-mirror verify` prints, one repository at a time as results arrive: text for
 * people (only what is out of sync, each list cut at a few names), or JSON lines for tools
 * (one object per repository, then a summary). Pure.
 */
import type { RefDiff } from "../consistency/refDiff";
import type { RepoKey } from "../types";

export type RepoVerdict =
  | { repository: RepoKey; status: "equal" }
  | { repository: RepoKey; status: "differs"; diff: RefDiff }
  | { repository: RepoKey; status: "error"; error: string };

export interface Summary {
  repositories: number;
  equal: number;
  differs: number;
  errors: number;
  durationMs: number;
  /** SSH connections opened to the primary for the ref reads (each carries many channels). */
  sshConnections: number;
  /** After --resync: repositories repaired, and those still differing. */
  resynced?: { repaired: number; stillDiffering: number; failed: number; via: "daemon" | "local" };
}

/** Names shown per list in the text form; the counts are always exact. */
export const TEXT_LIST_LIMIT = 20;

const short = (oid: string) => oid.slice(0, 12);

export function counts(d: RefDiff): string {
  const parts = [`${d.missing.length} missing`, `${d.extra.length} extra`, `${d.differing.length} differing`];
  if (d.head) parts.push("HEAD differs");
  return parts.join(", ");
}

function capped<T>(items: readonly T[], line: (t: T) => string): string[] {
  const out = items.slice(0, TEXT_LIST_LIMIT).map(line);
  if (items.length > TEXT_LIST_LIMIT) out.push(`    ... and ${items.length - TEXT_LIST_LIMIT} more`);
  return out;
}

/** Text lines for one repository; none when it is equal. */
export function verdictText(v: RepoVerdict, prefix = ""): string[] {
  if (v.status === "equal") return prefix === "" ? [] : [`${prefix}OK       ${v.repository}: now equal to the primary`];
  if (v.status === "error") return [`${prefix}ERROR    ${v.repository}: ${v.error}`];
  const d = v.diff;
  if (d.absent) return [`${prefix}MISSING  ${v.repository}: not on the mirror (${d.missing.length} refs on the primary)`];
  return [
    `${prefix}DIFFERS  ${v.repository}: ${counts(d)}`,
    ...capped(d.missing, (r) => `    missing on mirror  ${r}`),
    ...capped(d.extra, (r) => `    extra on mirror    ${r}`),
    ...capped(d.differing, (c) => `    differs            ${c.ref}  primary ${short(c.primary)}  mirror ${short(c.mirror)}`),
    ...(d.head ? [`    HEAD               primary ${d.head.primary ?? "(none)"}  mirror ${d.head.mirror ?? "(detached)"}`] : []),
  ];
}

export function verdictJson(v: RepoVerdict, phase: "verify" | "after-resync" = "verify"): string {
  const base = { type: "repository", phase, repository: v.repository, status: v.status };
  if (v.status === "equal") return JSON.stringify(base);
  if (v.status === "error") return JSON.stringify({ ...base, error: v.error });
  const d = v.diff;
  return JSON.stringify({ ...base, absent: d.absent, counts: { missing: d.missing.length, extra: d.extra.length, differing: d.differing.length }, missing: d.missing, extra: d.extra, differing: d.differing, ...(d.head ? { head: d.head } : {}) });
}

export function summaryText(s: Summary): string {
  const lines = [`verified ${s.repositories} repositories in ${s.durationMs} ms over ${s.sshConnections} SSH connection(s) to the primary: ${s.equal} equal, ${s.differs} out of sync, ${s.errors} error(s)`];
  if (s.resynced) lines.push(`resync (${s.resynced.via === "daemon" ? "by the running daemon" : "fetched here, no daemon running"}): ${s.resynced.repaired} repaired, ${s.resynced.stillDiffering} still out of sync, ${s.resynced.failed} failed`);
  return lines.join("\n");
}

export function summaryJson(s: Summary): string {
  return JSON.stringify({ type: "summary", ...s });
}

/** 0: all equal (after a resync: all repaired); 1: some differ; 2: errors (they need a person). */
export function exitCode(s: Summary): 0 | 1 | 2 {
  if (s.errors > 0 || (s.resynced?.failed ?? 0) > 0) return 2;
  const differing = s.resynced ? s.resynced.stillDiffering : s.differs;
  return differing > 0 ? 1 : 0;
}
