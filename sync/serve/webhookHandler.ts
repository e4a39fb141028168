/**
 * POST /webhook: Bitbucket's push notifications turned into "sync this repo now".
 *
 * The order of checks is what keeps it cheap and safe:
 *   no secret configured   -> 404 (webhook disabled: an unsigned endpoint would let anyone
 *                             make us fetch; the periodic reconcile still keeps us in sync)
 *   no/garbled signature   -> 401 before reading the body
 *   Content-Length > limit -> 413 before reading the body; a chunked body is cut at the limit
 *   wrong HMAC             -> 401, nothing else done
 *   not JSON / bad shape   -> 400
 *   diagnostics:ping       -> 200
 *   repo:refs_changed      -> onRefsChanged("PROJ/slug", changes); 202 at once (the callback
 *                             only enqueues; the fetch happens later, coalesced by the scheduler)
 *   catalog events         -> onCatalogChanged(...) if given; 202
 *   anything else          -> 202 {"ignored": true}
 * A refused request is answered with `Connection: close` so the unread rest of its body is
 * never read. Secrets and signatures are never logged; the request id is in every answer.
 * Replays of a signed body are harmless: they only ask for another (idempotent) fetch.
 */
import { RepoKey } from "../types";
import type { WebhookResult } from "../state/metrics";
import type { BodyBudget } from "./bodyBudget";
import { BodyIncomplete, BodyOverBudget, BodyTimedOut, BodyTooLarge, readBody } from "./readBody";
import { sendError, sendJson } from "./respond";
import type { Handler, Log, RequestContext } from "./http";
import { decideWebhook, RefChange } from "./webhookEvent";
import { parseSignatureHeader, verifySignature } from "./webhookSignature";

export interface WebhookOptions {
  /** HMAC secret(s) set on the Bitbucket webhook; absent or empty: the webhook is disabled (404). */
  secret?: string | readonly string[];
  /** Largest accepted body (default 1 MiB; a push of 1000 refs is ~300 KB). */
  maxBodyBytes?: number;
  /** A push happened on the primary. Called before the 202 is sent and not awaited: it should only enqueue. */
  onRefsChanged(repo: RepoKey, info: { changes: RefChange[]; requestId: string }): void | Promise<void>;
  /** Repos were renamed, forked or moved: re-read the catalog. Without it those events are ignored. */
  onCatalogChanged?(info: { eventKey: string; repos: RepoKey[]; requestId: string }): void | Promise<void>;
}

export const DEFAULT_WEBHOOK_MAX_BODY = 1024 * 1024;

export function webhookHandler(opts: WebhookOptions | undefined, deps: { count(result: WebhookResult): void; log: Log; bodyBudget?: BodyBudget; bodyIdleMs?: number }): Handler {
  const secrets = (typeof opts?.secret === "string" ? [opts.secret] : [...(opts?.secret ?? [])]).filter((s) => s.length > 0);
  const limit = opts?.maxBodyBytes ?? DEFAULT_WEBHOOK_MAX_BODY;
  const { count, log } = deps;

  const refuse = (ctx: RequestContext, result: WebhookResult, status: number, code: string, message: string) => {
    count(result);
    log.warn({ requestId: ctx.requestId, result, eventKey: headerString(ctx.req.headers["x-event-key"]) }, `webhook refused: ${message}`);
    sendError(ctx, status, code, message, { Connection: "close" });
  };

  /**
   * Run a callback without waiting for it: the answer must not wait for a fetch. A synchronous
   * throw means the work was not queued (500); a later rejection can only be logged.
   */
  const fire = (ctx: RequestContext, fn: () => void | Promise<void>): boolean => {
    try {
      const p = fn();
      if (p && typeof p.then === "function") p.then(undefined, (err: unknown) => log.error({ err, requestId: ctx.requestId }, "webhook callback failed"));
      return true;
    } catch (err) {
      count("error");
      log.error({ err, requestId: ctx.requestId }, "webhook callback failed");
      sendError(ctx, 500, "internal_error", "could not queue the sync");
      return false;
    }
  };

  return async (ctx) => {
    const { req } = ctx;
    if (!opts || secrets.length === 0) return refuse(ctx, "disabled", 404, "webhook_disabled", "webhook is not enabled on this mirror");
    if (!parseSignatureHeader(req.headers["x-hub-signature"])) return refuse(ctx, "unauthorized", 401, "unauthorized", "missing or malformed X-Hub-Signature (want sha256=<hex>)");

    let body: Buffer;
    const reservation = deps.bodyBudget?.reserve();
    if (reservation) ctx.res.once("close", () => reservation.release());
    try {
      body = await readBody(req, limit, { reservation, idleMs: deps.bodyIdleMs });
    } catch (e) {
      if (e instanceof BodyTooLarge) return refuse(ctx, "too_large", 413, "payload_too_large", `body larger than ${limit} bytes`);
      if (e instanceof BodyOverBudget) {
        deps.bodyBudget?.refused();
        count("error");
        return sendError(ctx, 503, "busy", "the mirror is receiving too many request bodies; retry shortly", { Connection: "close", "Retry-After": "5" });
      }
      if (e instanceof BodyTimedOut) return refuse(ctx, "malformed", 408, "request_timeout", e.message);
      if (e instanceof BodyIncomplete) {
        count("malformed");
        ctx.res.destroy();
        return;
      }
      throw e;
    }
    if (!verifySignature(secrets, body, req.headers["x-hub-signature"])) return refuse(ctx, "unauthorized", 401, "unauthorized", "signature does not match");

    const decision = decideWebhook(headerString(req.headers["x-event-key"]), body);
    const requestId = ctx.requestId;
    switch (decision.kind) {
      case "malformed":
        return refuse(ctx, "malformed", 400, "bad_request", decision.message);
      case "ping":
        count("ping");
        return sendJson(ctx, 200, { ok: true, requestId });
      case "refs_changed":
        if (!fire(ctx, () => opts.onRefsChanged(decision.repo, { changes: decision.changes, requestId }))) return;
        count("accepted");
        log.info({ requestId, repo: decision.repo, refs: decision.changes.length }, "webhook: refs changed");
        return sendJson(ctx, 202, { accepted: true, repository: decision.repo, requestId });
      case "catalog":
        if (opts.onCatalogChanged) {
          const cb = opts.onCatalogChanged;
          if (!fire(ctx, () => cb({ eventKey: decision.eventKey, repos: decision.repos, requestId }))) return;
          count("catalog");
          log.info({ requestId, eventKey: decision.eventKey }, "webhook: catalog refresh");
          return sendJson(ctx, 202, { accepted: true, catalogRefresh: true, requestId });
        }
        count("ignored");
        return sendJson(ctx, 202, { accepted: false, ignored: true, eventKey: decision.eventKey, requestId });
      case "ignored":
        count("ignored");
        return sendJson(ctx, 202, { accepted: false, ignored: true, eventKey: decision.eventKey, requestId });
    }
  };
}

function headerString(v: string | string[] | undefined): string | undefined {
  return typeof v === "string" ? v : undefined;
}
