/**
 * The check every LFS object passes on its way into the store: its SHA-256 must be its oid and
 * its length its size. A pass-through that holds back the last chunk it saw until the end, so
 * a reader downstream (the client the object streams to while it is written) never receives
 * the complete bytes of an object that turns out corrupt: on a mismatch the stream errors
 * instead of delivering the held chunk, and the client's transfer fails short.
 */
import { createHash, Hash } from "node:crypto";
import { Transform, TransformCallback } from "node:stream";

export class ObjectMismatch extends Error {
  override name = "ObjectMismatch";
}

export class ObjectCheck extends Transform {
  private readonly hash: Hash = createHash("sha256");
  /** The last chunk seen, passed on only when the next one comes (or, at the end, if all is well). */
  private held: Buffer | undefined;
  private seen = 0;

  constructor(
    readonly oid: string,
    readonly size: number,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.seen + chunk.length > this.size) return cb(new ObjectMismatch(`object ${this.oid} is longer than its size ${this.size}`));
    this.seen += chunk.length;
    this.hash.update(chunk);
    const out = this.held;
    this.held = chunk;
    cb(null, out);
  }

  override _flush(cb: TransformCallback): void {
    if (this.seen !== this.size) return cb(new ObjectMismatch(`object ${this.oid}: got ${this.seen} bytes, its size is ${this.size}`));
    const got = this.hash.digest("hex");
    if (got !== this.oid) return cb(new ObjectMismatch(`object ${this.oid}: content hashes to ${got}`));
    cb(null, this.held);
  }
}
