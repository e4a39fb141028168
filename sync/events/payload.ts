/**
 * The "repository synchronized" event the mirror sends after a sync that changed refs: the
 * shape of Bitbucket Data Center's `mirror:repo_synchronized` webhook ("Event payload",
 * Mirror synchronized: eventKey, date, mirrorServer {id, name}, syncType, refLimitExceeded,
 * repository, changes [{ref {id, displayId, type}, refId, fromHash, toHash, type}]), so a
 * receiver written for a Bitbucket mirror reads ours unchanged. Pure functions.
 */
import type { RepoId } from "../types";

export const SYNCED_EVENT_KEY = "mirror:repo_synchronized";

/** Git's all-zero name: Bitbucket's fromHash of an added ref and toHash of a deleted one. */
export const ZERO_SHA = "0000000000000000000000000000000000000000";

/**
 * At most this many changes in one event; beyond it `changes` is empty and `refLimitExceeded`
 * true, as Bitbucket does ("the list of changes will be empty because it exceeded the limit of
 * refs that can be included"). A first clone of a repository with 100k tags must not become a
 * 10 MB POST to every subscriber.
 */
export const MAX_EVENT_CHANGES = 500;

export interface RefChange {
  refId: string;
  /** ZERO_SHA when the ref was added. */
  fromHash: string;
  /** ZERO_SHA when the ref was deleted. */
  toHash: string;
  type: "ADD" | "UPDATE" | "DELETE";
}

/** The ref changes from `before` to `after` (name -> object), sorted by ref name. */
export function diffRefs(before: ReadonlyMap<string, string>, after: ReadonlyMap<string, string>): RefChange[] {
  const out: RefChange[] = [];
  for (const [refId, toHash] of after) {
    const fromHash = before.get(refId);
    if (fromHash === undefined) out.push({ refId, fromHash: ZERO_SHA, toHash, type: "ADD" });
    else if (fromHash !== toHash) out.push({ refId, fromHash, toHash, type: "UPDATE" });
  }
  for (const [refId, fromHash] of before) if (!after.has(refId)) out.push({ refId, fromHash, toHash: ZERO_SHA, type: "DELETE" });
  return out.sort((a, b) => (a.refId < b.refId ? -1 : a.refId > b.refId ? 1 : 0));
}

/** Bitbucket's ref object: BRANCH and TAG with the short name; other refs keep their full name. */
export function refOf(refId: string): { id: string; displayId: string; type: "BRANCH" | "TAG" } {
  if (refId.startsWith("refs/tags/")) return { id: refId, displayId: refId.slice("refs/tags/".length), type: "TAG" };
  const displayId = refId.startsWith("refs/heads/") ? refId.slice("refs/heads/".length) : refId;
  return { id: refId, displayId, type: "BRANCH" };
}

export interface SyncedEventInput {
  mirror: { id: string; name: string };
  repo: RepoId;
  /** When the sync finished (ms since epoch). */
  at: number;
  /** "snapshot": the copy was made whole (first clone, reclone); "incremental": a fetch into it. */
  syncType: "snapshot" | "incremental";
  changes: readonly RefChange[];
  /** The mirror's clone URL of the repository (links.clone, as Bitbucket's repository object has). */
  cloneUrl?: string;
}

export interface SyncedEvent {
  eventKey: typeof SYNCED_EVENT_KEY;
  date: string;
  mirrorServer: { id: string; name: string };
  syncType: "snapshot" | "incremental";
  refLimitExceeded: boolean;
  repository: {
    slug: string;
    /** Bitbucket has a numeric id; the mirror knows none, so this is the "PROJECT/slug" key. */
    id: string;
    name: string;
    scmId: "git";
    project: { key: string; name: string };
    links?: { clone: Array<{ href: string; name: string }> };
  };
  changes: Array<{ ref: ReturnType<typeof refOf>; refId: string; fromHash: string; toHash: string; type: RefChange["type"] }>;
}

/**
 * Bitbucket's date format in its payloads: ISO 8601 with a numeric offset and no fraction,
 * e.g. 2026-12-03T01:57:43+0000 (the mirror's clock is reported in UTC).
 */
export function bitbucketDate(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "+0000");
}

export function syncedEvent(i: SyncedEventInput, maxChanges = MAX_EVENT_CHANGES): SyncedEvent {
  const exceeded = i.changes.length > maxChanges;
  return {
    eventKey: SYNCED_EVENT_KEY,
    date: bitbucketDate(i.at),
    mirrorServer: { id: i.mirror.id, name: i.mirror.name },
    syncType: i.syncType,
    refLimitExceeded: exceeded,
    repository: {
      slug: i.repo.slug,
      id: `${i.repo.project}/${i.repo.slug}`,
      name: i.repo.slug,
      scmId: "git",
      project: { key: i.repo.project, name: i.repo.project },
      ...(i.cloneUrl ? { links: { clone: [{ href: i.cloneUrl, name: "http" }] } } : {}),
    },
    changes: exceeded ? [] : i.changes.map((c) => ({ ref: refOf(c.refId), refId: c.refId, fromHash: c.fromHash, toHash: c.toHash, type: c.type })),
  };
}
