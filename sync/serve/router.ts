/**
 * A tiny router for node:http: exact routes with per-method handlers, plus prefix mounts that
 * take a whole subtree (Git smart HTTP will mount "/scm/" and stream its own responses).
 *
 * Why not a framework: the daemon needs a handful of routes, streaming bodies in both
 * directions and full control over when a body is read (the webhook must answer 413/401
 * before reading). A framework would add body parsing and buffering we would have to disable,
 * plus a dependency to keep patched; this is ~100 lines with nothing hidden.
 *
 * What every request gets here: a request id (reused from a sane X-Request-Id, which nginx and
 * Bitbucket's webhooks send, else a fresh UUID) echoed in the X-Request-Id response header and
 * in every error body; JSON 404 for unknown paths; 405 with Allow for wrong methods; HEAD
 * served by GET handlers (node drops the body); a JSON 500 if a handler throws.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Handler, Log, RequestContext, silentLog } from "./http";
import { sendError } from "./respond";

export type Method = "GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "PATCH" | "OPTIONS";

const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The caller's request id if it is safe to echo into headers and logs, else a new one. */
export function requestIdFor(header: string | string[] | undefined): string {
  return typeof header === "string" && SANE_REQUEST_ID.test(header) ? header : randomUUID();
}

/** Split a request target into path and query. Never `new URL(target, base)`: "//host/x" would become a host. */
export function splitTarget(target: string | undefined): { path: string; query: URLSearchParams } {
  const t = target ?? "/";
  const q = t.indexOf("?");
  let path = q === -1 ? t : t.slice(0, q);
  // "/status/" and "/status" are the same resource; the root stays "/".
  if (path.length > 1 && path.endsWith("/")) path = path.slice(0, -1);
  return { path: path || "/", query: new URLSearchParams(q === -1 ? "" : t.slice(q + 1)) };
}

export class Router {
  private readonly routes = new Map<string, Partial<Record<Method, Handler>>>();
  private mounts: { prefix: string; handler: Handler; match?: (rawPath: string) => boolean }[] = [];
  private readonly log: Log;

  constructor(opts: { log?: Log } = {}) {
    this.log = opts.log ?? silentLog;
  }

  /** Handlers for one exact path (trailing slash ignored). Adding a method to a known path merges. */
  route(path: string, handlers: Partial<Record<Method, Handler>>): this {
    const key = splitTarget(path).path;
    this.routes.set(key, { ...this.routes.get(key), ...handlers });
    return this;
  }

  /**
   * A handler for every path under `prefix` ("/scm/" takes "/scm/P/r.git/info/refs"), any
   * method: the handler answers 405 itself if it wants to. Longest prefix wins; exact routes
   * win over mounts. May be called after the server started listening. With `match`, the mount
   * takes only the paths under `prefix` it accepts, and is asked before a plain mount of the same
   * prefix (LFS takes /scm/P/r.git/info/lfs/... from the Git routes' /scm/).
   */
  mount(prefix: string, handler: Handler, match?: (rawPath: string) => boolean): this {
    if (!prefix.startsWith("/") || !prefix.endsWith("/")) throw new Error(`mount prefix must start and end with "/": ${JSON.stringify(prefix)}`);
    this.mounts = [...this.mounts, { prefix, handler, match }].sort((a, b) => b.prefix.length - a.prefix.length || Number(!a.match) - Number(!b.match));
    return this;
  }

  /** The node:http request listener. */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    const requestId = requestIdFor(req.headers["x-request-id"]);
    res.setHeader("X-Request-Id", requestId);
    const { path, query } = splitTarget(req.url);
    const ctx: RequestContext = { req, res, path, query, requestId };
    const method = (req.method ?? "GET").toUpperCase();

    let handler: Handler | undefined;
    const methods = this.routes.get(path);
    if (methods) {
      handler = methods[method as Method] ?? (method === "HEAD" ? methods.GET : undefined);
      if (!handler) {
        const allow = Object.keys(methods);
        if (methods.GET && !methods.HEAD) allow.push("HEAD");
        sendError(ctx, 405, "method_not_allowed", `${method} is not allowed on ${path}`, { Allow: allow.join(", ") });
        return;
      }
    } else {
      const rawPath = (req.url ?? "/").split("?")[0];
      handler = this.mounts.find((m) => rawPath.startsWith(m.prefix) && (!m.match || m.match(rawPath)))?.handler;
    }
    if (!handler) {
      sendError(ctx, 404, "not_found", `no such resource: ${path}`);
      return;
    }
    this.run(handler, ctx);
  };

  private run(handler: Handler, ctx: RequestContext): void {
    const fail = (err: unknown) => {
      this.log.error({ err, requestId: ctx.requestId, path: ctx.path }, "request handler failed");
      if (!ctx.res.headersSent) sendError(ctx, 500, "internal_error", "internal error", { Connection: "close" });
      else ctx.res.destroy();
    };
    try {
      const p = handler(ctx);
      if (p && typeof p.then === "function") p.then(undefined, fail);
    } catch (err) {
      fail(err);
    }
  }
}
