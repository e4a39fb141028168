/**
 * A pass-through that fails once more than `limit` bytes went through: the bound on an
 * upload-pack request body after gzip decoding (a few KB of gzip can inflate to gigabytes).
 */
import { Transform, TransformCallback } from "node:stream";

export class RequestTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`request body larger than ${limit} bytes`);
    this.name = "RequestTooLarge";
  }
}

export class ByteLimit extends Transform {
  private seen = 0;

  constructor(private readonly limit: number) {
    super();
  }

  get bytes(): number {
    return this.seen;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.limit) cb(new RequestTooLarge(this.limit));
    else cb(null, chunk);
  }
}
