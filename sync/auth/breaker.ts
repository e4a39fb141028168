/**
 * "The primary is not answering", remembered for a while (a circuit breaker), so that an outage
 * costs one check's timeout, not one per request: while open, checks fail at once as
 * "unavailable" and the decision cache applies its outage grace to known users straight away.
 * After `openMs` one check is let through as a probe; its answer closes the breaker, or opens
 * it again. Only "unavailable" opens it (timeouts, refused connections, 5xx): a denial is an
 * answer.
 */
import type { CheckResult } from "./primaryCheck";

export interface BreakerOptions {
  /** How long "unavailable" is remembered (default 30 s). */
  openMs?: number;
  now?: () => number;
}

export const DEFAULT_BREAKER_OPEN_MS = 30_000;

export class PrimaryBreaker {
  private openUntil = 0;
  private probing = false;
  private readonly openMs: number;
  private readonly now: () => number;
  /** Checks answered "unavailable" without asking the primary. */
  shortCircuited = 0;

  constructor(o: BreakerOptions = {}) {
    this.openMs = Math.max(0, o.openMs ?? DEFAULT_BREAKER_OPEN_MS);
    this.now = o.now ?? Date.now;
  }

  get open(): boolean {
    return this.now() < this.openUntil || this.probing;
  }

  /** Run `check` unless the breaker is open (then "unavailable" at once). */
  async run(check: () => Promise<CheckResult>): Promise<CheckResult> {
    if (this.open) {
      this.shortCircuited++;
      return { verdict: "unavailable", skipped: true, error: "the primary did not answer a recent check; not asking again yet" };
    }
    // After an outage, the first check is the probe: the others keep failing fast meanwhile.
    const probe = this.openUntil > 0;
    if (probe) this.probing = true;
    try {
      const r = await check();
      if (r.verdict === "unavailable") this.openUntil = this.now() + this.openMs;
      else this.openUntil = 0;
      return r;
    } finally {
      if (probe) this.probing = false;
    }
  }
}
