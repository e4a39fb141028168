/**
 * Parsing of git's protocol-v0 ref advertisement (what `git-upload-pack` writes first).
 * Pure: the bytes come from an SSH channel in upstreamPool.ts.
 * Format: gitprotocol-pack(5), "Reference Discovery": pkt-lines `<oid> SP <ref> [NUL caps] LF`,
 * ending with a flush-pkt "0000"; an empty repository sends `<zero-oid> capabilities^{}`.
 */

export interface Advertisement {
  /** refname -> object id, without peeled `^{}` entries and without HEAD. */
  refs: Map<string, string>;
  /** Where HEAD points on the primary (from the `symref=HEAD:...` capability), if said. */
  headTarget?: string;
}

/** Incremental pkt-line reader: feed chunks, get payloads; `null` marks a flush-pkt. */
export class PktLineReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Array<Buffer | null> {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Array<Buffer | null> = [];
    while (this.buf.length >= 4) {
      const lenHex = this.buf.subarray(0, 4).toString("latin1");
      if (!/^[0-9a-f]{4}$/.test(lenHex)) {
        throw new Error(`malformed pkt-line length ${JSON.stringify(lenHex)} from the primary`);
      }
      const len = parseInt(lenHex, 16);
      if (len === 0 || len === 1 || len === 2) {
        // flush (0000), delim (0001), response-end (0002): all end a section here.
        out.push(null);
        this.buf = this.buf.subarray(4);
        continue;
      }
      if (len < 4) throw new Error(`malformed pkt-line length ${len} from the primary`);
      if (this.buf.length < len) break;
      out.push(this.buf.subarray(4, len));
      this.buf = this.buf.subarray(len);
    }
    return out;
  }
}

/** Parse the payloads of one advertisement (up to, not including, its flush). */
export function parseAdvertisement(lines: Buffer[]): Advertisement {
  const refs = new Map<string, string>();
  let headTarget: string | undefined;
  lines.forEach((raw, i) => {
    let line = raw.toString("utf8");
    if (line.endsWith("\n")) line = line.slice(0, -1);
    if (line.startsWith("ERR ")) throw new Error(`primary refused: ${line.slice(4)}`);
    if (i === 0 && line.startsWith("version ")) return; // protocol v1 preamble
    const nul = line.indexOf("\0");
    if (nul >= 0) {
      const caps = line.slice(nul + 1).split(" ");
      for (const cap of caps) {
        if (cap.startsWith("symref=HEAD:")) headTarget = cap.slice("symref=HEAD:".length);
      }
      line = line.slice(0, nul);
    }
    const sp = line.indexOf(" ");
    if (sp !== 40 && sp !== 64) throw new Error(`malformed ref advertisement line: ${JSON.stringify(line.slice(0, 120))}`);
    const oid = line.slice(0, sp);
    const name = line.slice(sp + 1);
    if (name === "capabilities^{}" || name === "HEAD" || name.endsWith("^{}")) return;
    refs.set(name, oid);
  });
  return { refs, headTarget };
}
