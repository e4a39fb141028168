/**
 * Long-lived SSH connections to the primary (ssh2), used to read ref advertisements cheaply:
 * one `git-upload-pack` channel per repository over already-authenticated connections,
 * instead of one TCP + SSH handshake per repository. Host keys are pinned: a mismatch fails
 * the handshake, and nothing is sent.
 */
import { Client, ClientChannel, ConnectConfig } from "ssh2";
import { Advertisement, parseAdvertisement, PktLineReader } from "./advertisement";
import { V2Session } from "./protocolV2";
import { describeMismatch, matchesPinned, PinnedKey } from "./hostKeys";

export interface UpstreamTarget {
  host: string;
  port: number;
  user: string;
  privateKey: Buffer;
  pinned: readonly PinnedKey[];
}

export interface PoolOptions {
  /** Connections kept open. */
  connections: number;
  /** Channels per connection; OpenSSH's server allows 10 (MaxSessions) by default. */
  channelsPerConnection: number;
  /** Handshake timeout. */
  connectTimeoutMs: number;
  /** A ref scan taking longer than this fails (the channel is closed). */
  scanTimeoutMs: number;
}

export class HostKeyMismatchError extends Error {
  override name = "HostKeyMismatchError";
}

/** The connection could not open a channel: it is broken or at the server's session limit. */
export class ChannelOpenError extends Error {
  override name = "ChannelOpenError";
}

/** The path the primary serves a repository at: Bitbucket's `/<PROJECT>/<slug>.git`. */
export function upstreamPath(project: string, slug: string): string {
  return `/${project}/${slug}.git`;
}

/**
 * The command an SSH Git server expects; the path is single-quoted as git itself does. Like git
 * (connect.c), a path that starts with "/~" (a Bitbucket personal project, ssh://host/~jdoe/r.git)
 * goes without its leading slash, so the primary sees exactly what a git client would send.
 */
export function uploadPackCommand(path: string): string {
  const p = path.startsWith("/~") ? path.slice(1) : path;
  return `git-upload-pack '${p.replace(/'/g, "'\\''")}'`;
}

interface Conn {
  client: Client;
  ready: Promise<void>;
  busy: number;
  dead: boolean;
}

export class UpstreamPool {
  private conns: Conn[] = [];
  private waiters: Array<() => void> = [];
  private closed = false;

  constructor(private readonly target: UpstreamTarget, private readonly opts: PoolOptions) {}

  /** Read the advertisement of one repository; rejects on host key mismatch, missing repo, timeout. */
  async scan(path: string, signal?: AbortSignal): Promise<Advertisement> {
    // A pooled connection may have died without us noticing yet (the primary restarted):
    // then the channel cannot open, and one retry on a fresh connection tells the truth.
    for (let attempt = 0; ; attempt++) {
      const conn = await this.acquire();
      try {
        return await this.scanOn(conn, path, signal);
      } catch (e) {
        if (!(e instanceof ChannelOpenError) || attempt >= 1) throw e;
      } finally {
        conn.busy--;
        this.waiters.shift()?.();
      }
    }
  }

  /**
   * A protocol v2 upload-pack session on `path` (protocolV2.ts). It holds one channel of a
   * pooled connection until closed (by the caller, the primary, or the connection dying).
   */
  async openSession(path: string, signal?: AbortSignal): Promise<V2Session> {
    for (let attempt = 0; ; attempt++) {
      const conn = await this.acquire();
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        conn.busy--;
        this.waiters.shift()?.();
      };
      try {
        const ch = await new Promise<ClientChannel>((resolve, reject) => {
          conn.client.exec(uploadPackCommand(path), { env: { GIT_PROTOCOL: "version=2" } }, (err, c) => {
            if (!err) return resolve(c);
            conn.dead = true;
            conn.client.end();
            reject(new ChannelOpenError(`cannot open a channel to the primary: ${err.message}`));
          });
        });
        return await V2Session.start(ch, path, release, signal);
      } catch (e) {
        release();
        if (!(e instanceof ChannelOpenError) || attempt >= 1) throw e;
      }
    }
  }

  close(): void {
    this.closed = true;
    for (const c of this.conns) c.client.end();
    this.conns = [];
    for (const w of this.waiters.splice(0)) w();
  }

  /**
   * A connection with a free channel: an idle one first, then a new one while under the
   * connection limit (spreading load), then any with room; else wait for a release.
   */
  private async acquire(): Promise<Conn> {
    while (true) {
      if (this.closed) throw new Error("upstream pool closed");
      this.conns = this.conns.filter((c) => !c.dead);
      let conn = this.conns.find((c) => c.busy < this.opts.channelsPerConnection);
      if (conn && conn.busy > 0 && this.conns.length < this.opts.connections) conn = undefined;
      if (!conn && this.conns.length < this.opts.connections) {
        conn = this.connect();
        this.conns.push(conn);
      }
      if (!conn) {
        await new Promise<void>((resolve) => this.waiters.push(resolve));
        continue;
      }
      conn.busy++;
      try {
        await conn.ready;
      } catch (e) {
        conn.busy--;
        throw e;
      }
      return conn;
    }
  }

  private connect(): Conn {
    const client = new Client();
    const t = this.target;
    let mismatch: string | undefined;
    const conn: Conn = { client, busy: 0, dead: false, ready: Promise.resolve() };
    conn.ready = new Promise<void>((resolve, reject) => {
      const cfg: ConnectConfig = {
        host: t.host,
        port: t.port,
        username: t.user,
        privateKey: t.privateKey,
        readyTimeout: this.opts.connectTimeoutMs,
        keepaliveInterval: 15000,
        keepaliveCountMax: 4,
        // Only negotiate key types we have pinned, so the server shows us a key we can check.
        algorithms: { serverHostKey: [...new Set(t.pinned.map((k) => k.type))] as never },
        hostVerifier: (key: Buffer) => {
          if (matchesPinned(key, t.pinned)) return true;
          mismatch = describeMismatch(key, t.pinned, t.host, t.port);
          return false;
        },
      };
      client.once("ready", () => resolve());
      // Closed before the handshake finished (pool.close(), server gone): settle, never hang.
      client.once("close", () => reject(new Error(`connection to the primary ${t.user}@${t.host}:${t.port} closed before it was ready`)));
      client.once("error", (err: Error) => {
        conn.dead = true;
        reject(mismatch ? new HostKeyMismatchError(mismatch) : new Error(`cannot connect to the primary ${t.user}@${t.host}:${t.port}: ${err.message}`));
      });
      client.connect(cfg);
    });
    conn.ready.catch(() => undefined);
    client.on("close", () => {
      conn.dead = true;
      this.waiters.shift()?.();
    });
    client.on("error", () => {
      conn.dead = true;
    });
    return conn;
  }

  private scanOn(conn: Conn, path: string, signal?: AbortSignal): Promise<Advertisement> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(new Error(`ref scan of ${path} aborted`));
      let channel: ClientChannel | undefined;
      let settled = false;
      const finish = (err: Error | undefined, adv?: Advertisement) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        if (err) {
          channel?.close();
          reject(err);
        } else resolve(adv!);
      };
      const timer = setTimeout(() => finish(new Error(`ref scan of ${path} timed out after ${this.opts.scanTimeoutMs} ms`)), this.opts.scanTimeoutMs);
      const onAbort = () => finish(new Error(`ref scan of ${path} aborted`));
      signal?.addEventListener("abort", onAbort, { once: true });
      conn.client.exec(uploadPackCommand(path), (err, ch) => {
        if (err) {
          // The connection may be at its channel limit or broken: mark it so a fresh one is made.
          conn.dead = true;
          conn.client.end();
          return finish(new ChannelOpenError(`cannot open a channel to the primary: ${err.message}`));
        }
        channel = ch;
        const reader = new PktLineReader();
        const lines: Buffer[] = [];
        let stderr = "";
        let done = false;
        ch.stderr.on("data", (d: Buffer) => {
          stderr = (stderr + d.toString()).slice(-2000);
        });
        ch.on("data", (chunk: Buffer) => {
          if (done) return;
          try {
            for (const pkt of reader.push(chunk)) {
              if (pkt === null) {
                done = true;
                const adv = parseAdvertisement(lines);
                // Tell upload-pack we want nothing: it exits cleanly.
                ch.end("0000");
                finish(undefined, adv);
                return;
              }
              lines.push(pkt);
            }
          } catch (e) {
            finish(e as Error);
          }
        });
        ch.on("close", (code: number | null) => {
          if (!done) {
            const why = stderr.trim() || `exit code ${code}`;
            finish(new Error(`primary did not advertise refs for ${path}: ${why}`));
          }
        });
      });
    });
  }
}
