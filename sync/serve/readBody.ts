/**
 * Read a small request body (a webhook's JSON) with a hard size limit. Webhook bodies are a few
 * KB, so collecting them is fine; the limit makes sure nobody can make us hold more.
 */
import { IncomingMessage } from "node:http";

export class BodyTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`request body larger than ${limit} bytes`);
  }
}

/** The client went away (or the stream failed) before the body was complete. */
export class BodyIncomplete extends Error {}

/**
 * A declared Content-Length above the limit is refused before reading a byte; a chunked body is
 * refused as soon as it crosses the limit. Either way the rest is left unread: the caller
 * answers 413 with `Connection: close`, and node closes the socket after the answer.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > limit) return Promise.reject(new BodyTooLarge(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (err?: Error) => {
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
      else chunks.push(chunk);
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
  });
}
