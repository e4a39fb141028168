/**
 * The shapes every HTTP handler of the daemon shares: what a request brings (RequestContext),
 * what handles it (Handler), and the log it writes to. Types only (and the silent log), so the
 * router, the answer writers and the handlers all depend on this and not on each other.
 */
import type { IncomingMessage, ServerResponse } from "node:http";

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  /** Path without the query string, as sent (not percent-decoded). */
  path: string;
  query: URLSearchParams;
  requestId: string;
}

export type Handler = (ctx: RequestContext) => void | Promise<void>;

/** pino-compatible subset, so the daemon's logger plugs in and tests can pass nothing. */
export interface Log {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLog: Log = { info() {}, warn() {}, error() {} };
