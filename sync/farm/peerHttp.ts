/**
 * One small HTTPS request to a peer's nginx: connect to the address the peers file lists, but
 * send the farm's TLS name (SNI and Host) and verify the peer's certificate for that name and
 * against the farm's CA (or the system CAs): peers are listed by address, certificates name
 * the farm's domain. The farm token goes in the Authorization header; nothing of it is logged.
 * Answers are read up to MAX_ANSWER_BYTES (they are tiny JSON documents).
 */
import * as https from "node:https";
import { checkServerIdentity, PeerCertificate } from "node:tls";
import type { Peer } from "./peersFile";

export interface PeerTls {
  serverName: string;
  /** PEM bundle; undefined = the system CAs. */
  caPem?: string;
}

export interface PeerAnswer {
  status: number;
  body: string;
}

const MAX_ANSWER_BYTES = 64 * 1024;

export class PeerHttp {
  /** Kept connections: a farm announces on every push, a TLS handshake per announcement would double its cost. */
  private readonly agent: https.Agent;

  constructor(
    private readonly tls: PeerTls,
    private readonly token: string,
  ) {
    this.agent = new https.Agent({ keepAlive: true, maxSockets: 8, ca: tls.caPem, servername: tls.serverName });
  }

  /**
   * Settles with the answer, or rejects (network, TLS, timeout after `timeoutMs` in all). A kept
   * connection the peer's nginx closed as we reused it (ECONNRESET, EPIPE) is retried once on a
   * new one, within the same time.
   */
  async request(peer: Peer, method: "GET" | "POST", path: string, o: { timeoutMs: number; json?: unknown; auth?: boolean }): Promise<PeerAnswer> {
    const deadline = Date.now() + o.timeoutMs;
    try {
      return await this.once(peer, method, path, o);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const left = deadline - Date.now();
      if ((code !== "ECONNRESET" && code !== "EPIPE") || left <= 0) throw e;
      return this.once(peer, method, path, { ...o, timeoutMs: left });
    }
  }

  private once(peer: Peer, method: "GET" | "POST", path: string, o: { timeoutMs: number; json?: unknown; auth?: boolean }): Promise<PeerAnswer> {
    const body = o.json === undefined ? undefined : Buffer.from(JSON.stringify(o.json));
    const headers: Record<string, string> = { Host: this.tls.serverName, Accept: "application/json" };
    if (o.auth !== false) headers.Authorization = `Bearer ${this.token}`;
    if (body) {
      headers["Content-Type"] = "application/json";
      headers["Content-Length"] = String(body.length);
    }
    return new Promise<PeerAnswer>((resolve, reject) => {
      const req = https.request(
        {
          host: peer.host,
          port: peer.port,
          method,
          path,
          headers,
          agent: this.agent,
          servername: this.tls.serverName,
          ca: this.tls.caPem,
          // Checked against the farm's name, never the address we connected to.
          checkServerIdentity: (_host, cert) => tlsCheck(this.tls.serverName, cert),
          signal: AbortSignal.timeout(o.timeoutMs),
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on("data", (c: Buffer) => {
            size += c.length;
            if (size <= MAX_ANSWER_BYTES) chunks.push(c);
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
          res.on("error", reject);
        },
      );
      req.on("error", (e) => reject(e.name === "AbortError" || e.name === "TimeoutError" ? new Error(`no answer within ${o.timeoutMs} ms`) : e));
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

function tlsCheck(name: string, cert: PeerCertificate): Error | undefined {
  return checkServerIdentity(name, cert);
}
