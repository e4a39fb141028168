/**
 * A bound on concurrent git upload-pack processes (each may run pack-objects at full CPU): at most
 * `max` run; up to `maxQueue` more wait in FIFO order, each for at most `maxWaitMs`. Whoever does
 * not get a slot is told so (the handler answers 503 with Retry-After, which git reports as an
 * error the user can retry); waiting absorbs bursts such as a CI fleet starting at once.
 * A waiter whose client went away (abort signal) leaves the queue at once.
 */

export type Release = () => void;

export interface SlotsOptions {
  max: number;
  /** Waiters beyond the running ones (default 4 × max). */
  maxQueue?: number;
  /** Longest wait for a slot (default 10 s). */
  maxWaitMs?: number;
}

interface Waiter {
  grant(release: Release): void;
}

export class Slots {
  readonly max: number;
  private readonly maxQueue: number;
  private readonly maxWaitMs: number;
  private active = 0;
  private readonly queue: Waiter[] = [];

  constructor(o: SlotsOptions) {
    if (!Number.isInteger(o.max) || o.max < 1) throw new Error(`slots: max must be a positive integer, got ${o.max}`);
    this.max = o.max;
    this.maxQueue = Math.max(0, o.maxQueue ?? 4 * o.max);
    this.maxWaitMs = Math.max(0, o.maxWaitMs ?? 10_000);
  }

  get running(): number {
    return this.active;
  }

  get waiting(): number {
    return this.queue.length;
  }

  /** A release function, or undefined when no slot came in time (or the signal aborted). Release is idempotent. */
  acquire(signal?: AbortSignal): Promise<Release | undefined> {
    if (signal?.aborted) return Promise.resolve(undefined);
    if (this.active < this.max) {
      this.active++;
      return Promise.resolve(this.releaser());
    }
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

  private releaser(): Release {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.queue[0];
      // Hand the slot straight to the next waiter: `active` stays the same.
      if (next) next.grant(this.releaser());
      else this.active--;
    };
  }
}
