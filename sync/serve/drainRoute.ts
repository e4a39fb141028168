/**
 * The drain control for `smart-mirror drain` (sync/drainCli.ts), on the daemon's own listener
 * only (internalOnly.ts; nginx does not proxy it):
 *
 *   POST   /drain[?timeout=SECONDS]  start draining (or join the running drain); answers when it
 *          ended: 200 {"drained":true,...} or, past the bound, 504 {"drained":false,"remaining":N}.
 *          The daemon stays up and draining afterwards (readiness 503, still serving what
 *          arrives): a supervisor with Restart= would otherwise bring a stopped daemon back as
 *          ready. Stop it (SIGTERM: finishes at once when nothing arrived since) or cancel.
 *   DELETE /drain  ready again (readiness follows the mirror's state).
 */
import type { Log } from "./http";
import { DRAIN_PATH, RequestDrain } from "./drain";
import { cameThroughProxy } from "./internalOnly";
import { sendError, sendJson } from "./respond";
import type { Router } from "./router";

/** A --timeout in seconds: 1 s .. 1 h, like mirror.drain.timeout. */
export const MAX_DRAIN_TIMEOUT_SECONDS = 3600;

export function parseDrainTimeout(v: string | null): number | undefined | { error: string } {
  if (v === null || v === "") return undefined;
  if (!/^\d{1,5}$/.test(v) || Number(v) < 1 || Number(v) > MAX_DRAIN_TIMEOUT_SECONDS) return { error: `timeout must be a whole number of seconds from 1 to ${MAX_DRAIN_TIMEOUT_SECONDS}` };
  return Number(v) * 1000;
}

/** `stopping`: the daemon is on its way out (a signal): a cancel would only cut the drain short. */
export function addDrainRoute(router: Router, drain: RequestDrain, log: Log, stopping: () => boolean = () => false): Router {
  const notFound = (ctx: Parameters<typeof sendError>[0] & { path: string }) => sendError(ctx, 404, "not_found", `no such resource: ${ctx.path}`);
  router.route(DRAIN_PATH, {
    POST: async (ctx) => {
      if (cameThroughProxy(ctx.req)) return notFound(ctx);
      const timeoutMs = parseDrainTimeout(ctx.query.get("timeout"));
      if (typeof timeoutMs === "object") return sendError(ctx, 400, "bad_request", timeoutMs.error);
      log.info({ inFlight: drain.requestsInFlight, ...(timeoutMs !== undefined ? { timeoutMs } : {}) }, "draining on request (smart-mirror drain): readiness 503");
      const r = await drain.drain(timeoutMs);
      const body = { drained: r.remaining === 0, durationMs: r.durationMs, remaining: r.remaining, timedOut: r.timedOut };
      log.info(body, r.remaining === 0 ? "drained; staying up, not ready, until stopped or the drain is cancelled" : "drain bound reached with requests still running");
      if (!ctx.res.destroyed) sendJson(ctx, r.remaining === 0 ? 200 : 504, body);
    },
    DELETE: (ctx) => {
      if (cameThroughProxy(ctx.req)) return notFound(ctx);
      if (stopping()) return sendError(ctx, 409, "stopping", "the daemon is stopping (a stop signal started this drain); it cannot be cancelled");
      const was = drain.cancel();
      if (was) log.info({}, "drain cancelled: ready again when the mirror is");
      sendJson(ctx, 200, { draining: false, wasDraining: was });
    },
  });
  return router;
}
