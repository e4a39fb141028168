/**
 * The daemon's HTTP server: observation (/status, /status/repos, /status/delayed, /metrics,
 * /healthz) and trigger (/webhook) routes on a Router that other handlers (Git smart HTTP under
 * /scm/) are mounted on. Listening is separate (see listen.ts) so the caller picks unix socket
 * or TCP and owns the lifecycle.
 *
 * GET /status answers 200 while anything can be served and 503 while STARTING or in ERROR
 * (nothing synced and nothing getting better) — like Bitbucket's own /status, which answers
 * {"state":"STARTING"} with 503 while the application starts (Atlassian KB "How to monitor if
 * Bitbucket Server is up and running", confluence.atlassian.com/bitbucketserverkb/
 * how-to-monitor-if-bitbucket-server-is-up-and-running-975014635.html). A load balancer can
 * use it as a readiness check; /healthz is the liveness check (200 while the process answers).
 * GET /status/ready is the load balancers' check: 200 only while ready (SYNCHRONIZED or DEGRADED)
 * and not draining (drain.ts), else 503, with a three-field body.
 * /status is coarse (no addresses, no error texts); /status/detail has the errors and is served
 * only on the daemon's own listener, never through nginx.
 */
import * as http from "node:http";
import { StatusBoard } from "../state/statusBoard";
import { statusHttpCode } from "../state/mirrorState";
import { sendError, sendJson } from "./respond";
import { Log, silentLog } from "./http";
import { Router } from "./router";
import { delayedDocument, internalStatusDocument, page, parseRepoQuery, readinessDocument, repoDocument, statusDocument } from "./statusDocument";
import type { RequestDrain } from "./drain";
import { webhookHandler, WebhookOptions } from "./webhookHandler";
import { cameThroughProxy } from "./internalOnly";
import { BodyBudget, DEFAULT_BODY_BUDGET_BYTES, DEFAULT_BODY_IDLE_MS } from "./bodyBudget";
import { prefersHtml } from "./statusPage/negotiate";
import { addStatusPageRoutes, sendStatusPage } from "./statusPage/routes";

export interface ServeOptions {
  board: StatusBoard;
  /** Omit (or give no secret) to disable the webhook: POST /webhook then answers 404. */
  webhook?: WebhookOptions;
  log?: Log;
  /** Add the routes to this router (e.g. one that already has /scm/ mounted); else a new one. */
  router?: Router;
  /** The daemon-wide request-body budget (share it with the Git routes); default one of 64 MiB. */
  bodyBudget?: BodyBudget;
  /** A request body idle this long is cut (408); default 30 s. */
  bodyIdleMs?: number;
  /** Longest time to receive a whole request, headers and body (node's requestTimeout); default 5 min. */
  requestTimeoutMs?: number;
  /** Counts every request for draining (serve/drain.ts); the board carries its "draining". */
  drain?: RequestDrain;
  /** More sections of /status/detail (e.g. `farm`), read at each request. */
  detailSections?: () => Record<string, unknown>;
}

/** Register the observation and webhook routes on `router`. */
export function addObservationRoutes(router: Router, opts: ServeOptions): Router {
  const { board } = opts;
  const log = opts.log ?? silentLog;

  // JSON unless the client prefers HTML (a browser): health checks and scripts keep their JSON.
  router.route("/status", {
    GET: (ctx) => {
      const snap = board.snapshot();
      if (prefersHtml(ctx.req.headers.accept)) return sendStatusPage(ctx, snap, statusHttpCode(snap.state));
      sendJson(ctx, statusHttpCode(snap.state), statusDocument(snap), { Vary: "Accept" });
    },
  });
  // The load balancers' health check (readiness): 200 when clients should come here, else 503.
  router.route("/status/ready", {
    GET: (ctx) => {
      const r = readinessDocument(board.snapshot());
      sendJson(ctx, r.code, r.body);
    },
  });
  // The page for people at the base URL, and its script and stylesheet.
  addStatusPageRoutes(router, board);
  // The detail (errors quote the primary's SSH address and repository names) is for the host
  // alone (internalOnly.ts).
  router.route("/status/detail", {
    GET: (ctx) => {
      if (cameThroughProxy(ctx.req)) return sendError(ctx, 404, "not_found", `no such resource: ${ctx.path}`);
      const snap = board.snapshot();
      sendJson(ctx, 200, { ...internalStatusDocument(snap, board.delayed()), ...opts.detailSections?.() });
    },
  });
  router.route("/status/repos", {
    GET: (ctx) => {
      const q = parseRepoQuery(ctx.query);
      if ("error" in q) return sendError(ctx, 400, "bad_request", q.error);
      const { values, matched } = board.listRepos(q);
      sendJson(ctx, 200, { ...(q.state ? { state: q.state } : {}), ...page(values.map(repoDocument), matched, q.start, q.limit) });
    },
  });
  router.route("/status/delayed", {
    GET: (ctx) => {
      const delayed = board.delayed();
      sendJson(ctx, 200, { thresholdMs: board.delayedThresholdMs, size: delayed.length, values: delayed.map(delayedDocument) });
    },
  });
  router.route("/metrics", {
    GET: async (ctx) => {
      const { contentType, body } = await board.metrics.exposition();
      ctx.res.writeHead(200, { "Content-Type": contentType, "Content-Length": Buffer.byteLength(body), "Cache-Control": "no-store" });
      ctx.res.end(body);
    },
  });
  router.route("/healthz", {
    GET: (ctx) => sendJson(ctx, 200, { ok: true }),
  });
  router.route("/webhook", {
    POST: webhookHandler(opts.webhook, {
      count: (r) => board.metrics.webhook(r),
      log,
      bodyBudget: opts.bodyBudget ?? new BodyBudget(DEFAULT_BODY_BUDGET_BYTES, board.metrics.registry),
      bodyIdleMs: opts.bodyIdleMs ?? DEFAULT_BODY_IDLE_MS,
    }),
  });
  return router;
}

/** An http.Server serving the routes; call listen(server, "unix:/path" | "host:port") to start it. */
export function createServer(opts: ServeOptions): http.Server {
  const router = addObservationRoutes(opts.router ?? new Router({ log: opts.log }), opts);
  const drain = opts.drain;
  const server = http.createServer(
    drain
      ? (req, res) => {
          drain.track(req, res);
          router.handle(req, res);
        }
      : router.handle,
  );
  // Slowloris guards: headers within 30 s, a whole request (body included) within requestTimeout;
  // a body that stalls is cut sooner by the handlers' idle timeout (bodyIdleMs). nginx in front
  // has its own (client_header_timeout, client_body_timeout).
  server.headersTimeout = 30_000;
  server.requestTimeout = opts.requestTimeoutMs ?? 300_000;
  return server;
}
