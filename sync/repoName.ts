/**
 * A repository's name (RepoId and its "PROJECT/slug" key) beside the one rule for the names the
 * mirror accepts: from the catalog (REST or static), from webhooks, from clone URLs, and before
 * any name becomes a path (sync/homeLayout.ts). Pure.
 *
 * - Project keys: Bitbucket's letters, digits and "_" (we also accept "-"), up to 128.
 * - Personal projects: "~" + the user's slug, which Bitbucket builds from the user name and
 *   which may hold "." as well (`~JOHN.DOE`). Bitbucket uses the tilde key everywhere a project
 *   key goes: REST `/rest/api/1.0/projects/~jdoe/repos`, clone URLs `/scm/~jdoe/repo.git` and
 *   `ssh://git@host:7999/~jdoe/repo.git`; so do we (repos/~JDOE/repo.git on disk).
 * - Slugs: letters, digits, "-", "_" and ".", up to 128; not starting with "." and never
 *   holding ".." (no name is ever a dot segment or looks like one after a join), not ending in
 *   ".git" (the layout adds it) or ".lock" (git's lock files).
 */
/** A repository as the primary names it: Bitbucket project key + repository slug. */
export interface RepoId {
  /** Bitbucket project key, e.g. "PROJ" (kept as the primary spells it). */
  project: string;
  /** Repository slug, e.g. "my-repo" (without ".git"). */
  slug: string;
}

/** "PROJ/slug": the key used in maps, logs, metrics labels and the URL layout. */
export type RepoKey = string;

export function repoKey(r: RepoId): RepoKey {
  return `${r.project}/${r.slug}`;
}

export function parseRepoKey(key: RepoKey): RepoId {
  const i = key.indexOf("/");
  if (i <= 0 || i === key.length - 1 || key.indexOf("/", i + 1) !== -1) {
    throw new Error(`not a repository key (want PROJECT/slug): ${JSON.stringify(key)}`);
  }
  return { project: key.slice(0, i), slug: key.slice(i + 1) };
}

const NAME_MAX = 128;
export const PROJECT_KEY_RE = /^[A-Za-z0-9_][A-Za-z0-9_-]{0,127}$/;
const USER_SLUG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const SLUG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** What is wrong with a project key, or undefined. */
export function projectKeyProblem(key: string): string | undefined {
  if (key.startsWith("~")) {
    const user = key.slice(1);
    if (!USER_SLUG_RE.test(user) || user.includes("..")) return `personal project key ${show(key)} must be ~ followed by a user slug (letters, digits, ".", "_" and "-"; no "..")`;
    return undefined;
  }
  if (!PROJECT_KEY_RE.test(key)) return `project key ${show(key)} must be letters, digits, "_" and "-" (at most ${NAME_MAX}), or ~user for a personal project`;
  return undefined;
}

/** What is wrong with a repository slug, or undefined. */
export function slugProblem(slug: string): string | undefined {
  if (!SLUG_RE.test(slug)) return `repository slug ${show(slug)} must be letters, digits, ".", "_" and "-" (at most ${NAME_MAX}, not starting with ".")`;
  if (slug.includes("..")) return `repository slug ${show(slug)} contains ".."`;
  if (slug.endsWith(".git") || slug.endsWith(".lock")) return `repository slug ${show(slug)} ends in ${slug.endsWith(".git") ? ".git" : ".lock"}`;
  return undefined;
}

/** Why the mirror cannot carry `id`, or undefined when it can. */
export function repoNameProblem(id: RepoId): string | undefined {
  return projectKeyProblem(id.project) ?? slugProblem(id.slug);
}

export function isValidRepoId(id: RepoId): boolean {
  return repoNameProblem(id) === undefined;
}

/** Split names into those the mirror can carry and the others, each with its reason. */
export function partitionRepoIds(ids: readonly RepoId[]): { valid: RepoId[]; invalid: Array<{ id: RepoId; problem: string }> } {
  const valid: RepoId[] = [];
  const invalid: Array<{ id: RepoId; problem: string }> = [];
  for (const id of ids) {
    const problem = repoNameProblem(id);
    if (problem === undefined) valid.push(id);
    else invalid.push({ id, problem });
  }
  return { valid, invalid };
}

/** Quoted and bounded: names come from the primary or a client and end up in logs. */
function show(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 77)}...` : s);
}
