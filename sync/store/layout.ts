/**
 * Where repositories live on disk, and which names are safe to turn into paths.
 * Pure: every path the daemon derives from a name the primary (or a client) gave goes through here.
 */
import * as path from "node:path";
import { isValidRepoId, repoNameProblem } from "../repoName";
import { RepoId } from "../types";

/** The shared name rule (sync/repoName.ts): a name that passes it is safe as a path component. */
export const isSafeRepoId = isValidRepoId;

export function assertSafeRepoId(id: RepoId): void {
  const problem = repoNameProblem(id);
  if (problem !== undefined) throw new Error(`unsafe repository name ${JSON.stringify(`${id.project}/${id.slug}`)}: ${problem}; refusing to map it to a path`);
}

export function reposRoot(home: string): string {
  return path.join(home, "repos");
}

export function repoDir(home: string, id: RepoId): string {
  assertSafeRepoId(id);
  return path.join(reposRoot(home), id.project, `${id.slug}.git`);
}

/** First clones are built here and renamed into place only when complete. */
export function incomingDir(home: string): string {
  return path.join(home, "repos", ".incoming");
}

/** Removed or corrupt repositories are moved here first (a rename is atomic), then deleted. */
export function trashDir(home: string): string {
  return path.join(home, "repos", ".trash");
}

export const FINGERPRINT_FILE = "smart-mirror.fingerprint";
