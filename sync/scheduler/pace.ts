/**
 * A token bucket: at most `perSecond` takes per second on average, with a burst of `burst`
 * (a small catalog's whole round passes at once; a large one is spread evenly over time,
 * so the primary sees a steady trickle of scans instead of a storm every round).
 *
 * `delayFor` is the pure decision; `take` is the thin waiting shell around it.
 */
export interface PaceClock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realPaceClock: PaceClock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise((resolve) => {
      const t = setTimeout(done, ms);
      t.unref?.();
      signal?.addEventListener("abort", done, { once: true });
      function done() {
        clearTimeout(t);
        signal?.removeEventListener("abort", done);
        resolve();
      }
    }),
};

export class Pace {
  private tokens: number;
  private at: number;

  constructor(
    private perSecond: number,
    private readonly burst: number,
    private readonly clock: PaceClock = realPaceClock,
  ) {
    if (!(perSecond > 0)) throw new Error(`pace: perSecond must be > 0 (got ${perSecond})`);
    if (!(burst >= 1)) throw new Error(`pace: burst must be >= 1 (got ${burst})`);
    this.tokens = burst;
    this.at = clock.now();
  }

  /** Change the rate (a round's targets may need more than the budget); keeps what was saved. */
  setRate(perSecond: number): void {
    if (!(perSecond > 0)) throw new Error(`pace: perSecond must be > 0 (got ${perSecond})`);
    this.refill();
    this.perSecond = perSecond;
  }

  /** How long until one token is there (0: now). Pure apart from the refill bookkeeping. */
  delayFor(): number {
    this.refill();
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) / this.perSecond) * 1000);
  }

  /** Wait for a token and spend it. Resolves early (without spending) when `signal` aborts. */
  async take(signal?: AbortSignal): Promise<void> {
    for (;;) {
      if (signal?.aborted) return;
      const wait = this.delayFor();
      if (wait === 0) {
        this.tokens -= 1;
        return;
      }
      await this.clock.sleep(wait, signal);
    }
  }

  private refill(): void {
    if (this.perSecond === Number.POSITIVE_INFINITY) {
      this.tokens = this.burst;
      return;
    }
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.perSecond);
    this.at = now;
  }
}
