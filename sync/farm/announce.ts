/**
 * The farm's announcement: "these refs of this repository are about to be served by node
 * <origin>". Shape, parsing and the pure decisions around it.
 */
import { z } from "zod";
import type { RefMove } from "../store/repoStore";
import { isValidRepoId } from "../repoName";
import { parseRepoKey, RepoKey } from "../types";

/** Bounds of what a peer says about itself (node id as mirror.farm.nodeId, the run's id). */
export const MAX_NODE_ID_LENGTH = 128;
export const MAX_INSTANCE_ID_LENGTH = 64;

export const ANNOUNCE_PATH = "/farm/announce";
/** Largest announcement body (a push of many refs); beyond it the moves are left out (a full sync). */
export const ANNOUNCE_MAX_BODY = 256 * 1024;
export const ANNOUNCE_MAX_MOVES = 1000;

export interface Announcement {
  repo: RepoKey;
  /** The ref moves (old -> new; all-zero = created/deleted); absent: "something changed", a full sync. */
  moves?: RefMove[];
  /** The announcing node's id (mirror.farm.nodeId). */
  origin: string;
  /** The announcing daemon's run (random per start): tells a node its own announcement even when ids collide. */
  instance?: string;
}

const OID = /^([0-9a-f]{40}|[0-9a-f]{64})$/;
const move = z.object({ ref: z.string().min(6).max(1024).startsWith("refs/"), old: z.string().regex(OID), new: z.string().regex(OID) });
const schema = z.object({
  repo: z.string().max(300),
  moves: z.array(move).max(ANNOUNCE_MAX_MOVES).optional(),
  origin: z.string().min(1).max(MAX_NODE_ID_LENGTH),
  instance: z.string().max(MAX_INSTANCE_ID_LENGTH).optional(),
});

/** A received body -> an announcement, or what is wrong with it. Pure. */
export function parseAnnouncement(body: string): Announcement | { problem: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    return { problem: "body is not JSON" };
  }
  const r = schema.safeParse(raw);
  if (!r.success) return { problem: r.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ") };
  const id = r.data.repo.includes("/") ? parseRepoKey(r.data.repo) : undefined;
  if (!id || !isValidRepoId(id)) return { problem: "repo: not PROJECT/slug" };
  return { repo: r.data.repo, moves: r.data.moves, origin: r.data.origin, ...(r.data.instance !== undefined ? { instance: r.data.instance } : {}) };
}

/** The body a node sends (moves beyond the cap are dropped: the peer then syncs fully). Pure. */
export function announcementBody(repo: RepoKey, moves: readonly RefMove[] | undefined, origin: string, instance?: string): Announcement {
  return { repo, ...(moves && moves.length > 0 && moves.length <= ANNOUNCE_MAX_MOVES ? { moves: [...moves] } : {}), origin, ...(instance !== undefined ? { instance } : {}) };
}

/**
 * The moves from the refs a node holds to the refs it is about to hold (created and deleted
 * refs with an all-zero side). Pure.
 */
export function movesBetween(held: ReadonlyMap<string, string>, next: ReadonlyMap<string, string>): RefMove[] {
  const out: RefMove[] = [];
  const zero = (oid: string) => "0".repeat(oid.length);
  for (const [ref, nu] of next) {
    const old = held.get(ref);
    if (old !== nu) out.push({ ref, old: old ?? zero(nu), new: nu });
  }
  for (const [ref, old] of held) if (!next.has(ref)) out.push({ ref, old, new: zero(old) });
  return out;
}

/**
 * A node that received an announcement (its moves `announced`, undefined: a full sync) is
 * about to publish `moves` (undefined: a full fetch): covered = the origin already told every
 * peer, so it does not announce again and an announcement never travels in circles. Moves
 * beyond the announced ones (a newer push) are announced. Pure.
 */
export function coveredBy(announced: readonly RefMove[] | undefined, moves: readonly RefMove[] | undefined): boolean {
  // A full fetch on a node that was told: the announcement is what made it run (its fast
  // path fell back), and its origin told everyone already.
  if (announced === undefined || moves === undefined) return true;
  const to = new Map(announced.map((m) => [m.ref, m.new]));
  return moves.every((m) => to.get(m.ref) === m.new);
}
