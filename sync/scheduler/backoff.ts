/**
 * How long to wait before retrying a failed sync. Pure: the caller owns the attempt count,
 * the previous delay and the random source, so every value is reproducible in a table test.
 *
 * Jitter matters here: when the primary goes down, every repository fails at once; without
 * jitter they would all retry in lock-step and hammer the primary the moment it comes back.
 * (AWS Architecture Blog, "Exponential Backoff And Jitter".)
 */

/** Node turns longer timeouts into 1 ms (TimeoutOverflowWarning), so no delay may exceed this. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export interface BackoffPolicy {
  /** Delay scale of the first retry, ms (> 0). */
  baseMs: number;
  /** No delay is ever longer than this, ms (>= baseMs, <= MAX_TIMER_MS). */
  maxMs: number;
  /**
   * "full" (default): uniform in [0, min(maxMs, baseMs * 2^(attempt-1))). Spreads retries best.
   * "decorrelated": uniform in [baseMs, min(maxMs, 3 * previousMs)]; never retries sooner than
   * baseMs, grows from the previous delay rather than the attempt count.
   */
  jitter?: "full" | "decorrelated";
}

/** A number in [0, 1), like Math.random. */
export type RandomSource = () => number;

/** Throws a RangeError that says which value to change; shared with the scheduler's options check. */
export function validateBackoffPolicy(policy: BackoffPolicy): void {
  const { baseMs, maxMs, jitter } = policy;
  if (!Number.isFinite(baseMs) || baseMs <= 0) {
    throw new RangeError(`backoff baseMs must be a positive number of ms, got ${baseMs}`);
  }
  if (!Number.isFinite(maxMs) || maxMs < baseMs || maxMs > MAX_TIMER_MS) {
    throw new RangeError(`backoff maxMs must be between baseMs (${baseMs}) and ${MAX_TIMER_MS} ms, got ${maxMs}`);
  }
  if (jitter !== undefined && jitter !== "full" && jitter !== "decorrelated") {
    throw new RangeError(`backoff jitter must be "full" or "decorrelated", got ${JSON.stringify(jitter)}`);
  }
}

/**
 * Delay before retry number `attempt` (1 = the first retry after the first failure), whole ms.
 * `previousMs` is the delay chosen for the previous attempt; only decorrelated jitter uses it,
 * and it is ignored on attempt 1 (so a success, which resets the attempt count, resets it too).
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: RandomSource, previousMs?: number): number {
  validateBackoffPolicy(policy);
  if (!Number.isInteger(attempt) || attempt < 1) {
    throw new RangeError(`backoff attempt must be an integer >= 1, got ${attempt}`);
  }
  const r = random();
  if (!(r >= 0 && r < 1)) throw new RangeError(`random source must return a number in [0, 1), got ${r}`);
  const { baseMs, maxMs } = policy;

  if (policy.jitter === "decorrelated") {
    const previous = attempt === 1 || previousMs === undefined ? baseMs : previousMs;
    const upper = Math.min(maxMs, Math.max(baseMs, previous * 3));
    return Math.floor(baseMs + r * (upper - baseMs));
  }
  // 2 ** large = Infinity, and min() caps it: no overflow handling needed for long outages.
  const ceiling = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
  return Math.floor(r * ceiling);
}
