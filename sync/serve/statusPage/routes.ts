/**
 * The status page's routes: the page at "/" (and on /status for clients that prefer HTML, see
 * server.ts), and its script and stylesheet. Thin: the page is renderStatusPage(statusDocument)
 * of the same snapshot GET /status serializes, so it shows exactly what the public JSON does.
 */
import type { BoardSnapshot, StatusBoard } from "../../state/statusBoard";
import type { RequestContext } from "../http";
import type { Router } from "../router";
import { statusDocument } from "../statusDocument";
import { STATUS_PAGE_CSS, STATUS_PAGE_CSS_PATH, STATUS_PAGE_HEADERS, STATUS_PAGE_SCRIPT_PATH, statusPageScript } from "./assets";
import { renderStatusPage } from "./render";

function sendText(ctx: Pick<RequestContext, "res">, status: number, contentType: string, body: string, cache: string): void {
  ctx.res.writeHead(status, { ...STATUS_PAGE_HEADERS, "Content-Type": contentType, "Content-Length": Buffer.byteLength(body), "Cache-Control": cache });
  ctx.res.end(body);
}

/** The page for one snapshot, with its CSP. `status` lets /status keep its readiness code. */
export function sendStatusPage(ctx: Pick<RequestContext, "res">, snap: BoardSnapshot, status = 200, now = Date.now()): void {
  ctx.res.setHeader("Vary", "Accept");
  sendText(ctx, status, "text/html; charset=utf-8", renderStatusPage(statusDocument(snap), now), "no-store");
}

export function addStatusPageRoutes(router: Router, board: StatusBoard): Router {
  // Built once: the same bytes for the daemon's lifetime. A short cache: an upgrade's new
  // script reaches open pages within minutes, and a reload gets it at once (revalidation).
  const script = statusPageScript();
  router.route("/", { GET: (ctx) => sendStatusPage(ctx, board.snapshot()) });
  router.route(STATUS_PAGE_SCRIPT_PATH, { GET: (ctx) => sendText(ctx, 200, "text/javascript; charset=utf-8", script, "max-age=300") });
  router.route(STATUS_PAGE_CSS_PATH, { GET: (ctx) => sendText(ctx, 200, "text/css; charset=utf-8", STATUS_PAGE_CSS, "max-age=300") });
  return router;
}
