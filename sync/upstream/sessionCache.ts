/**
 * Warm protocol v2 sessions (protocolV2.ts), at most one per repository, kept after a fetch
 * so the next one for the same repository (a burst of pushes, CI pushing again) skips the
 * channel open and upload-pack's start: its `fetch` costs one round trip. Bounded in number
 * (each holds an upload-pack process on the primary and a channel of a pooled connection) and
 * in idle time.
 */
import { V2Session } from "./protocolV2";

export interface SessionCacheOptions {
  /** Sessions kept at most; the least recently used goes first. */
  max: number;
  /** A session unused this long is closed. */
  idleMs: number;
}

export class SessionCache {
  private readonly idle = new Map<string, V2Session>();
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly openSession: (path: string, signal?: AbortSignal) => Promise<V2Session>, private readonly opts: SessionCacheOptions) {
    this.timer = setInterval(() => this.expire(Date.now()), Math.max(1000, Math.floor(opts.idleMs / 2)));
    this.timer.unref();
  }

  /** The warm session for `path` (taken out: the caller has it alone), or a new one. */
  async take(path: string, signal?: AbortSignal): Promise<V2Session> {
    const warm = this.idle.get(path);
    if (warm) {
      this.idle.delete(path);
      if (warm.open) return warm;
    }
    return this.openSession(path, signal);
  }

  /** Give a session back after a successful command; it stays warm for its repository. */
  put(s: V2Session): void {
    const other = this.idle.get(s.path);
    this.idle.delete(s.path);
    if (other && other !== s) other.close();
    if (this.closed || !s.open || this.opts.max <= 0) {
      s.close();
      return;
    }
    this.idle.set(s.path, s);
    for (const [p, old] of this.idle) {
      if (this.idle.size <= this.opts.max) break;
      this.idle.delete(p);
      old.close();
    }
  }

  get size(): number {
    return this.idle.size;
  }

  /** Close sessions idle for longer than idleMs (called by the timer; exposed for tests). */
  expire(now: number): void {
    for (const [p, s] of this.idle) {
      if (s.open && now - s.lastUsed < this.opts.idleMs) continue;
      this.idle.delete(p);
      s.close();
    }
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    for (const s of this.idle.values()) s.close();
    this.idle.clear();
  }
}
