/** A writable stream that keeps what was written, for CLI shells that take out/err streams. */
import { Writable } from "node:stream";

export function textSink(): { stream: Writable; text: () => string } {
  let text = "";
  return {
    stream: new Writable({
      write(chunk: Buffer, _enc, cb) {
        text += chunk.toString();
        cb();
      },
    }),
    text: () => text,
  };
}
