/**
 * POST /farm/announce (a peer's announcement, Bearer farm token) and GET /farm/announce (who is
 * this node: its id, for peers finding their own entry in the peers file). nginx proxies only
 * this exact path (`location = /farm/announce`). A wrong or missing token is 401 before the body
 * is read. The answer to a POST means "recorded", not "applied" (farm.ts).
 */
import type { Log } from "../serve/http";
import type { Router } from "../serve/router";
import type { BodyBudget } from "../serve/bodyBudget";
import { BodyOverBudget, BodyTimedOut, BodyTooLarge, readBody } from "../serve/readBody";
import { sendError, sendJson } from "../serve/respond";
import { Announcement, ANNOUNCE_MAX_BODY, ANNOUNCE_PATH, parseAnnouncement } from "./announce";
import { farmTokenCheck } from "./token";

export interface AnnounceRouteDeps {
  nodeId: string;
  /** This daemon's run (Farm.instance). */
  instance: string;
  token: string;
  receive(a: Announcement): void;
  bodyBudget?: BodyBudget;
  bodyIdleMs?: number;
  log: Log;
}

export function addAnnounceRoute(router: Router, d: AnnounceRouteDeps): Router {
  const isFarm = farmTokenCheck(d.token);
  const refuse401 = (ctx: Parameters<typeof sendError>[0]) => sendError(ctx, 401, "unauthorized", "farm routes need the farm token (Authorization: Bearer, mirror.farm.tokenFile)", { "WWW-Authenticate": 'Bearer realm="smart-mirror farm"', Connection: "close" });
  router.route(ANNOUNCE_PATH, {
    GET: (ctx) => {
      if (!isFarm(ctx.req.headers.authorization)) return refuse401(ctx);
      sendJson(ctx, 200, { node: d.nodeId, instance: d.instance });
    },
    POST: async (ctx) => {
      if (!isFarm(ctx.req.headers.authorization)) {
        d.log.warn({ requestId: ctx.requestId }, "farm announcement refused: no or wrong farm token");
        return refuse401(ctx);
      }
      const reservation = d.bodyBudget?.reserve();
      if (reservation) ctx.res.once("close", () => reservation.release());
      let text: string;
      try {
        text = (await readBody(ctx.req, ANNOUNCE_MAX_BODY, { reservation, idleMs: d.bodyIdleMs })).toString("utf8");
      } catch (e) {
        if (e instanceof BodyTooLarge) return sendError(ctx, 413, "payload_too_large", `announcement larger than ${ANNOUNCE_MAX_BODY} bytes`, { Connection: "close" });
        if (e instanceof BodyOverBudget) {
          d.bodyBudget?.refused();
          return sendError(ctx, 503, "busy", "the mirror is receiving too many request bodies; retry shortly", { Connection: "close", "Retry-After": "1" });
        }
        if (e instanceof BodyTimedOut) return sendError(ctx, 408, "request_timeout", e.message, { Connection: "close" });
        ctx.res.destroy();
        return;
      }
      const a = parseAnnouncement(text);
      if ("problem" in a) return sendError(ctx, 400, "bad_request", `not an announcement: ${a.problem}`);
      // Our own announcement come back (our entry not recognized yet): nothing to do.
      if (a.instance !== undefined ? a.instance === d.instance : a.origin === d.nodeId) return sendJson(ctx, 200, { node: d.nodeId, recorded: false });
      d.receive(a);
      sendJson(ctx, 200, { node: d.nodeId, recorded: true });
    },
  });
  return router;
}
