/**
 * Relays the primary's receive-pack answer to the client byte for byte, reading its report as
 * it passes, and holds back only the answer's last four bytes (the final flush-pkt) until the
 * mirror has fetched what was pushed (read-your-writes, pushProxy.ts).
 *
 * The answer (gitprotocol-pack "Report Status", gitprotocol-capabilities "side-band-64k"):
 *
 *   with report-status, no side-band:  "unpack ok" / "unpack <error>", then per ref
 *                                      "ok <ref>" or "ng <ref> <reason>", then flush-pkt
 *   with side-band-64k (git's default): every pkt-line starts with a band byte: 1 = the
 *                                      report above (itself pkt-lines, with its own flush),
 *                                      2 = progress ("remote: " lines: hook output), 3 = a
 *                                      fatal error; the answer ends with a flush-pkt
 *   without report-status:             nothing to read; the answer just ends
 *
 * In both framings the first flush-pkt of the outer stream ends the answer: the client stops
 * reading there. Holding it back keeps the client's `git push` from returning before the
 * mirror has the refs, and leaves room for one more side-band-2 line ("remote: ...") when the
 * mirror could not catch up in time. Which framing is in use is told by the first pkt-line:
 * a band byte (1, 2, 3) or report text ("unpack ...").
 */
import { Transform, TransformCallback } from "node:stream";
import { PktReader } from "./pktReader";

export interface PushReport {
  /** The answer used side-band framing. */
  sideband: boolean;
  /** "ok", or unpack's error; undefined when no report came. */
  unpack?: string;
  ok: string[];
  ng: { ref: string; reason: string }[];
  /** A side-band-3 message: the primary gave up. */
  fatal?: string;
  /** The answer's final flush-pkt came (and is being held). */
  ended: boolean;
}

/** Did the primary update any ref? (The mirror then has something to fetch.) Pure. */
export function accepted(r: PushReport): boolean {
  return r.unpack === "ok" && r.fatal === undefined && r.ok.length > 0;
}

const MAX_KEPT_REFS = 10_000;
/**
 * What may be held back after the final flush. A well-formed answer ends with that flush, so
 * only a malformed one sends more: past this, everything held goes out and the rest streams
 * through (the read-your-writes hold is given up for it) instead of growing in memory.
 */
export const MAX_HELD_BYTES = 64 * 1024;

/** The progress line the client prints as "remote: <text>" (side-band 2); pure. */
export function progressPkt(text: string): Buffer {
  const body = Buffer.concat([Buffer.from([2]), Buffer.from(text.endsWith("\n") ? text : `${text}\n`, "utf8")]);
  return Buffer.concat([Buffer.from((body.length + 4).toString(16).padStart(4, "0"), "ascii"), body]);
}

export class ReportTap extends Transform {
  readonly report: PushReport = { sideband: false, ok: [], ng: [], ended: false };
  private first = true;
  private readonly outer: PktReader;
  private readonly inner: PktReader;
  /** The final flush-pkt and anything after it, held until beforeEnd settles. */
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** More than MAX_HELD_BYTES came after the final flush: nothing is held any more. */
  private released = false;

  /** Hold `b` (after the final flush), or let it through once the hold is given up. */
  private hold(b: Buffer): void {
    if (this.released) {
      this.push(b);
      return;
    }
    this.held.push(b);
    this.heldBytes += b.length;
    if (this.heldBytes <= MAX_HELD_BYTES) return;
    this.released = true;
    for (const h of this.held) this.push(h);
    this.held = [];
  }

  /**
   * @param beforeEnd called once the primary's answer is complete; the answer's end waits for
   *   it. A string it resolves to is sent as one more progress line, when side-band is in use.
   */
  constructor(private readonly beforeEnd: (report: PushReport) => Promise<string | undefined>) {
    super();
    this.inner = new PktReader(
      (p) => this.reportLine(p.toString("utf8")),
      () => undefined,
    );
    this.outer = new PktReader(
      (p) => this.outerLine(p),
      () => (this.report.ended = true),
    );
  }

  private outerLine(p: Buffer): void {
    if (this.first) {
      this.first = false;
      this.report.sideband = p.length > 0 && p[0] >= 1 && p[0] <= 3;
    }
    if (!this.report.sideband) return this.reportLine(p.toString("utf8"));
    const band = p[0];
    if (band === 1) this.inner.feed(p.subarray(1));
    else if (band === 3) this.report.fatal = p.subarray(1, 1 + 1024).toString("utf8").trim();
  }

  private reportLine(line: string): void {
    const l = line.replace(/\n$/, "");
    const r = this.report;
    if (l.startsWith("unpack ")) r.unpack = l.slice(7);
    else if (l.startsWith("ok ")) {
      if (r.ok.length < MAX_KEPT_REFS) r.ok.push(l.slice(3));
    } else if (l.startsWith("ng ")) {
      const [ref, ...reason] = l.slice(3).split(" ");
      if (r.ng.length < MAX_KEPT_REFS) r.ng.push({ ref, reason: reason.join(" ") });
    }
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.report.ended) {
      this.hold(chunk);
      return cb();
    }
    // Header bytes kept back from the last chunk (they might have been the flush's start).
    const all = this.stash.length > 0 ? Buffer.concat([this.stash, chunk]) : chunk;
    const fromStash = this.stash.length;
    this.stash = Buffer.alloc(0);
    if (this.outer.broken) {
      this.push(all);
      return cb();
    }
    const used = fromStash + this.outer.feed(chunk, true);
    if (this.report.ended) {
      if (used > 4) this.push(all.subarray(0, used - 4));
      this.hold(all.subarray(used - 4));
    } else {
      // An incomplete length header waits for the next chunk: it could be the flush.
      const keep = this.outer.broken ? 0 : this.outer.pendingHeader;
      if (all.length > keep) this.push(all.subarray(0, all.length - keep));
      this.stash = all.subarray(all.length - keep);
    }
    cb();
  }

  private stash: Buffer = Buffer.alloc(0);

  override _flush(cb: TransformCallback): void {
    const finish = (note: string | undefined) => {
      if (this.stash.length > 0) this.push(this.stash);
      if (note !== undefined && this.report.sideband && this.report.ended && !this.released) this.push(progressPkt(note));
      for (const b of this.held) this.push(b);
      cb();
    };
    this.beforeEnd(this.report).then(finish, () => finish(undefined));
  }
}
