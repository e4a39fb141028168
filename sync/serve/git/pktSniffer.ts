/**
 * Looks at an upload-pack request as it streams past (bytes go through unchanged) to tell what
 * it is for metrics and logs: a clone (wants, no haves), an incremental fetch (haves), a v2
 * ls-refs (ls-remote), or something else. Only pkt-line headers and the first bytes of each
 * payload are looked at; nothing is kept. Git validates the request itself: a malformed one just
 * stops the sniffing.
 */
import { Transform, TransformCallback } from "node:stream";

export type RequestKind = "clone" | "fetch" | "ls-refs" | "other";

export interface RequestSummary {
  /** v2 `command=...`, if any. */
  command?: string;
  wants: number;
  haves: number;
  /** deepen / deepen-since / deepen-not (a shallow clone or fetch). */
  shallow: boolean;
  /** a `filter` line (partial clone). */
  filter: boolean;
}

export function classify(s: RequestSummary): RequestKind {
  if (s.command !== undefined && s.command !== "fetch") return s.command === "ls-refs" ? "ls-refs" : "other";
  if (s.wants === 0) return "other";
  return s.haves === 0 ? "clone" : "fetch";
}

/** Enough of a payload to recognise "command=object-info", "deepen-since " and the like. */
const HEAD_BYTES = 24;

export class PktSniffer extends Transform {
  readonly summary: RequestSummary = { wants: 0, haves: 0, shallow: false, filter: false };
  private lenBuf = "";
  private remaining = 0; // payload bytes still to skip
  private head = ""; // first bytes of the current payload
  private headWanted = 0;
  private stopped = false;

  constructor(private maxInspect = 8 * 1024 * 1024) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (!this.stopped) this.scan(chunk);
    cb(null, chunk);
  }

  private scan(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length && !this.stopped) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length - i);
        if (this.head.length < this.headWanted) this.head += chunk.toString("latin1", i, i + Math.min(take, this.headWanted - this.head.length));
        this.remaining -= take;
        i += take;
        if (this.remaining === 0) this.line(this.head);
        continue;
      }
      this.lenBuf += String.fromCharCode(chunk[i++]);
      if (this.lenBuf.length < 4) continue;
      if (!/^[0-9a-f]{4}$/.test(this.lenBuf)) {
        this.stopped = true;
        break;
      }
      const len = parseInt(this.lenBuf, 16);
      this.lenBuf = "";
      if (len <= 2) continue; // flush, delim, response-end
      if (len === 3) {
        this.stopped = true;
        break;
      }
      this.remaining = len - 4;
      this.head = "";
      this.headWanted = Math.min(HEAD_BYTES, this.remaining);
    }
    this.maxInspect -= chunk.length;
    if (this.maxInspect <= 0) this.stopped = true;
  }

  private line(p: string): void {
    const s = this.summary;
    if (p.startsWith("want ") || p.startsWith("want-ref ")) s.wants++;
    else if (p.startsWith("have ")) s.haves++;
    else if (p.startsWith("command=")) s.command = p.slice(8).replace(/\n$/, "").slice(0, 16);
    else if (p.startsWith("deepen")) s.shallow = true;
    else if (p.startsWith("filter ")) s.filter = true;
  }
}
