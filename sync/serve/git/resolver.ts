/**
 * From the names in a URL to a repository directory the mirror serves. The daemon knows which
 * repositories are in the catalog and complete on disk; this only adds the name rules.
 */
import type { RepoKey } from "../../types";

export interface ServedRepo {
  /** Project key and slug as the catalog spells them (what the primary's REST API is asked about). */
  project: string;
  slug: string;
  /** The bare repository directory. */
  dir: string;
}

/** Names were validated (isValidRepoId) before a resolver sees them. */
export type RepoResolver = (project: string, slug: string) => ServedRepo | undefined;

/**
 * A resolver over the daemon's catalog: `lookup("PROJ/slug")` gives the directory of a served
 * repository (in the catalog AND on disk), else undefined.
 *
 * Project keys are matched case-insensitively, as Bitbucket does: its UI hands out clone URLs
 * with the key in lower case (/scm/proj/repo.git) while the catalog has "PROJ"; personal ones
 * likewise (/scm/~jdoe/repo.git for the catalog's "~JDOE"). Slugs are matched as written.
 */
export function catalogResolver(lookup: (key: RepoKey) => string | undefined): RepoResolver {
  return (project, slug) => {
    const candidates = project === project.toUpperCase() ? [project] : [project, project.toUpperCase()];
    for (const p of candidates) {
      const dir = lookup(`${p}/${slug}`);
      if (dir !== undefined) return { project: p, slug, dir };
    }
    return undefined;
  };
}
