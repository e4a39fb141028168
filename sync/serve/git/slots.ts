/**
 * A bound on concurrent git upload-pack processes (each may run pack-objects at full CPU): at most
 * `max` run; up to `maxQueue` more wait, each for at most `maxWaitMs`. Whoever does not get a
 * slot is told so (the handler answers 503 with Retry-After, which git reports as an error the
 * user can retry); waiting absorbs bursts such as a CI fleet starting at once.
 * A waiter whose client went away (abort signal) leaves the queue at once.
 *
 * Fair between clients (a client is its address, see clientAddress.ts): one client holds at
 * most `maxPerClient` slots (default: all but a quarter of them, at least one left for the
 * others), so slow or hostile readers from one address can never take every slot; and a freed
 * slot goes to the waiting client that runs the fewest upload-packs (first come first served
 * among equals), so a client with many requests queued does not starve one with a single clone.
 * `othersWaiting(client)` tells a running transfer that someone else waits for its slot (the
 * minimum transfer rate applies then, see transferGuard.ts).
 */

export type Release = () => void;

export interface SlotsOptions {
  max: number;
  /** Waiters beyond the running ones (default 4 × max). */
  maxQueue?: number;
  /** Longest wait for a slot (default 10 s). */
  maxWaitMs?: number;
  /** Slots one client may hold at once (default defaultPerClient(max)). */
  maxPerClient?: number;
}

/** All but a quarter of the slots (at least one left for the others, when there are two or more). */
export function defaultPerClient(max: number): number {
  return max <= 1 ? 1 : max - Math.max(1, Math.floor(max / 4));
}

interface Waiter {
  client: string;
  grant(release: Release): void;
}

export class Slots {
  readonly max: number;
  readonly maxPerClient: number;
  private readonly maxQueue: number;
  private readonly maxWaitMs: number;
  private active = 0;
  private readonly perClient = new Map<string, number>();
  private readonly queue: Waiter[] = [];

  constructor(o: SlotsOptions) {
    if (!Number.isInteger(o.max) || o.max < 1) throw new Error(`slots: max must be a positive integer, got ${o.max}`);
    this.max = o.max;
    this.maxPerClient = Math.min(o.max, Math.max(1, o.maxPerClient ?? defaultPerClient(o.max)));
    this.maxQueue = Math.max(0, o.maxQueue ?? 4 * o.max);
    this.maxWaitMs = Math.max(0, o.maxWaitMs ?? 10_000);
  }

  get running(): number {
    return this.active;
  }

  get waiting(): number {
    return this.queue.length;
  }

  /** Slots `client` holds. */
  runningFor(client: string): number {
    return this.perClient.get(client) ?? 0;
  }

  /** The share of `client`: "" (a caller that names no client) is not limited. */
  private shareOf(client: string): number {
    return client === "" ? this.max : this.maxPerClient;
  }

  /** Does a client other than `client`, under its own share, wait for a slot? */
  othersWaiting(client: string): boolean {
    return this.queue.some((w) => w.client !== client && this.runningFor(w.client) < this.shareOf(w.client));
  }

  /** A release function, or undefined when no slot came in time (or the signal aborted). Release is idempotent. */
  acquire(signal?: AbortSignal, client = ""): Promise<Release | undefined> {
    if (signal?.aborted) return Promise.resolve(undefined);
    if (this.active < this.max && this.runningFor(client) < this.shareOf(client)) return Promise.resolve(this.take(client));
    if (this.queue.length >= this.maxQueue || this.maxWaitMs === 0) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const leave = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        const i = this.queue.indexOf(w);
        if (i >= 0) this.queue.splice(i, 1);
      };
      const onAbort = () => {
        leave();
        resolve(undefined);
      };
      const w: Waiter = {
        client,
        grant: (release) => {
          leave();
          resolve(release);
        },
      };
      const timer = setTimeout(onAbort, this.maxWaitMs);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.queue.push(w);
    });
  }

  private take(client: string): Release {
    this.active++;
    this.perClient.set(client, this.runningFor(client) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.active--;
      const n = this.runningFor(client) - 1;
      if (n > 0) this.perClient.set(client, n);
      else this.perClient.delete(client);
      this.pump();
    };
  }

  /** Hand free slots to waiters: the client running the fewest first, then the longest waiting. */
  private pump(): void {
    while (this.active < this.max) {
      let best: Waiter | undefined;
      for (const w of this.queue) {
        const n = this.runningFor(w.client);
        if (n >= this.shareOf(w.client)) continue;
        if (!best || n < this.runningFor(best.client)) best = w;
      }
      if (!best) return;
      best.grant(this.take(best.client));
    }
  }
}
