/**
 * The ref moves a webhook announces (Bitbucket's `changes`: refId, fromHash, toHash), kept per
 * repository until its next sync job takes them, so the job can fetch exactly those tips
 * (engine.ts, the webhook fast path). Pure.
 */
import type { RefMove } from "../store/repoStore";

export interface ChangeLike {
  refId: string;
  fromHash?: string;
  toHash?: string;
  type?: string;
}

const OID = /^([0-9a-f]{40}|[0-9a-f]{64})$/;

/** The moves of one webhook, or "unknown" when any change lacks usable hashes (then: a full fetch). */
export function movesFromChanges(changes: readonly ChangeLike[] | undefined): RefMove[] | "unknown" {
  if (!changes || changes.length === 0) return "unknown";
  const moves: RefMove[] = [];
  for (const c of changes) {
    const old = c.fromHash?.toLowerCase();
    const nu = c.toHash?.toLowerCase();
    if (!old || !nu || !OID.test(old) || !OID.test(nu) || old.length !== nu.length || !c.refId.startsWith("refs/")) return "unknown";
    moves.push({ ref: c.refId, old, new: nu });
  }
  return moves;
}

/**
 * Two webhooks for one repository before its sync ran: chain them ref by ref (A->B then B->C
 * is A->C). Anything that does not chain (reordered or missed webhooks) is "unknown".
 */
export function mergeMoves(earlier: RefMove[] | "unknown" | undefined, later: RefMove[] | "unknown"): RefMove[] | "unknown" {
  if (earlier === undefined) return later;
  if (earlier === "unknown" || later === "unknown") return "unknown";
  const byRef = new Map(earlier.map((m) => [m.ref, { ...m }]));
  for (const m of later) {
    const prev = byRef.get(m.ref);
    if (!prev) byRef.set(m.ref, { ...m });
    else if (prev.new === m.old) prev.new = m.new;
    else return "unknown";
  }
  return [...byRef.values()].filter((m) => m.old !== m.new);
}
