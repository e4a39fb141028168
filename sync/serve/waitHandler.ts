/**
 * The long-poll on the status API: `GET /status/repos/{PROJECT}/{slug}/wait?commit=SHA&timeout=S`
 * answers as soon as the mirror's copy holds the object (woken by sync completions, see
 * sync/wait/commitWaiters.ts), or when the timeout (at most WAIT_MAX_SECONDS) passes:
 *
 *   200 {"repository": "PROJ/repo", "commit": SHA, "present": true|false, "waitedMs": n, "timeoutMs": n}
 *
 * "Not there yet" is a 200 with present:false, not an error status: the question was answered,
 * and a script tells it apart from real errors (400 bad input, 401/404 access, 503 busy), which
 * `curl --fail` turns into a non-zero exit. Access is the clones' (the same Authorizer): with
 * mirror.serve.auth primary or tokens a request without credentials gets 401, and a repository
 * the caller may not read is a 404 exactly like one the mirror does not have, so nothing leaks.
 */
import type { Authorizer } from "../auth/authorizer";
import type { RepoKey } from "../types";
import type { CommitWaiters } from "../wait/commitWaiters";
import { clientAddress } from "./clientAddress";
import { REALM } from "./git/replies";
import type { RepoResolver } from "./git/resolver";
import type { Handler, Log } from "./http";
import { silentLog } from "./http";
import { sendError, sendJson } from "./respond";
import { parseWaitRequest } from "./waitRequest";

export interface WaitHandlerDeps {
  resolve: RepoResolver;
  authorizer: Authorizer;
  waiters: CommitWaiters;
  log?: Log;
}

const NOT_FOUND = "no such repository on this mirror (or no access to it)";

export function waitHandler(d: WaitHandlerDeps): Handler {
  const log = d.log ?? silentLog;
  return async (ctx) => {
    const method = (ctx.req.method ?? "GET").toUpperCase();
    if (method !== "GET") return sendError(ctx, 405, "method_not_allowed", `${method} is not allowed on ${ctx.path}`, { Allow: "GET" });
    const r = parseWaitRequest(ctx.path, ctx.query);
    if (!r.ok) return sendError(ctx, r.status, r.status === 404 ? "not_found" : "bad_request", r.message);

    const served = d.resolve(r.repo.project, r.repo.slug);
    const auth = await d.authorizer.authorize(ctx.req.headers.authorization, served ?? r.repo, clientAddress(ctx.req));
    if (!auth.allowed) {
      switch (auth.reason) {
        case "no_credentials":
        case "bad_credentials":
          return sendError(ctx, 401, "unauthorized", "credentials required: send the ones you clone with (Basic or Bearer)", { "WWW-Authenticate": `Basic realm="${REALM}", charset="UTF-8"` });
        case "forbidden":
          return sendError(ctx, 404, "not_found", NOT_FOUND);
        case "unavailable":
          return sendError(ctx, 503, "unavailable", "the primary cannot be asked about access right now; retry", { "Retry-After": "30" });
        case "throttled":
          return sendError(ctx, 429, "throttled", "too many failed access checks from this address; retry later", { "Retry-After": String(Math.max(1, auth.retryAfterSeconds ?? 30)) });
      }
    }
    if (!served) return sendError(ctx, 404, "not_found", NOT_FOUND);
    if (ctx.res.destroyed) return;

    const key: RepoKey = `${served.project}/${served.slug}`;
    const gone = new AbortController();
    const onClose = () => gone.abort();
    ctx.res.once("close", onClose);
    const waiting = d.waiters.wait(key, served.dir, r.commit, r.timeoutMs, gone.signal);
    if (waiting === "busy") {
      ctx.res.off("close", onClose);
      log.warn({ repo: key, requestId: ctx.requestId }, "long-poll refused: too many waiting clients");
      return sendError(ctx, 503, "busy", "too many clients are waiting on this mirror; retry shortly", { "Retry-After": "5" });
    }
    const result = await waiting;
    ctx.res.off("close", onClose);
    if (ctx.res.destroyed || gone.signal.aborted) return;
    sendJson(ctx, 200, { repository: key, commit: r.commit, present: result.present, waitedMs: result.waitedMs, timeoutMs: r.timeoutMs });
  };
}
