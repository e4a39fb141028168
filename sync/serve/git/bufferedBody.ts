/**
 * A small request body held in memory, for the pack cache: its key is a hash of the whole
 * decoded body, so the body must be complete before git starts. Bodies of clones and of most
 * fetches are a few KB (want/have lines); a bigger one is not cached but replayed, unchanged,
 * into the usual streaming path (what was read so far, then the rest of the request).
 */
import { PassThrough, pipeline, Readable, Transform, Writable } from "node:stream";
import type { Reservation } from "../bodyBudget";

export type RawBody =
  | { complete: true; raw: Buffer }
  | { complete: false; head: Buffer[] }
  | { complete: false; aborted: true }
  /** overBudget: the daemon-wide body budget is spent (503); timedOut: no byte for idleMs (408). */
  | { complete: false; overBudget: true }
  | { complete: false; timedOut: true };

export interface ReadOptions {
  /** Every byte held is reserved here first (bodyBudget.ts). */
  reservation?: Reservation;
  /** Give up when no byte came for this long (default: never). */
  idleMs?: number;
}

/**
 * Read the raw request body if it ends within `limit` bytes; otherwise stop reading and say so.
 * A declared Content-Length is reserved up front (up to `limit`), so a request the budget cannot
 * take is refused before a byte of it is read.
 */
export function readUpTo(req: Readable & { headers?: Record<string, string | string[] | undefined> }, limit: number, o: ReadOptions = {}): Promise<RawBody> {
  const declared = Number(req.headers?.["content-length"] ?? 0);
  if (o.reservation && Number.isFinite(declared) && !o.reservation.ensure(Math.min(Math.max(0, declared), limit + 1))) {
    return Promise.resolve({ complete: false, overBudget: true });
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      if (o.idleMs === undefined) return;
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        req.pause();
        done({ complete: false, timedOut: true });
      }, o.idleMs);
    };
    const done = (r: RawBody) => {
      if (timer) clearTimeout(timer);
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onAbort);
      req.off("close", onClose);
      resolve(r);
    };
    const onData = (c: Buffer) => {
      if (o.reservation && !o.reservation.ensure(Math.min(size + c.length, limit + 1))) {
        req.pause();
        return done({ complete: false, overBudget: true });
      }
      chunks.push(c);
      size += c.length;
      if (size > limit) {
        req.pause();
        done({ complete: false, head: chunks });
      } else arm();
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
    arm();
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
