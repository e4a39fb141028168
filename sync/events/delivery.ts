/**
 * Delivery of signed events to the configured URLs, off the sync path: `enqueue` never waits.
 *
 * - One delivery per (event, URL); the body is serialized once per event and signed like
 *   Bitbucket's webhooks (`X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>`), with
 *   `X-Event-Key` and an `X-Request-Id` that stays the same across retries (receivers dedupe on it).
 * - A bounded queue of pending deliveries, those waiting for a retry included (so memory is
 *   bounded whatever the receivers do); when full, the oldest is dropped and counted.
 * - Bounded concurrency, a timeout per attempt, exponential backoff with jitter and a cap,
 *   at most `maxAttempts` attempts. 2xx delivers; 408, 429, 5xx, timeouts and network errors are
 *   retried (429/503 honour Retry-After up to the cap); other answers (4xx, redirects: never
 *   followed, the signed body stays with the configured URL) fail at once.
 * - Deliveries of one repository may arrive out of order (concurrency, retries): each event
 *   carries its date and every change's fromHash/toHash.
 * - Logs and metrics name a URL by its origin only: a path may itself be a credential
 *   (many receivers put a token there), and the secret is never logged.
 */
import { randomUUID } from "node:crypto";
import { Counter, Gauge, Registry } from "prom-client";
import type { Log } from "../serve/http";
import { silentLog } from "../serve/http";
import { signBody } from "../serve/webhookSignature";
import { SYNCED_EVENT_KEY } from "./payload";

export interface DeliveryOptions {
  urls: readonly string[];
  secret: string;
  /** Pending deliveries held at most (each event makes one per URL). */
  queueSize: number;
  /** Attempts per delivery, the first included. */
  maxAttempts: number;
  /** One attempt (connect, send, the answer's head) takes at most this long. */
  timeoutMs: number;
  /** Attempts in flight at once, over all URLs. Default 4. */
  concurrency?: number;
  /** First retry after baseMs, doubling, at most maxMs. Default 1 s .. 60 s. */
  backoff?: { baseMs: number; maxMs: number };
  registry?: Registry;
  log?: Log;
  /** Injectable for tests of the decisions; the tests with a real receiver use the real one. */
  fetch?: typeof fetch;
  random?: () => number;
  now?: () => number;
}

export const DEFAULT_DELIVERY = { concurrency: 4, backoff: { baseMs: 1000, maxMs: 60_000 } } as const;

interface Delivery {
  seq: number;
  url: string;
  target: string;
  body: string;
  signature: string;
  requestId: string;
  repo: string;
  attempts: number;
  notBefore: number;
}

/** What one attempt's answer means. */
export type AttemptVerdict = { kind: "delivered" } | { kind: "retry"; why: string; retryAfterMs?: number } | { kind: "fail"; why: string };

/** The decision on an HTTP status (pure). */
export function verdictOf(status: number, retryAfter: string | null): AttemptVerdict {
  if (status >= 200 && status < 300) return { kind: "delivered" };
  if (status === 408 || status === 429 || status >= 500) {
    const secs = retryAfter !== null && /^\d{1,6}$/.test(retryAfter.trim()) ? Number(retryAfter.trim()) : undefined;
    return { kind: "retry", why: `HTTP ${status}`, retryAfterMs: secs === undefined ? undefined : secs * 1000 };
  }
  return { kind: "fail", why: `HTTP ${status}${status >= 300 && status < 400 ? " (redirects are not followed)" : ""}` };
}

/** Delay before attempt `attempt + 1` (attempt >= 1): full jitter over base * 2^(attempt-1), capped (pure). */
export function retryDelayMs(attempt: number, backoff: { baseMs: number; maxMs: number }, random: number, retryAfterMs?: number): number {
  const exp = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.min(30, attempt - 1));
  const jittered = exp / 2 + (random * exp) / 2;
  return Math.min(backoff.maxMs, Math.max(jittered, retryAfterMs ?? 0));
}

/** A URL as logs and metrics may show it: scheme, host and port. */
export function urlTarget(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return "invalid-url";
  }
}

export class EventDelivery {
  private readonly pending: Delivery[] = [];
  private inFlight = 0;
  private seq = 0;
  private timer?: NodeJS.Timeout;
  private closed = false;
  private readonly controllers = new Set<AbortController>();
  private readonly waiters: Array<() => void> = [];
  private lastDropLog = 0;
  private readonly m: { delivered: Counter; failed: Counter; dropped: Counter; retries: Counter };
  readonly counts = { delivered: 0, failed: 0, dropped: 0, retries: 0 };
  private readonly concurrency: number;
  private readonly backoff: { baseMs: number; maxMs: number };
  private readonly log: Log;
  private readonly fetchFn: typeof fetch;
  private readonly now: () => number;

  constructor(private readonly o: DeliveryOptions) {
    this.concurrency = o.concurrency ?? DEFAULT_DELIVERY.concurrency;
    this.backoff = o.backoff ?? DEFAULT_DELIVERY.backoff;
    this.log = o.log ?? silentLog;
    this.fetchFn = o.fetch ?? fetch;
    this.now = o.now ?? Date.now;
    const registers = o.registry ? [o.registry] : [];
    this.m = {
      delivered: new Counter({ name: "smart_mirror_events_delivered_total", help: "Synced events delivered (2xx from the receiver)", registers }),
      failed: new Counter({ name: "smart_mirror_events_failed_total", help: "Synced event deliveries given up (refused, or out of attempts)", registers }),
      dropped: new Counter({ name: "smart_mirror_events_dropped_total", help: "Synced event deliveries dropped unsent because the queue was full (oldest first)", registers }),
      retries: new Counter({ name: "smart_mirror_events_retries_total", help: "Synced event delivery attempts that will be retried", registers }),
    };
    const depth = () => this.pending.length;
    const inFlight = () => this.inFlight;
    new Gauge({ name: "smart_mirror_events_queue_depth", help: "Synced event deliveries waiting (to be sent, or for a retry)", registers, collect() { this.set(depth()); } });
    new Gauge({ name: "smart_mirror_events_in_flight", help: "Synced event delivery attempts running", registers, collect() { this.set(inFlight()); } });
  }

  get queueDepth(): number {
    return this.pending.length;
  }

  /** Queue `event` for every URL; never blocks, never throws. */
  enqueue(event: { repository: { id: string } }): void {
    if (this.closed) return;
    const body = JSON.stringify(event);
    const signature = signBody(this.o.secret, body);
    for (const url of this.o.urls) {
      if (this.pending.length >= this.o.queueSize) this.dropOldest();
      this.pending.push({ seq: this.seq++, url, target: urlTarget(url), body, signature, requestId: randomUUID(), repo: event.repository.id, attempts: 0, notBefore: 0 });
    }
    this.pump();
  }

  /** Resolves when nothing is pending or in flight (tests, shutdown). */
  idle(): Promise<void> {
    if (this.pending.length === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Stop: in-flight attempts get `graceMs`, then are aborted; pending deliveries are discarded (in memory only). */
  async close(graceMs = 2000): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    const lost = this.pending.length;
    this.pending.length = 0;
    if (lost > 0) this.log.warn({ deliveries: lost }, "stopping: undelivered synced events discarded");
    if (this.inFlight > 0) {
      const t = setTimeout(() => this.controllers.forEach((c) => c.abort(new Error("stopping"))), graceMs);
      await this.idle();
      clearTimeout(t);
    }
    this.settle();
  }

  private dropOldest(): void {
    // Pending is kept in enqueue order (retries are re-inserted by their seq), so index 0 is the oldest.
    const d = this.pending.shift();
    if (!d) return;
    this.counts.dropped++;
    this.m.dropped.inc();
    const now = this.now();
    if (now - this.lastDropLog >= 10_000) {
      this.lastDropLog = now;
      this.log.warn({ repo: d.repo, target: d.target, dropped: this.counts.dropped, queueSize: this.o.queueSize }, "synced event queue full: oldest delivery dropped (receivers slow or down?)");
    }
  }

  private pump(): void {
    if (this.closed) return;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const now = this.now();
    let nextAt = Infinity;
    for (let i = 0; i < this.pending.length && this.inFlight < this.concurrency; ) {
      const d = this.pending[i];
      if (d.notBefore <= now) {
        this.pending.splice(i, 1);
        this.start(d);
      } else {
        nextAt = Math.min(nextAt, d.notBefore);
        i++;
      }
    }
    if (this.inFlight < this.concurrency) for (const d of this.pending) nextAt = Math.min(nextAt, d.notBefore);
    if (nextAt !== Infinity && this.inFlight < this.concurrency) {
      this.timer = setTimeout(() => this.pump(), Math.max(0, nextAt - now));
      this.timer.unref();
    }
    this.settle();
  }

  private start(d: Delivery): void {
    this.inFlight++;
    d.attempts++;
    void this.attempt(d)
      .then((v) => this.after(d, v))
      .finally(() => {
        this.inFlight--;
        this.pump();
      });
  }

  private async attempt(d: Delivery): Promise<AttemptVerdict> {
    const ac = new AbortController();
    this.controllers.add(ac);
    const timeout = setTimeout(() => ac.abort(new Error(`no answer within ${this.o.timeoutMs} ms`)), this.o.timeoutMs);
    try {
      const res = await this.fetchFn(d.url, {
        method: "POST",
        redirect: "manual",
        signal: ac.signal,
        headers: {
          "Content-Type": "application/json; charset=utf-8",
          "User-Agent": "smart-mirror",
          "X-Event-Key": SYNCED_EVENT_KEY,
          "X-Request-Id": d.requestId,
          "X-Hub-Signature": d.signature,
        },
        body: d.body,
      });
      // The answer's body is not needed: cancel it so the connection is freed (or reused).
      await res.body?.cancel().catch(() => undefined);
      return verdictOf(res.status, res.headers.get("retry-after"));
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      const why = ac.signal.aborted ? String((ac.signal.reason as Error)?.message ?? "aborted") : (cause?.code ?? cause?.message ?? (e as Error).message);
      return { kind: "retry", why };
    } finally {
      clearTimeout(timeout);
      this.controllers.delete(ac);
    }
  }

  private after(d: Delivery, v: AttemptVerdict): void {
    const fields = { repo: d.repo, target: d.target, requestId: d.requestId, attempts: d.attempts };
    if (v.kind === "delivered") {
      this.counts.delivered++;
      this.m.delivered.inc();
      return;
    }
    if (v.kind === "retry" && d.attempts < this.o.maxAttempts && !this.closed) {
      this.counts.retries++;
      this.m.retries.inc();
      const delay = retryDelayMs(d.attempts, this.backoff, (this.o.random ?? Math.random)(), v.retryAfterMs);
      d.notBefore = this.now() + delay;
      if (d.attempts === 1) this.log.info({ ...fields, why: v.why, retryInMs: Math.round(delay) }, "synced event delivery failed; retrying");
      if (this.pending.length >= this.o.queueSize) this.dropOldest();
      // Back in enqueue order, so "drop the oldest" stays true.
      let i = this.pending.length;
      while (i > 0 && this.pending[i - 1].seq > d.seq) i--;
      this.pending.splice(i, 0, d);
      return;
    }
    this.counts.failed++;
    this.m.failed.inc();
    this.log.warn({ ...fields, why: v.why }, v.kind === "fail" ? "synced event refused by the receiver; not retried" : "synced event not delivered; giving up");
  }

  private settle(): void {
    if (this.pending.length === 0 && this.inFlight === 0) for (const w of this.waiters.splice(0)) w();
  }
}
