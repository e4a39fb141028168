/**
 * Pure rendering of the status documents from a board snapshot (no I/O, no clock).
 *
 * GET /status keeps the shape of a Bitbucket mirror's /status — `state`, `syncedRepos`,
 * `totalRepos` — as shown in Atlassian's KB "Mirror node does not appear synchronized in the
 * Bitbucket UI" (support.atlassian.com/bitbucket-data-center/kb/mirror-node-does-not-appear-
 * synchronized-in-the-bitbucket-ui-although-the…): `{"state": "SYNCHRONIZED", ..., "syncedRepos":
 * 0, "totalRepos": 0}`. Everything else is ours and additive, so tools that read Bitbucket's
 * fields keep working. Times are ISO-8601 strings (UTC); durations are milliseconds (`...Ms`).
 *
 * The paged lists use Bitbucket's REST paging fields (size, limit, start, isLastPage,
 * nextPageStart, values) so scripts written against Bitbucket page through ours the same way.
 */
import { MirrorState, RepoStatus } from "../types";
import type { BoardSnapshot, DelayedRepo, RepoFilter } from "../state/statusBoard";
import { isReady } from "../state/mirrorState";

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

/**
 * The public GET /status body's shape (what statusDocument returns). The status page for people
 * (statusPage/) renders from this and nothing else, so it can show no more than curl can.
 */
export interface PublicStatusDocument {
  state: MirrorState;
  syncedRepos: number;
  totalRepos: number;
  displayName: string | null;
  baseUrl: string | null;
  version?: string;
  startedAt: string | null;
  initialSync: { done: number; total: number; complete: boolean; completedAt: string | null };
  primary: { reachable: boolean | null; checkedAt: string | null };
  lastReconcile: { at: string | null; result: string; durationMs: number } | null;
  repos: Record<RepoStatus["state"], number> & { delayed: number };
  delayedSync: { count: number; toleranceMs: number };
  syncLagMaxMs: number;
  skippedRepos: number;
  disk: string | null;
  ready: boolean;
  /** Draining before a stop or on `smart-mirror drain`: not ready, still serving what arrives. */
  draining: boolean;
}

/**
 * The public GET /status (anyone who reaches the mirror): coarse on purpose. States, counts and
 * times only: no address of the primary, no error text (errors quote the primary's SSH address
 * and repository names), no repository names. Whether the primary is reachable and whether the
 * last reconcile worked are booleans/results; the why is in internalStatusDocument.
 */
export function statusDocument(s: BoardSnapshot): PublicStatusDocument {
  return {
    state: s.state,
    syncedRepos: s.facts.everSynced,
    totalRepos: s.facts.totalRepos,
    displayName: s.info.displayName ?? null,
    baseUrl: s.info.baseUrl ?? null,
    ...(s.info.version ? { version: s.info.version } : {}),
    startedAt: iso(s.startedAt),
    initialSync: {
      done: s.initialSync.done,
      total: s.initialSync.total,
      complete: s.initialSync.complete,
      completedAt: iso(s.initialSync.completedAt),
    },
    primary: { reachable: s.primary.reachable ?? null, checkedAt: iso(s.primary.checkedAt) },
    lastReconcile: s.lastReconcile ? { at: iso(s.lastReconcile.at), result: s.lastReconcile.result, durationMs: s.lastReconcile.durationMs } : null,
    // Counts by RepoStatus.state (they add up to totalRepos) plus the delayed-sync list's size.
    repos: { ...s.byState, delayed: s.delayed },
    // Bitbucket's delayed-sync list: its size and the tolerance here; the names (private
    // repositories among them) only on /status/detail and the allow-listed /status/delayed.
    delayedSync: { count: s.delayed, toleranceMs: s.delayedAfterMs },
    syncLagMaxMs: s.maxLagMs,
    // Catalog names the mirror cannot carry (count only; the names are on /status/detail).
    skippedRepos: s.skippedRepos,
    // ok | low (syncs that grow the disk paused, serving goes on) | full; null until measured.
    disk: s.disk?.state ?? null,
    // Whether clients should be sent here (readiness, for health checks: see isReady).
    ready: readyNow(s),
    draining: s.draining === true,
  };
}

/** Whether clients should be sent here now: /status's "ready" and GET /status/ready's code. */
function readyNow(s: Pick<BoardSnapshot, "state" | "facts" | "draining">): boolean {
  return isReady(s.state, s.facts) && s.draining !== true;
}

/**
 * GET /status/ready, the load balancers' health check: small, and 200 only when clients should
 * be sent here (ready and not draining), else 503.
 */
export function readinessDocument(s: Pick<BoardSnapshot, "state" | "facts" | "draining">): { code: 200 | 503; body: { ready: boolean; state: MirrorState; draining: boolean } } {
  const draining = s.draining === true;
  const ready = readyNow(s);
  return { code: ready ? 200 : 503, body: { ready, state: s.state, draining } };
}

/** What a ready mirror's GET /status body contains, as respond.ts serializes it (no spaces). */
export const READY_MARKER = JSON.stringify({ ready: true }).slice(1, -1);

/**
 * GET /status/detail: everything, errors included, for the operator on the host (served only to
 * requests that did not come through the proxy, see server.ts). Same fields as the public
 * document plus the primary's URL, the last errors, and what the last reconcile checked.
 */
export function internalStatusDocument(s: BoardSnapshot, delayed: readonly DelayedRepo[] = []): Record<string, unknown> {
  return {
    ...statusDocument(s),
    primary: {
      url: s.info.upstreamUrl ?? null,
      reachable: s.primary.reachable ?? null,
      checkedAt: iso(s.primary.checkedAt),
      lastError: s.primary.lastError ?? null,
      lastErrorAt: iso(s.primary.lastErrorAt),
    },
    lastReconcile: s.lastReconcile
      ? {
          at: iso(s.lastReconcile.at),
          result: s.lastReconcile.result,
          durationMs: s.lastReconcile.durationMs,
          checked: s.lastReconcile.checked,
          changed: s.lastReconcile.changed,
          ...(s.lastReconcile.error ? { error: s.lastReconcile.error } : {}),
          ...(s.lastReconcile.unasked ? { unasked: s.lastReconcile.unasked } : {}),
        }
      : null,
    // What the scan budget means for staleness (mirror.scan.*): who is checked how often.
    scan: s.scan
      ? {
          activeRepos: s.scan.active,
          idleRepos: s.scan.idle,
          askedLastRound: s.scan.asked,
          scansPerSecond: Math.round(s.scan.perSecond * 100) / 100,
          overBudget: s.scan.overBudget,
          activeEverySeconds: Math.round(s.scan.activeEveryMs / 1000),
          idleEverySeconds: Math.round(s.scan.idleEveryMs / 1000),
          worstCaseNoticeSeconds: { active: Math.round(s.scan.noticeActiveMs / 1000), idle: Math.round(s.scan.noticeIdleMs / 1000) },
        }
      : null,
    // The first names the rule refused, with why (the public document has the count only).
    skipped: s.skipped,
    delayedSync: {
      count: s.delayed,
      toleranceMs: s.delayedAfterMs,
      // Worst first, at most MAX_DELAYED_LISTED (the count is exact; /status/delayed has them all).
      repos: delayed.slice(0, MAX_DELAYED_LISTED).map((d) => ({ repository: d.key, since: iso(d.since), reason: d.reason, consecutiveFailures: d.consecutiveFailures })),
    },
  };
}

/** The delayed repositories named on /status/detail; a bounded document however many there are. */
export const MAX_DELAYED_LISTED = 100;

export function repoDocument(r: RepoStatus): Record<string, unknown> {
  return {
    key: r.key,
    state: r.state,
    lastSyncedAt: iso(r.lastSyncedAt),
    behindSince: iso(r.behindSince),
    consecutiveFailures: r.consecutiveFailures,
    failingSince: iso(r.failingSince),
    lastError: r.lastError ?? null,
    nextRetryAt: iso(r.nextRetryAt),
  };
}

export function delayedDocument(d: DelayedRepo): Record<string, unknown> {
  return { ...repoDocument(d), reason: d.reason, since: iso(d.since), lagMs: d.lagMs ?? null };
}

export function page<T>(values: T[], matched: number, start: number, limit: number): Record<string, unknown> {
  const isLastPage = start + values.length >= matched;
  return { size: values.length, limit, start, isLastPage, ...(isLastPage ? {} : { nextPageStart: start + values.length }), total: matched, values };
}

export const REPO_FILTERS: readonly RepoFilter[] = ["new", "syncing", "synced", "failing"];
export const DEFAULT_PAGE_LIMIT = 1000;
export const MAX_PAGE_LIMIT = 10000;

/** `?state=&start=&limit=` for /status/repos, or what is wrong with them (-> 400). */
export function parseRepoQuery(q: URLSearchParams): { state?: RepoFilter; start: number; limit: number } | { error: string } {
  const state = q.get("state");
  if (state !== null && !(REPO_FILTERS as readonly string[]).includes(state)) return { error: `state must be one of ${REPO_FILTERS.join(", ")}` };
  const p = parsePage(q, DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT);
  if ("error" in p) return p;
  return { ...(state !== null ? { state: state as RepoFilter } : {}), ...p };
}

/** Bitbucket's `?start=&limit=` paging parameters, or what is wrong with them (-> 400). */
export function parsePage(q: URLSearchParams, defaultLimit: number, maxLimit: number): { start: number; limit: number } | { error: string } {
  const start = intParam(q.get("start"), 0);
  const limit = intParam(q.get("limit"), defaultLimit);
  if (start === undefined || start < 0) return { error: "start must be a non-negative integer" };
  if (limit === undefined || limit < 1 || limit > maxLimit) return { error: `limit must be an integer from 1 to ${maxLimit}` };
  return { start, limit };
}

function intParam(v: string | null, dflt: number): number | undefined {
  if (v === null || v === "") return dflt;
  return /^\d{1,9}$/.test(v) ? Number(v) : undefined;
}
