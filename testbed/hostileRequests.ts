/**
 * Hostile and malformed Git smart-HTTP requests, one place for the tests and the reliability
 * benchmark (`reliability.hostile_requests`, `reliability.hostile_5xx`): every one of them is
 * the client's fault, so the mirror must answer it with a 4xx, or with a 200 carrying git's
 * own error inside the protocol, and never with a 5xx (nor a reset connection).
 *
 *     for (const h of HOSTILE_REQUESTS) {
 *       const r = await sendHostile(h, { repoPath: "/scm/PROJ/app.git", head }, (m, t, o) => front.request(m, t, o));
 *       expect(r.status).toBeLessThan(500);
 *     }
 *
 * Bodies are built from a commit id the repository has (`head`), so requests that are well
 * framed but refused by git (deepen-not of a ref, want of an unknown object) reach git itself.
 */
import { gzipSync } from "node:zlib";

/** One pkt-line (payload as given; no newline added). */
export function pkt(payload: string | Buffer): Buffer {
  const body = typeof payload === "string" ? Buffer.from(payload, "utf8") : payload;
  return Buffer.concat([Buffer.from((body.length + 4).toString(16).padStart(4, "0"), "ascii"), body]);
}

const FLUSH = "0000";
const DELIM = "0001";

export interface HostileContext {
  /** e.g. "/scm/PROJ/app.git" */
  repoPath: string;
  /** A commit id of the repository's default branch. */
  head: string;
}

export interface HostileRequest {
  name: string;
  method: "GET" | "POST";
  /** After ctx.repoPath. */
  suffix: string;
  /** Git-Protocol: version=2 and the like. */
  headers?: Record<string, string>;
  body?(ctx: HostileContext): Buffer;
}

const UPLOAD_PACK = "/git-upload-pack";
const V2 = { "Git-Protocol": "version=2" };
const cat = (...parts: (string | Buffer)[]) => Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "latin1") : p)));
const post = (name: string, body: (ctx: HostileContext) => Buffer, headers?: Record<string, string>): HostileRequest => ({ name, method: "POST", suffix: UPLOAD_PACK, body, headers });

export const HOSTILE_REQUESTS: readonly HostileRequest[] = [
  // Not pkt-lines at all.
  post("zzzz", () => cat("zzzz")),
  post("70 KB of A", () => Buffer.alloc(70 * 1024, "A")),
  post("bad length digits", () => cat("00g1want")),
  post("length 3", () => cat("0003")),
  post("length above 65520", () => cat("fff5", "x".repeat(100))),
  post("truncated pkt-line", (c) => cat(pkt(`want ${c.head}\n`).subarray(0, 20))),
  post("truncated length", () => cat("00")),
  post("binary noise", () => Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 131 + 7) % 256))),
  // Framed, but refused by git upload-pack (protocol v0/v1).
  post("done without wants", () => cat("0009done\n")),
  post("only a flush", () => cat(FLUSH)),
  post("empty body", () => Buffer.alloc(0)),
  post("want of an unknown object", () => cat(pkt(`want ${"1".repeat(40)}\n`), FLUSH, pkt("done\n"))),
  post("want of a non-hex id", () => cat(pkt(`want ${"z".repeat(40)}\n`), FLUSH, pkt("done\n"))),
  post("deepen-not of a ref", (c) => cat(pkt(`want ${c.head} side-band-64k\n`), pkt("deepen-not refs/heads/main\n"), FLUSH, pkt("done\n"))),
  post("deepen-not ambiguous", (c) => cat(pkt(`want ${c.head}\n`), pkt("deepen-not refs/heads\n"), FLUSH, pkt("done\n"))),
  post("deepen of garbage", (c) => cat(pkt(`want ${c.head}\n`), pkt("deepen zz\n"), FLUSH, pkt("done\n"))),
  post("want, no done, body ends", (c) => cat(pkt(`want ${c.head}\n`))),
  post("have before want", (c) => cat(pkt(`have ${c.head}\n`), FLUSH, pkt("done\n"))),
  post("filter without capability", (c) => cat(pkt(`want ${c.head}\n`), pkt("filter bogus:spec\n"), FLUSH, pkt("done\n"))),
  // Protocol v2.
  post("v2 unknown command", () => cat(pkt("command=bogus\n"), FLUSH), V2),
  post("v2 fetch with an unknown argument", () => cat(pkt("command=fetch\n"), DELIM, pkt("bogus\n"), FLUSH), V2),
  post("v2 fetch want unknown object", () => cat(pkt("command=fetch\n"), DELIM, pkt(`want ${"2".repeat(40)}\n`), pkt("done\n"), FLUSH), V2),
  post("v2 fetch deepen-not of a ref", (c) => cat(pkt("command=fetch\n"), DELIM, pkt(`want ${c.head}\n`), pkt("deepen-not refs/heads/main\n"), pkt("done\n"), FLUSH), V2),
  post("v2 ls-refs unknown argument", () => cat(pkt("command=ls-refs\n"), DELIM, pkt("bogus-arg\n"), FLUSH), V2),
  post("v2 command without flush", () => cat(pkt("command=ls-refs\n")), V2),
  post("v2 bad object-format", () => cat(pkt("command=ls-refs\n"), pkt("object-format=md5\n"), FLUSH), V2),
  // Content coding.
  post("gzip garbage", () => cat("this is not gzip at all"), { "Content-Encoding": "gzip" }),
  post("truncated gzip", (c) => gzipSync(cat(pkt(`want ${c.head}\n`), FLUSH, pkt("done\n"))).subarray(0, 12), { "Content-Encoding": "gzip" }),
  post("gzip of zzzz", () => gzipSync(cat("zzzz")), { "Content-Encoding": "gzip" }),
  post("unknown content encoding", () => cat("0000"), { "Content-Encoding": "br" }),
  { name: "wrong content type", method: "POST", suffix: UPLOAD_PACK, headers: { "Content-Type": "text/plain" }, body: () => cat("0000") },
  // The advertisement.
  { name: "info/refs of an unknown service", method: "GET", suffix: "/info/refs?service=git-bogus" },
  { name: "info/refs with a hostile Git-Protocol", method: "GET", suffix: "/info/refs?service=git-upload-pack", headers: { "Git-Protocol": "version=2:" + "x".repeat(5000) } },
  { name: "GET of git-upload-pack", method: "GET", suffix: UPLOAD_PACK },
];

export interface HostileAnswer {
  name: string;
  status: number;
  /** The start of the body (a refusal's text, git's ERR pkt-line). */
  text: string;
}

export type Send = (method: string, target: string, opts: { headers: Record<string, string>; body?: Buffer }) => Promise<{ status: number; body: Buffer }>;

/** Send one request; a reset connection counts as status 0 (as bad as a 5xx). */
export async function sendHostile(h: HostileRequest, ctx: HostileContext, send: Send): Promise<HostileAnswer> {
  const body = h.body?.(ctx);
  const headers: Record<string, string> = { ...(h.method === "POST" ? { "Content-Type": "application/x-git-upload-pack-request" } : {}), ...h.headers };
  if (body) headers["Content-Length"] = String(body.length);
  try {
    const r = await send(h.method, `${ctx.repoPath}${h.suffix}`, { headers, body });
    return { name: h.name, status: r.status, text: r.body.subarray(0, 300).toString("latin1") };
  } catch (e) {
    return { name: h.name, status: 0, text: String(e) };
  }
}

/** A server failure as the benchmark counts it: a 5xx or no answer at all. */
export const isServerFailure = (status: number): boolean => status === 0 || status >= 500;
