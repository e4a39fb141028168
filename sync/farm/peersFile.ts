/**
 * The farm's peers file (mirror.farm.peersFile): one node base URL per line, `#` comments.
 * parsePeers is pure; PeersFile re-reads the file when its identity or content changes
 * (inode, size, mtime: an atomic rename makes a new inode, so a half-written file is never
 * read), looked at no more than once per CHECK_EVERY_MS, at the moment peers are needed: no
 * watcher to lose events or leak.
 */
import * as fs from "node:fs";

export interface Peer {
  /** The base URL as written, normalized: `https://10.0.1.23` or `https://10.0.1.23:8443`. */
  url: string;
  /** Address (or name) to connect to; IPv6 without brackets. */
  host: string;
  port: number;
}

export interface ParsedPeers {
  peers: Peer[];
  /** Lines that were not a peer URL, with the reason (logged by the caller). */
  problems: Array<{ line: number; text: string; problem: string }>;
}

/** Pure: the peers a file's text lists, without duplicates, in file order. */
export function parsePeers(text: string): ParsedPeers {
  const peers: Peer[] = [];
  const problems: ParsedPeers["problems"] = [];
  const seen = new Set<string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*$/, "").trim();
    if (line === "") return;
    const p = parsePeerUrl(line);
    if (typeof p === "string") {
      problems.push({ line: i + 1, text: line.slice(0, 200), problem: p });
      return;
    }
    if (seen.has(p.url)) return;
    seen.add(p.url);
    peers.push(p);
  });
  return { peers, problems };
}

/** One peer base URL, or why it is not one. Pure. */
export function parsePeerUrl(text: string): Peer | string {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return "not a URL (expected https://ADDRESS[:PORT])";
  }
  if (u.protocol !== "https:") return "not https (peers talk over their nginx's TLS only)";
  if (u.username !== "" || u.password !== "") return "must not carry credentials (the farm token file holds them)";
  if ((u.pathname !== "/" && u.pathname !== "") || u.search !== "" || u.hash !== "") return "must be a base URL without a path, query or fragment";
  const port = u.port === "" ? 443 : Number(u.port);
  const host = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
  return { url: `https://${u.host}`, host, port };
}

export interface PeersFileOptions {
  /** Problems worth an operator's attention (unreadable file, bad lines); said once per content. */
  warn?(message: string, fields?: Record<string, unknown>): void;
  now?: () => number;
}

/** Re-check the file at most this often (a stat). */
export const CHECK_EVERY_MS = 1_000;

export class PeersFile {
  private peers: Peer[] = [];
  private signature = "";
  private checkedAt = -Infinity;
  private readonly now: () => number;
  /** Bumped whenever the list changes (callers re-learn per-peer facts). */
  generation = 0;

  constructor(
    readonly file: string,
    private readonly o: PeersFileOptions = {},
  ) {
    this.now = o.now ?? Date.now;
  }

  /** The peers listed now (this node's own entry included: the caller knows who it is). */
  list(): Peer[] {
    const t = this.now();
    if (t - this.checkedAt < CHECK_EVERY_MS) return this.peers;
    this.checkedAt = t;
    let sig: string;
    try {
      const st = fs.statSync(this.file);
      sig = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch (e) {
      sig = `missing:${(e as NodeJS.ErrnoException).code ?? "?"}`;
    }
    if (sig === this.signature) return this.peers;
    this.signature = sig;
    let text = "";
    if (!sig.startsWith("missing:")) {
      try {
        text = fs.readFileSync(this.file, "utf8");
      } catch (e) {
        this.o.warn?.("cannot read the farm's peers file; no peers until it is readable", { file: this.file, error: (e as Error).message });
      }
    } else this.o.warn?.("the farm's peers file does not exist; no peers until it does", { file: this.file });
    const parsed = parsePeers(text);
    for (const p of parsed.problems) this.o.warn?.("farm peers file: line skipped", { file: this.file, line: p.line, text: p.text, problem: p.problem });
    if (JSON.stringify(parsed.peers) !== JSON.stringify(this.peers)) {
      this.peers = parsed.peers;
      this.generation++;
    }
    return this.peers;
  }
}
