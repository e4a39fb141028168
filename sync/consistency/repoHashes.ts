/**
 * Per-repository hashes in the shape of Bitbucket mirroring's `repo-hashes`: a content hash
 * over the refs the mirror serves and a metadata hash over what describes the repository (its
 * project, slug and default branch). Two copies with equal hashes serve the same refs; tools
 * compare the mirror's with a hash computed from the primary's refs. Pure.
 */
import { createHash } from "node:crypto";
import type { RepoId } from "../types";
import { contentHash } from "../upstream/refFilter";

export interface RepoRefs {
  /** refname -> object id (no peeled `^{}` entries, no HEAD). */
  refs: Map<string, string>;
  /** HEAD's symbolic target (`refs/heads/main`), if HEAD is symbolic. */
  headTarget?: string;
}

export interface RepoHashes {
  projectKey: string;
  slug: string;
  /** SHA-256 (hex) over the served refs: see contentHash in refFilter.ts. */
  contentHash: string;
  /** SHA-256 (hex) over project, slug and HEAD's target: see metadataHash. */
  metadataHash: string;
  /** HEAD's target (the default branch), null when HEAD is detached or missing. */
  defaultBranch: string | null;
  /** Refs counted in the content hash. */
  refs: number;
}

/**
 * SHA-256 over `project <KEY>\nslug <slug>\nHEAD <target>\n` (an empty target when HEAD is
 * not symbolic). A renamed repository or a changed default branch changes it; refs do not.
 */
export function metadataHash(id: RepoId, headTarget: string | undefined): string {
  return createHash("sha256").update(`project ${id.project}\nslug ${id.slug}\nHEAD ${headTarget ?? ""}\n`).digest("hex");
}

export function repoHashes(id: RepoId, r: RepoRefs, keep: (ref: string) => boolean): RepoHashes {
  let kept = 0;
  for (const name of r.refs.keys()) if (keep(name)) kept++;
  return {
    projectKey: id.project,
    slug: id.slug,
    contentHash: contentHash(r.refs, keep),
    metadataHash: metadataHash(id, r.headTarget),
    defaultBranch: r.headTarget ?? null,
    refs: kept,
  };
}
