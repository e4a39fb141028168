/**
 * Scan sharing (issue #17): in a farm, each repository's change-detection scan (the reconcile's
 * ls-remote against the primary) is owned by ONE of the nodes currently up, so the primary's
 * scan load stays that of one node however many nodes the farm has. The others learn of the
 * changes the owner's scan finds from its announcement (announce-before-publish, farm.ts), and
 * every node still takes webhooks and does its own first clones.
 *
 * Ownership is rendezvous (highest-random-weight) hashing of (node id, repository key) over the
 * nodes up: every node computes the same owner from the same set without talking, the share is
 * balanced (1/N each), and when a node joins or leaves only the keys it takes or held move
 * (~1/N of them); nothing else is reshuffled, so the scan ledgers' times stay meaningful.
 *
 * Pure: ids and keys in, decisions out. The Farm (farm.ts) supplies the set of nodes up (this
 * node and its peers healthy at their last probe, by their mirror.farm.nodeId).
 */
import { createHash } from "node:crypto";

/**
 * The weight of `node` for `key`: the first 48 bits of sha256(node NUL key) (an exact JS
 * integer). A cryptographic hash so that no choice of names skews the balance; every node,
 * whatever its platform, computes the same number.
 */
export function rendezvousWeight(node: string, key: string): number {
  return createHash("sha256").update(node).update("\0").update(key).digest().readUIntBE(0, 6);
}

/** The node owning `key`'s scan among `nodes` (highest weight, ties to the smaller id); undefined for no node. */
export function scanOwner(key: string, nodes: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestWeight = -1;
  for (const n of nodes) {
    const w = rendezvousWeight(n, key);
    if (w > bestWeight || (w === bestWeight && best !== undefined && n < best)) {
      best = n;
      bestWeight = w;
    }
  }
  return best;
}

/** What this node knows of itself and of one peer, for the decision below. */
export interface ShareSelf {
  /** mirror.farm.nodeId. */
  id: string;
  /** This node's own readiness (GET /status/ready would say 200). */
  ready: boolean;
  /** Draining (SIGTERM, `smart-mirror drain`): about to stop. */
  draining: boolean;
}

export interface SharePeer {
  /** Its node id, once it told us (GET /farm/announce); an anonymous peer cannot share. */
  node?: string;
  /** This node's own entry in the peers file. */
  self: boolean;
  /** Ready at its last probe (peers count it up only then). */
  healthy: boolean;
}

/**
 * Whom this node's reconcile scans:
 * - "all": no farm peer is up (alone, or every peer down or not ready), or this node is
 *   starting (not ready, not draining): a node that was down missed the announcements of that
 *   time, so until it is ready it compares everything it holds with the primary, as a single
 *   mirror does after a restart (its peers do not count it meanwhile, so its share is scanned by
 *   them too: one extra pass per start, not per round).
 * - "share": the keys whose owner among `nodes` is this node. `nodes` are the healthy peers
 *   with a known id, plus this node when it is ready. A draining node is not counted (by the
 *   others either): it scans nothing, its peers cover its share and their announcements keep it
 *   current until it stops.
 */
export type ShareView = { mode: "all"; why: "no_peer_up" | "starting" } | { mode: "share"; self: string; nodes: string[]; counted: boolean };

export function shareView(self: ShareSelf, peers: readonly SharePeer[]): ShareView {
  // Deduplicated and sorted: the same set gives the same view on every node. A peer that was
  // given this node's id merges with it (both then scan the same share: twice, never missed).
  const up = [...new Set(peers.filter((p) => !p.self && p.healthy && p.node !== undefined).map((p) => p.node!))].filter((n) => n !== self.id);
  if (up.length === 0) return { mode: "all", why: "no_peer_up" };
  if (!self.ready && !self.draining) return { mode: "all", why: "starting" };
  const counted = self.ready && !self.draining;
  return { mode: "share", self: self.id, nodes: (counted ? [...up, self.id] : up).sort(), counted };
}

/** Does this node scan `key` under `view`? */
export function ownsScan(view: ShareView, key: string): boolean {
  return view.mode === "all" || (view.counted && scanOwner(key, view.nodes) === view.self);
}

/** A stable text for a view (the share changed when this changes). */
export function viewSignature(view: ShareView): string {
  return view.mode === "all" ? "all" : `${view.counted ? "counted" : "not-counted"}:${view.nodes.join(",")}`;
}
