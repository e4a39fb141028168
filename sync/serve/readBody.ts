/**
 * Read a small request body (a webhook's JSON) with a hard size limit. Webhook bodies are a few
 * KB, so collecting them is fine; the limit makes sure nobody can make us hold more.
 */
import { IncomingMessage } from "node:http";
import { ReadOptions, readUpTo } from "./git/bufferedBody";

export class BodyTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`request body larger than ${limit} bytes`);
  }
}

/** The client went away (or the stream failed) before the body was complete. */
export class BodyIncomplete extends Error {}

/** The daemon-wide body budget is spent (503). */
export class BodyOverBudget extends Error {}

/** No byte of the body came for too long (408). */
export class BodyTimedOut extends Error {}

/**
 * A declared Content-Length above the limit is refused before reading a byte; a chunked body is
 * refused as soon as it crosses the limit. Either way the rest is left unread: the caller
 * answers 413 with `Connection: close`, and node closes the socket after the answer. The
 * reading itself (budget, idle timer, the client going away) is the Git path's (readUpTo).
 */
export async function readBody(req: IncomingMessage, limit: number, o: ReadOptions = {}): Promise<Buffer> {
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > limit) throw new BodyTooLarge(limit);
  const r = await readUpTo(req, limit, o);
  if (r.complete) return r.raw;
  if ("head" in r) throw new BodyTooLarge(limit);
  if ("overBudget" in r) throw new BodyOverBudget();
  if ("timedOut" in r) throw new BodyTimedOut(`no part of the body came for ${o.idleMs} ms`);
  throw new BodyIncomplete("client closed the connection");
}
