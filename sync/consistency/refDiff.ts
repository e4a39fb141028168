/**
 * What differs between the primary's refs and the mirror's copy of one repository, after the
 * mirror's ref filter (refs the mirror does not keep are not compared). Pure; `verify` prints it.
 */
import type { RepoRefs } from "./repoHashes";

export interface RefChange {
  ref: string;
  primary: string;
  mirror: string;
}

export interface RefDiff {
  /** On the primary, not on the mirror. */
  missing: string[];
  /** On the mirror, not on the primary. */
  extra: string[];
  /** On both, naming different objects. */
  differing: RefChange[];
  /** HEAD's target, when it differs (default branch changed on the primary). */
  head?: { primary: string | null; mirror: string | null };
  /** The mirror has no copy of the repository at all (every primary ref is missing). */
  absent: boolean;
  equal: boolean;
}

/** `mirror` undefined: the repository is not on the mirror. Lists come sorted. */
export function diffRefs(primary: RepoRefs, mirror: RepoRefs | undefined, keep: (ref: string) => boolean): RefDiff {
  const local = mirror?.refs ?? new Map<string, string>();
  const missing: string[] = [];
  const extra: string[] = [];
  const differing: RefChange[] = [];
  for (const [ref, oid] of primary.refs) {
    if (!keep(ref)) continue;
    const mine = local.get(ref);
    if (mine === undefined) missing.push(ref);
    else if (mine !== oid) differing.push({ ref, primary: oid, mirror: mine });
  }
  for (const ref of local.keys()) if (keep(ref) && !primary.refs.has(ref)) extra.push(ref);
  missing.sort();
  extra.sort();
  differing.sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0));
  // An empty repository on the primary advertises no HEAD: nothing to compare then.
  const headDiffers = mirror !== undefined && primary.headTarget !== undefined && primary.headTarget !== mirror.headTarget;
  const d: RefDiff = { missing, extra, differing, absent: mirror === undefined, equal: false };
  if (headDiffers) d.head = { primary: primary.headTarget ?? null, mirror: mirror.headTarget ?? null };
  d.equal = !d.absent && missing.length === 0 && extra.length === 0 && differing.length === 0 && !headDiffers;
  return d;
}
