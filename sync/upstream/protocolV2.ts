/**
 * A git protocol v2 client session (gitprotocol-v2(5)) over one SSH channel running
 * `git-upload-pack` with GIT_PROTOCOL=version=2: `ls-refs` and `fetch` commands, as many as
 * needed, on the same channel (upload-pack's v2 serve loop answers one command after another).
 *
 * Why not `git fetch`: each `git fetch` over OpenSSH pays, before the first pack byte, a new
 * channel on the master (one round trip), upload-pack's start and its capability
 * advertisement (one more), then `ls-refs` and the negotiation; and on the mirror, git, ssh
 * and index-pack processes. A session that is already open answers a `fetch` whose wants are
 * known (the webhook names the new tips) in one round trip, and a first clone costs one
 * channel and one local process (index-pack) instead of four.
 *
 * The request renderers and response parsers are pure; V2Session is the thin I/O shell. Pack
 * bytes are handed to a sink as they arrive (backpressure included): never held in memory.
 */
import { Advertisement } from "./advertisement";

/** Raised when the primary does not speak v2 on this channel (no AcceptEnv GIT_PROTOCOL): use `git fetch`. */
export class V2UnavailableError extends Error {
  override name = "V2UnavailableError";
}

export type Pkt = { kind: "data"; payload: Buffer } | { kind: "flush" } | { kind: "delim" } | { kind: "end" };

/** One pkt-line: 4 hex digits of length (including themselves), then the payload. */
export function pktLine(payload: string): string {
  const len = Buffer.byteLength(payload) + 4;
  if (len > 65520) throw new Error("pkt-line too long");
  return len.toString(16).padStart(4, "0") + payload;
}

const FLUSH = "0000";
const DELIM = "0001";
const OID = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

/** `ls-refs` for every ref, with HEAD's target (symrefs). */
export function lsRefsRequest(): string {
  return pktLine("command=ls-refs\n") + DELIM + pktLine("symrefs\n") + FLUSH;
}

/**
 * `fetch` of `wants` given `haves`, ending with `done`: the server answers with the pack at
 * once (no acknowledgment round). A thin pack when we have a base (index-pack --fix-thin).
 */
export function fetchRequest(wants: readonly string[], haves: readonly string[]): string {
  for (const o of [...wants, ...haves]) if (!OID.test(o)) throw new Error(`not an object id: ${JSON.stringify(o)}`);
  const args = [haves.length > 0 ? "thin-pack\n" : "", "no-progress\n", "ofs-delta\n", ...wants.map((w) => `want ${w}\n`), ...haves.map((h) => `have ${h}\n`), "done\n"].filter(Boolean);
  return pktLine("command=fetch\n") + DELIM + args.map(pktLine).join("") + FLUSH;
}

/** Parse `ls-refs` lines: `<oid> <name>[ symref-target:<t>]...`. HEAD gives headTarget only. */
export function parseLsRefs(lines: readonly Buffer[]): Advertisement {
  const refs = new Map<string, string>();
  let headTarget: string | undefined;
  for (const raw of lines) {
    const line = raw.toString("utf8").replace(/\n$/, "");
    if (line.startsWith("ERR ")) throw new Error(`primary refused: ${line.slice(4)}`);
    const [oid, name, ...attrs] = line.split(" ");
    if (!OID.test(oid) && oid !== "unborn") throw new Error(`malformed ls-refs line: ${JSON.stringify(line.slice(0, 120))}`);
    if (name === "HEAD") {
      for (const a of attrs) if (a.startsWith("symref-target:")) headTarget = a.slice("symref-target:".length);
      continue;
    }
    if (name && OID.test(oid)) refs.set(name, oid);
  }
  return { refs, headTarget };
}

/**
 * Incremental pkt-line splitter that keeps flush, delim and response-end apart. Pure. Chunks
 * are kept as they came and joined only where a packet spans two of them, so a backlog of
 * pack data is never copied again per chunk.
 */
export class PktSplitter {
  private chunks: Buffer[] = [];
  private total = 0;

  get buffered(): number {
    return this.total;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** Make the first chunk at least `n` bytes long (joining the following ones), if there are. */
  private head(n: number): Buffer | undefined {
    if (this.total < n) return undefined;
    while (this.chunks[0].length < n) {
      const [a, b] = this.chunks;
      this.chunks.splice(0, 2, Buffer.concat([a, b]));
    }
    return this.chunks[0];
  }

  private consume(n: number): void {
    this.total -= n;
    const rest = this.chunks[0].subarray(n);
    if (rest.length === 0) this.chunks.shift();
    else this.chunks[0] = rest;
  }

  /** The next complete pkt, or undefined when more bytes are needed. */
  next(): Pkt | undefined {
    const h = this.head(4);
    if (!h) return undefined;
    const hex = h.subarray(0, 4).toString("latin1");
    if (!/^[0-9a-f]{4}$/.test(hex)) throw new Error(`malformed pkt-line length ${JSON.stringify(hex)} from the primary`);
    const len = parseInt(hex, 16);
    if (len <= 2) {
      this.consume(4);
      return { kind: len === 0 ? "flush" : len === 1 ? "delim" : "end" };
    }
    if (len < 4) throw new Error(`malformed pkt-line length ${len} from the primary`);
    const whole = this.head(len);
    if (!whole) return undefined;
    const payload = whole.subarray(4, len);
    this.consume(len);
    return { kind: "data", payload };
  }
}

/** The channel a session runs on (an ssh2 ClientChannel fits). */
export interface V2Channel {
  write(data: string | Buffer): boolean;
  on(event: "data", fn: (chunk: Buffer) => void): unknown;
  on(event: "close", fn: () => void): unknown;
  stderr: { on(event: "data", fn: (chunk: Buffer) => void): unknown };
  pause(): unknown;
  resume(): unknown;
  close(): unknown;
}

/** Where a fetch's pack bytes go; a returned promise is waited for (backpressure). */
export type PackSink = (chunk: Buffer) => void | Promise<void>;

/** Pause the channel beyond this many unread bytes: the SSH window then holds the primary back. */
const HIGH_WATER = 256 * 1024;

export class V2Session {
  private readonly split = new PktSplitter();
  private wake?: () => void;
  private closedWith?: Error;
  private stderr = "";
  private busy = false;
  private paused = false;
  lastUsed = Date.now();

  private constructor(private readonly ch: V2Channel, readonly path: string, private readonly onClose: () => void) {
    ch.on("data", (c: Buffer) => {
      this.split.push(c);
      if (this.split.buffered > HIGH_WATER && !this.paused) {
        this.paused = true;
        ch.pause();
      }
      this.wake?.();
    });
    ch.stderr.on("data", (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-2000);
    });
    ch.on("close", () => {
      this.closedWith ??= new Error(`the primary closed the upload-pack session for ${path}${this.stderr.trim() ? `: ${this.stderr.trim()}` : ""}`);
      this.onClose();
      this.wake?.();
    });
  }

  /** Start a session on a channel that runs upload-pack in v2: reads its capability advertisement. */
  static async start(ch: V2Channel, path: string, onClose: () => void, signal?: AbortSignal): Promise<V2Session> {
    const s = new V2Session(ch, path, onClose);
    try {
      const caps = await s.readSection(signal);
      const first = caps[0]?.toString("utf8").trim();
      if (first !== "version 2") throw new V2UnavailableError(`the primary answered ${JSON.stringify(first?.slice(0, 60) ?? "nothing")} instead of protocol v2 for ${path}`);
      if (!caps.some((c) => c.toString("utf8").startsWith("fetch"))) throw new V2UnavailableError(`the primary offers no v2 fetch for ${path}`);
    } catch (e) {
      s.close();
      throw e;
    }
    return s;
  }

  get open(): boolean {
    return this.closedWith === undefined;
  }

  close(): void {
    this.closedWith ??= new Error("session closed");
    this.ch.close();
  }

  async lsRefs(signal?: AbortSignal): Promise<Advertisement> {
    return this.exclusive(async () => {
      this.ch.write(lsRefsRequest());
      return parseLsRefs(await this.readSection(signal));
    });
  }

  /**
   * Fetch `wants` (haves: objects we hold) and stream the pack into `sink`. `afterSend` runs
   * once the request is on its way: local setup there (spawning index-pack) overlaps the
   * round trip instead of delaying the request.
   */
  async fetch(wants: readonly string[], haves: readonly string[], sink: PackSink, signal?: AbortSignal, afterSend?: () => void): Promise<void> {
    return this.exclusive(async () => {
      this.ch.write(fetchRequest(wants, haves));
      afterSend?.();
      let inPack = false;
      for (;;) {
        const p = await this.nextPkt(signal);
        if (p.kind === "flush" || p.kind === "end") {
          if (!inPack) throw new Error(`the primary sent no pack for ${this.path}`);
          return;
        }
        if (p.kind === "delim") continue;
        if (!inPack) {
          const line = p.payload.toString("utf8");
          if (line.startsWith("ERR ")) throw new Error(`primary refused the fetch of ${this.path}: ${line.slice(4).trim()}`);
          if (line === "packfile\n") inPack = true;
          // Other sections (acknowledgments, shallow-info, wanted-refs) carry nothing we asked for.
          continue;
        }
        const band = p.payload[0];
        if (band === 1) await sink(p.payload.subarray(1));
        else if (band === 3) throw new Error(`primary failed the fetch of ${this.path}: ${p.payload.subarray(1).toString("utf8").trim()}`);
        // band 2: progress (we asked for none)
      }
    });
  }

  /** One command at a time; a failed command leaves the stream in an unknown place: close. */
  private async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.busy) throw new Error("v2 session busy");
    if (this.closedWith) throw this.closedWith;
    this.busy = true;
    try {
      const r = await fn();
      this.lastUsed = Date.now();
      return r;
    } catch (e) {
      this.close();
      throw e;
    } finally {
      this.busy = false;
    }
  }

  private async readSection(signal?: AbortSignal): Promise<Buffer[]> {
    const lines: Buffer[] = [];
    for (;;) {
      const p = await this.nextPkt(signal);
      if (p.kind !== "data") return lines;
      lines.push(p.payload);
    }
  }

  private async nextPkt(signal?: AbortSignal): Promise<Pkt> {
    for (;;) {
      const p = this.split.next();
      if (this.paused && this.split.buffered < HIGH_WATER / 2) {
        this.paused = false;
        this.ch.resume();
      }
      if (p) return p;
      if (this.closedWith) throw this.closedWith;
      signal?.throwIfAborted();
      await new Promise<void>((resolve) => {
        const onAbort = () => resolve();
        signal?.addEventListener("abort", onAbort, { once: true });
        this.wake = () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }
}
