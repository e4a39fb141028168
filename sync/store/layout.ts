/**
 * Where repositories live on disk, and which names are safe to turn into paths.
 * Pure: every path the daemon derives from a name the primary (or a client) gave goes through here.
 */
import * as path from "node:path";
import { RepoId } from "../types";

// Bitbucket project keys: letters, digits, underscore (we also allow "~user" personal projects).
const PROJECT_RE = /^~?[A-Za-z0-9_][A-Za-z0-9_-]{0,127}$/;
// Bitbucket slugs: letters, digits, '-', '_', '.'; never "." or "..".
const SLUG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export function isSafeRepoId(id: RepoId): boolean {
  return PROJECT_RE.test(id.project) && SLUG_RE.test(id.slug) && !id.slug.includes("..") && !id.slug.endsWith(".git") && !id.slug.endsWith(".lock");
}

export function assertSafeRepoId(id: RepoId): void {
  if (!isSafeRepoId(id)) throw new Error(`unsafe repository name ${JSON.stringify(`${id.project}/${id.slug}`)}: refusing to map it to a path`);
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
