/**
 * HTTPS to a DNS name pinned to an address, like curl's `--resolve name:port:address` or git's
 * `http.curloptResolve`: the client connects to `address`, sends `name` as SNI and Host, and
 * verifies the certificate for `name` against the given CA only. How tests reach a deployed
 * mirror by its real server name on a bench network that has no DNS.
 */
import * as https from "node:https";
import { signBody } from "../sync/serve/webhookSignature";

export interface PinnedName {
  /** The server name (certificate SAN, SNI, Host header). */
  name: string;
  /** Where that name "resolves" to. */
  address: string;
  /** Default 443. */
  port?: number;
  /** PEM of the CA that must have signed the server's certificate. */
  caPem: string;
}

export interface PinnedResponse {
  status: number;
  body: string;
}

export interface PinnedRequest {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** Abort after this long without an answer; default 10 s. */
  timeoutMs?: number;
}

/** One request; rejects on network or TLS errors (an untrusted certificate included). */
export function pinnedRequest(t: PinnedName, r: PinnedRequest): Promise<PinnedResponse> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: t.address,
        port: t.port ?? 443,
        servername: t.name,
        ca: t.caPem,
        method: r.method ?? "GET",
        path: r.path,
        headers: { Host: t.port && t.port !== 443 ? `${t.name}:${t.port}` : t.name, ...(r.body !== undefined ? { "Content-Length": String(Buffer.byteLength(r.body)) } : {}), ...r.headers },
        // A fresh connection each time: no pooled socket outlives the test.
        agent: false,
        timeout: r.timeoutMs ?? 10_000,
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer from https://${t.name}${r.path} (${t.address}) within ${r.timeoutMs ?? 10_000} ms`)));
    req.on("error", reject);
    req.end(r.body);
  });
}

export interface MirrorStatus {
  state: string;
  syncedRepos: number;
  totalRepos: number;
}

/** GET /status; undefined while nothing (or not the daemon's JSON) answers. */
export async function pinnedStatus(t: PinnedName): Promise<MirrorStatus | undefined> {
  try {
    const r = await pinnedRequest(t, { path: "/status", timeoutMs: 5000 });
    const doc = JSON.parse(r.body) as Partial<MirrorStatus>;
    return typeof doc.state === "string" ? (doc as MirrorStatus) : undefined;
  } catch {
    return undefined;
  }
}

/** POST a repo:refs_changed body to /webhook, signed with `secret` as Bitbucket signs it. */
export async function pinnedWebhook(t: PinnedName, secret: string, body: string): Promise<number> {
  const r = await pinnedRequest(t, {
    method: "POST",
    path: "/webhook",
    headers: { "Content-Type": "application/json; charset=utf-8", "X-Event-Key": "repo:refs_changed", "X-Hub-Signature": signBody(secret, body) },
    body,
  });
  return r.status;
}
