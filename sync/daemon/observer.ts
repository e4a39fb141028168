/**
 * Feeds what the daemon does into the status board (and so /status and /metrics) and into
 * the structured log. Initial sync progress is logged as "repos done / total".
 */
import type { Logger } from "pino";
import { StatusBoard } from "../state/statusBoard";
import type { DiskState } from "../store/diskSpace";
import { RepoKey, SyncReason } from "../types";
import { DaemonObserver } from "./daemon";
import { SyncOutcome } from "./engine";

export function boardObserver(board: StatusBoard, log: Logger): DaemonObserver {
  // Initial-sync progress, counted here in O(1) per event (board.summary() walks every repo).
  let total = 0;
  let done = 0;
  let complete = false;
  let lastProgressLog = 0;
  let primaryUp: boolean | undefined;
  let skippedBefore = "";
  let diskBefore: DiskState | undefined;
  const progress = () => {
    const now = Date.now();
    if (done < total && now - lastProgressLog < 2000) return;
    lastProgressLog = now;
    log.info({ done, total }, `initial sync ${done}/${total}`);
    if (done >= total) {
      complete = true;
      log.info({ repos: total }, "initial sync complete");
    }
  };
  return {
    catalogChanged: (keys: RepoKey[], lastSyncedAt) => {
      board.setCatalog(keys, { lastSyncedAt });
      total = keys.length;
      done = keys.filter((k) => board.repo(k)?.lastSyncedAt !== undefined).length;
    },
    catalogSkipped: (skipped) => {
      board.setSkipped(skipped);
      // Once per change of the set, not at every reconcile.
      const now = skipped.map((s) => s.key).join("\n");
      if (now !== skippedBefore && skipped.length > 0) log.warn({ skipped: skipped.slice(0, 20), count: skipped.length }, "catalog names the mirror cannot carry were skipped; the other repositories sync");
      skippedBefore = now;
    },
    diskChecked: (facts) => {
      board.setDisk(facts);
      if (facts.state !== diskBefore) {
        const fields = { state: facts.state, freeMb: Math.round(facts.freeBytes / 2 ** 20), minFreeMb: Math.round(facts.minFreeBytes / 2 ** 20) };
        if (facts.state === "ok") {
          if (diskBefore !== undefined) log.info(fields, "disk space is back: syncing resumes");
        } else log.error(fields, "disk space low: syncs that grow the disk pause (first clones refused), serving goes on; free space or grow the volume");
      }
      diskBefore = facts.state;
    },
    syncStarted: (key: RepoKey) => board.syncStarted(key),
    syncSucceeded: (key: RepoKey, reason: SyncReason, durationMs: number, o: SyncOutcome) => {
      const first = board.repo(key)?.lastSyncedAt === undefined;
      board.syncSucceeded(key, { durationMs, bytes: o.bytes, changed: o.fetched });
      if (o.fetched || o.maintenance.length > 0) {
        log.info({ repo: key, reason, durationMs, bytes: o.bytes, created: o.created, recloned: o.recloned, maintenance: o.maintenance, resumedFromBytes: o.resumedFromBytes, steps: o.steps, ...(o.seed ? { seededFrom: o.seed.peer, seedBytes: o.seed.bytes } : {}) }, o.fetched ? "synced" : "maintained");
      }
      if (first) done++;
      if (first && !complete) progress();
    },
    syncFailed: (key: RepoKey, reason: SyncReason, error: Error, durationMs: number, retryInMs: number | undefined) => {
      board.syncFailed(key, error, { durationMs, nextRetryAt: retryInMs === undefined ? undefined : Date.now() + retryInMs });
      log.warn({ repo: key, reason, durationMs, retryInMs, error: error.message }, "sync failed");
    },
    behind: (key: RepoKey, since: number) => board.markBehind(key, since),
    primaryReachable: (reachable: boolean, error?: string) => {
      const before = primaryUp;
      primaryUp = reachable;
      board.primaryReachable(reachable, error);
      if (before !== reachable) log[reachable ? "info" : "error"]({ error }, reachable ? "primary reachable" : "primary unreachable; serving the last good copies");
    },
    scanPlanned: (round) =>
      board.scanPlanned({
        active: round.active,
        idle: round.idle,
        asked: round.scan.length,
        perSecond: round.targets.perSecond,
        overBudget: round.targets.overBudget,
        activeEveryMs: round.targets.activeEveryMs,
        idleEveryMs: round.targets.idleEveryMs,
        noticeActiveMs: round.notice.activeMs,
        noticeIdleMs: round.notice.idleMs,
      }),
    reconcileDone: (r) => {
      board.reconcileDone(r);
      log.info(r, "reconcile done");
    },
    log: (level, msg, fields) => log[level](fields ?? {}, msg),
  };
}
