/**
 * At most one run per interval, whatever the number of requests: the first request runs at once,
 * requests within `minIntervalMs` of the last run are coalesced into one trailing run at the end
 * of the interval (so the last request is never lost, only delayed). Used for catalog refreshes
 * that webhooks ask for: 100 webhooks for repositories outside the catalog cost one refresh now
 * and one at the end of the interval, not 100.
 */
export interface ThrottleOptions {
  minIntervalMs: number;
  now?: () => number;
}

export type ThrottleAnswer = "started" | "scheduled" | "coalesced";

export class Throttle {
  private lastRun: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  /** Runs started (for metrics and tests). */
  runs = 0;

  constructor(
    private readonly run: () => void,
    private readonly o: ThrottleOptions,
  ) {
    this.now = o.now ?? Date.now;
  }

  request(): ThrottleAnswer {
    if (this.timer) return "coalesced";
    const now = this.now();
    const wait = this.lastRun === undefined ? 0 : this.lastRun + this.o.minIntervalMs - now;
    if (wait <= 0) {
      this.fire();
      return "started";
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.fire();
    }, wait);
    this.timer.unref();
    return "scheduled";
  }

  /** Drop a pending trailing run (on stop). */
  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private fire(): void {
    this.lastRun = this.now();
    this.runs++;
    this.run();
  }
}
