/**
 * Which repositories the mirror carries, and which local ones may be deleted. Pure.
 */
import { RepoId, RepoKey, repoKey } from "../types";

/** "ALL" mirrors every project; otherwise only the listed project keys (case-insensitive, as Bitbucket keys are). */
export type ProjectSelection = "ALL" | readonly string[];

export function selectRepos(all: readonly RepoId[], projects: ProjectSelection): RepoId[] {
  if (projects === "ALL") return [...all];
  const wanted = new Set(projects.map((p) => p.toUpperCase()));
  return all.filter((r) => wanted.has(r.project.toUpperCase()));
}

export interface PurgeDecision {
  /** Local repositories no longer in the catalog that may be deleted now. */
  remove: RepoId[];
  /** Set when the guard refused: nothing is removed and this says why and what to do. */
  refused?: string;
}

/**
 * grokmirror's purgeprotect: when one reconcile would delete more than `protectPercent` of the
 * local repositories, something is more likely wrong with the catalog (a permissions change on
 * the primary, a token that lost access) than that half the company deleted its repos.
 * Going from ALL to selected projects is an intended shrink: `selectionChanged` lets it through.
 */
export function decidePurge(local: readonly RepoId[], catalog: readonly RepoId[], o: { protectPercent: number; enabled: boolean; selectionChanged: boolean }): PurgeDecision {
  const keep = new Set<RepoKey>(catalog.map(repoKey));
  const gone = local.filter((r) => !keep.has(repoKey(r)));
  if (gone.length === 0) return { remove: [] };
  if (!o.enabled) return { remove: [], refused: `${gone.length} repositories are no longer on the primary but mirror.purge.enabled=false keeps them` };
  const share = (gone.length / Math.max(1, local.length)) * 100;
  if (share > o.protectPercent && !o.selectionChanged && gone.length > 1) {
    return {
      remove: [],
      refused:
        `refusing to delete ${gone.length} of ${local.length} repositories (${share.toFixed(1)}% > mirror.purge.protect=${o.protectPercent}%): ` +
        `check the primary's catalog and the mirror's access token; if the deletions are real, raise mirror.purge.protect for one reconcile`,
    };
  }
  return { remove: gone };
}
