/**
 * Read a small request body (a webhook's JSON) with a hard size limit. Webhook bodies are a few
 * KB, so collecting them is fine; the limit makes sure nobody can make us hold more.
 */
import { IncomingMessage } from "node:http";
import type { Reservation } from "./bodyBudget";

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
 * answers 413 with `Connection: close`, and node closes the socket after the answer.
 */
export function readBody(req: IncomingMessage, limit: number, o: { reservation?: Reservation; idleMs?: number } = {}): Promise<Buffer> {
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > limit) return Promise.reject(new BodyTooLarge(limit));
  if (o.reservation && !o.reservation.ensure(Number(declared ?? 0) || 0)) return Promise.reject(new BodyOverBudget());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      if (o.idleMs === undefined) return;
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => done(new BodyTimedOut(`no part of the body came for ${o.idleMs} ms`)), o.idleMs);
    };
    const done = (err?: Error) => {
      if (timer) clearTimeout(timer);
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
      if (err) {
        req.pause();
        reject(err);
      } else resolve(Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) done(new BodyTooLarge(limit));
      else if (o.reservation && !o.reservation.ensure(size)) done(new BodyOverBudget());
      else {
        chunks.push(chunk);
        arm();
      }
    };
    const onEnd = () => done();
    const onError = (e: Error) => done(new BodyIncomplete(e.message));
    const onClose = () => {
      if (!req.complete) done(new BodyIncomplete("client closed the connection"));
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("close", onClose);
    arm();
  });
}
