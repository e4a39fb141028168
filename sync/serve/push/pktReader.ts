/**
 * pkt-lines read from a byte stream that arrives in arbitrary chunks (gitprotocol-common):
 * 4 hex digits of length including themselves, then the payload; "0000" flush, "0001"
 * delim, "0002" response-end. Calls back per line; keeps only the line being read. Pure state
 * machine, no I/O: the push request's sniffer and the report tap both read through it.
 */
export class PktReader {
  private len = "";
  private remaining = 0;
  private parts: Buffer[] = [];
  broken = false;

  constructor(
    private readonly onLine: (payload: Buffer) => void,
    private readonly onFlush: () => void,
  ) {}

  /** Feed bytes; returns how many were consumed before a flush-pkt ended the stream (all, if none). */
  feed(b: Buffer, stopAtFlush = false): number {
    let i = 0;
    while (i < b.length && !this.broken) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, b.length - i);
        this.parts.push(b.subarray(i, i + take));
        this.remaining -= take;
        i += take;
        if (this.remaining === 0) this.onLine(Buffer.concat(this.parts));
        continue;
      }
      this.len += String.fromCharCode(b[i++]);
      if (this.len.length < 4) continue;
      const n = /^[0-9a-f]{4}$/.test(this.len) ? parseInt(this.len, 16) : -1;
      this.len = "";
      if (n === 0) {
        this.onFlush();
        if (stopAtFlush) return i;
      } else if (n === 1 || n === 2) continue;
      else if (n < 4) this.broken = true;
      else if (n === 4) this.onLine(Buffer.alloc(0));
      else {
        this.remaining = n - 4;
        this.parts = [];
      }
    }
    return b.length;
  }

  /** Bytes of a length header read but not yet complete (0-3). */
  get pendingHeader(): number {
    return this.len.length;
  }
}

