/**
 * The primary's Git LFS endpoint, as the mirror talks to it: Batch API requests with the
 * client's own credentials (re-encoded from the parsed header, never the raw input), then the
 * action hrefs the primary hands back (download, upload, verify), and the locking API relayed.
 *
 * TLS is always verified (system roots plus mirror.upstream.caFile). The client's credentials
 * go to the primary's origin only: an action href elsewhere (object storage, a CDN) gets just
 * the `header` the primary put in the action, and a plain-http href is refused. Redirects are
 * not followed.
 */
import * as https from "node:https";
import * as tls from "node:tls";
import type { IncomingMessage, OutgoingHttpHeaders } from "node:http";
import type { Readable } from "node:stream";
import { authorizationHeader, Credentials } from "../../auth/credentials";
import type { RepoId } from "../../types";
import { LFS_MEDIA_TYPE } from "./lfsPath";

export interface LfsAction {
  href: string;
  header?: Record<string, string>;
  expires_in?: number;
  expires_at?: string;
}

export interface LfsObjectAnswer {
  oid: string;
  size: number;
  authenticated?: boolean;
  actions?: { download?: LfsAction; upload?: LfsAction; verify?: LfsAction };
  error?: { code: number; message: string };
}

export type BatchAnswer = { ok: true; objects: LfsObjectAnswer[] } | { ok: false; status: number; message: string };

export interface UpstreamLfsOptions {
  /** The primary's https base URL (plugin.mirroring.upstream.url). */
  baseUrl: string;
  caPem?: string;
  /** Connect and first-byte timeout per request (default 30 s); bodies may take longer. */
  timeoutMs?: number;
}

const MAX_JSON = 16 * 1024 * 1024;

export class UpstreamUnavailable extends Error {
  override name = "UpstreamUnavailable";
}

/** `{base}/scm/PROJECT/slug.git/info/lfs/<rest>` (pure). */
export function upstreamLfsUrl(baseUrl: string, repo: RepoId, rest: string): string {
  return `${baseUrl.replace(/\/+$/, "")}/scm/${encodeURIComponent(repo.project)}/${encodeURIComponent(repo.slug)}.git/info/lfs/${rest}`;
}

/** Read a whole (small) body; rejects past `max` bytes. */
export function readSmall(stream: Readable, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    stream.on("data", (c: Buffer) => {
      n += c.length;
      if (n > max) {
        stream.destroy();
        reject(new Error(`body larger than ${max} bytes`));
      } else chunks.push(c);
    });
    stream.on("end", () => resolve(Buffer.concat(chunks)));
    stream.on("error", reject);
  });
}

/** The `message` of an LFS error body, if it has one (bounded, for logs and relayed errors). */
function messageOf(body: Buffer): string {
  try {
    const m = (JSON.parse(body.toString("utf8")) as { message?: unknown }).message;
    return typeof m === "string" ? m.slice(0, 500) : "";
  } catch {
    return "";
  }
}

export class UpstreamLfs {
  private readonly agent: https.Agent;
  private readonly origin: string;
  private readonly timeoutMs: number;

  constructor(private readonly o: UpstreamLfsOptions) {
    const u = new URL(o.baseUrl);
    if (u.protocol !== "https:") throw new Error(`the primary's URL must be https:// to send credentials to its LFS endpoint, got ${o.baseUrl}`);
    this.origin = u.origin;
    this.timeoutMs = o.timeoutMs ?? 30_000;
    this.agent = new https.Agent({ keepAlive: true, maxSockets: 64, ca: o.caPem ? [...tls.rootCertificates, o.caPem] : undefined, rejectUnauthorized: true });
  }

  /** Headers for an action href: the action's own, plus the client's credentials on the primary's origin only. */
  actionHeaders(action: LfsAction, creds: Credentials | undefined): OutgoingHttpHeaders {
    const h: OutgoingHttpHeaders = { ...(action.header ?? {}) };
    const hasAuth = Object.keys(h).some((k) => k.toLowerCase() === "authorization");
    if (!hasAuth && creds && new URL(action.href).origin === this.origin) h.Authorization = authorizationHeader(creds);
    return h;
  }

  /** One request; resolves with the response (headers in), rejects UpstreamUnavailable on network errors. */
  request(method: string, url: string, headers: OutgoingHttpHeaders, body?: Buffer | Readable): Promise<IncomingMessage> {
    if (!url.startsWith("https://")) return Promise.reject(new UpstreamUnavailable(`the primary handed out a non-https LFS URL; refusing it`));
    return new Promise((resolve, reject) => {
      const req = https.request(url, { method, agent: this.agent, headers: { "User-Agent": "smart-mirror-lfs", ...headers } }, (res) => {
        req.setTimeout(0);
        resolve(res);
      });
      req.setTimeout(this.timeoutMs, () => req.destroy(new UpstreamUnavailable(`no answer from the primary's LFS endpoint within ${this.timeoutMs} ms`)));
      req.on("error", (e) => reject(e instanceof UpstreamUnavailable ? e : new UpstreamUnavailable(e.message)));
      if (body === undefined || Buffer.isBuffer(body)) req.end(body);
      else body.pipe(req);
    });
  }

  /** A Batch API request to the primary for `objects`, with the client's credentials. */
  async batch(repo: RepoId, operation: "download" | "upload", objects: { oid: string; size: number }[], creds: Credentials | undefined, ref?: { name: string }): Promise<BatchAnswer> {
    const body = Buffer.from(JSON.stringify({ operation, transfers: ["basic"], ...(ref ? { ref } : {}), objects, hash_algo: "sha256" }));
    const headers: OutgoingHttpHeaders = { Accept: LFS_MEDIA_TYPE, "Content-Type": LFS_MEDIA_TYPE, "Content-Length": body.length };
    if (creds) headers.Authorization = authorizationHeader(creds);
    const res = await this.request("POST", upstreamLfsUrl(this.o.baseUrl, repo, "objects/batch"), headers, body);
    const text = await readSmall(res, MAX_JSON);
    const status = res.statusCode ?? 0;
    if (status !== 200) return { ok: false, status, message: messageOf(text) || `the primary's LFS endpoint answered ${status}` };
    try {
      const parsed = JSON.parse(text.toString("utf8")) as { objects?: unknown };
      if (!Array.isArray(parsed.objects)) throw new Error("no objects");
      return { ok: true, objects: parsed.objects as LfsObjectAnswer[] };
    } catch {
      return { ok: false, status: 502, message: "the primary's LFS endpoint sent a batch answer that is not valid JSON" };
    }
  }

  close(): void {
    this.agent.destroy();
  }
}
