/**
 * A small request body held in memory, for the pack cache: its key is a hash of the whole
 * decoded body, so the body must be complete before git starts. Bodies of clones and of most
 * fetches are a few KB (want/have lines); a bigger one is not cached but replayed, unchanged,
 * into the usual streaming path (what was read so far, then the rest of the request).
 */
import { PassThrough, pipeline, Readable, Transform, Writable } from "node:stream";

export type RawBody = { complete: true; raw: Buffer } | { complete: false; head: Buffer[] } | { complete: false; aborted: true };

/** Read the raw request body if it ends within `limit` bytes; otherwise stop reading and say so. */
export function readUpTo(req: Readable, limit: number): Promise<RawBody> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (r: RawBody) => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onAbort);
      req.off("close", onClose);
      resolve(r);
    };
    const onData = (c: Buffer) => {
      chunks.push(c);
      size += c.length;
      if (size > limit) {
        req.pause();
        done({ complete: false, head: chunks });
      }
    };
    const onEnd = () => done({ complete: true, raw: Buffer.concat(chunks, size) });
    const onAbort = () => done({ complete: false, aborted: true });
    const onClose = () => {
      if (!req.readableEnded) onAbort();
    };
    req.on("data", onData);
    req.once("end", onEnd);
    req.once("error", onAbort);
    req.once("close", onClose);
  });
}

/** The chunks already read, then the rest of `rest` (if any), as one stream. */
export function replay(head: Buffer[], rest?: Readable): Readable {
  const out = new PassThrough();
  for (const c of head) out.write(c);
  if (rest) {
    rest.pipe(out);
    rest.resume();
  } else out.end();
  return out;
}

export class DecodedTooLarge extends Error {}

/**
 * Run `raw` through the decoding stages (gunzip, size limit, sniffer) and collect the output
 * up to `cap` bytes. Rejects with the stages' own error (too large, not gzip), or with
 * DecodedTooLarge past `cap`.
 */
export function decode(raw: Buffer, stages: Transform[], cap: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        size += chunk.length;
        if (size > cap) return cb(new DecodedTooLarge(`decoded body larger than ${cap} bytes`));
        chunks.push(chunk);
        cb();
      },
    });
    pipeline([Readable.from([raw]), ...stages, sink] as unknown as [Readable, Writable], (err) => (err ? reject(err) : resolve(Buffer.concat(chunks, size))));
  });
}
