/**
 * Farm mode wired to the daemon (sync/main.ts calls these): the Daemon's hooks (announce before
 * publish, seed first clones from peers), the Git routes' authorizer admitting the farm token,
 * the serving side's catch-up, and the first-clone byte counts.
 */
import type { Authorizer } from "../auth/authorizer";
import type { DaemonHooks, SyncedNotice } from "../daemon/daemon";
import type { FarmSettings } from "../runtimeOptions";
import type { GitServeOptions } from "../serve/git";
import { Farm } from "./farm";
import { seedSource } from "./seed";
import { farmAuthorizer } from "./token";

export { Farm, FARM_METRIC_NAMES } from "./farm";
export type { FarmStatus, FarmLink } from "./farm";
export { addAnnounceRoute } from "./announceRoute";
export { ANNOUNCE_PATH } from "./announce";

/**
 * `self`: this node's own readiness, as GET /status/ready would answer it (its peers count it
 * up for the scan share only when ready, scanShare.ts).
 */
export function farmDaemonHooks(farm: Farm, s: FarmSettings, self: () => { ready: boolean; draining: boolean }): DaemonHooks {
  return {
    scanShare: (keys) => farm.scanShare(keys, self()),
    beforePublish: async (key, moves) => {
      await farm.announce(key, moves);
    },
    seedSource: (id, env) => {
      const peer = farm.seedPeer();
      return peer && seedSource(peer, id, { serverName: s.serverName, caFile: s.caFile, token: s.token }, env);
    },
  };
}

/** The Git routes' authorizer (or its factory), with the farm token admitted to every repository. */
export function withFarmToken(a: GitServeOptions["authorizer"], token: string): GitServeOptions["authorizer"] {
  return typeof a === "function" ? (m) => farmAuthorizer(a(m), token) : farmAuthorizer(a as Authorizer, token);
}

/** After each sync: a first clone's bytes by source (farm metrics, /status/detail). */
export function recordFirstClones(farm: Farm): (n: SyncedNotice) => void {
  return (n) => {
    const o = n.outcome;
    if (!o.created) return;
    if (o.seed) farm.recordFirstClone("peer", o.seed.bytes, o.bytes);
    else farm.recordFirstClone("primary", o.bytes);
  };
}
