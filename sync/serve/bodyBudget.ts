/**
 * One budget for the request bodies the daemon holds in memory, across all requests (the
 * upload-pack bodies read whole before git starts, webhook bodies): without it, 300 requests
 * that stall 100 bytes short of their Content-Length pinned 300 MB. A request reserves what it
 * will hold before reading it (its declared length, up to what the handler reads whole) and
 * grows the reservation as bytes come; when the budget is spent it is answered 503 with
 * Retry-After at once, and its body is never read. Reservations are given back when the
 * response is done, whatever happened (finished, timed out, client gone).
 */
import { Counter, Gauge, Registry } from "prom-client";

export const BODY_METRIC_NAMES = {
  held: "smart_mirror_http_body_bytes_held",
  refused: "smart_mirror_http_body_refused_total",
} as const;

/** Default: 64 MiB, the bodies of 64 huge negotiations or thousands of clones at once. */
export const DEFAULT_BODY_BUDGET_BYTES = 64 * 1024 * 1024;
/** A body that sends nothing for this long is cut (408). */
export const DEFAULT_BODY_IDLE_MS = 30_000;

export class Reservation {
  private bytes = 0;
  private released = false;

  constructor(private readonly budget: BodyBudget) {}

  get held(): number {
    return this.bytes;
  }

  /** Hold at least `total` bytes; false (nothing changed) when the budget cannot give them. */
  ensure(total: number): boolean {
    if (this.released) return false;
    if (total <= this.bytes) return true;
    if (!this.budget.take(total - this.bytes)) return false;
    this.bytes = total;
    return true;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.budget.give(this.bytes);
    this.bytes = 0;
  }
}

export class BodyBudget {
  private heldBytes = 0;
  private peakBytes = 0;
  private readonly refusedCounter?: Counter;
  /** Requests refused because the budget was spent. */
  refusals = 0;

  constructor(
    readonly maxBytes: number = DEFAULT_BODY_BUDGET_BYTES,
    registry?: Registry,
  ) {
    if (registry && !registry.getSingleMetric(BODY_METRIC_NAMES.held)) {
      const held = () => this.heldBytes;
      new Gauge({ name: BODY_METRIC_NAMES.held, help: "Bytes of request bodies held in memory (bounded by mirror.serve.bodyBudgetMb).", registers: [registry], collect() { this.set(held()); } });
      this.refusedCounter = new Counter({ name: BODY_METRIC_NAMES.refused, help: "Requests answered 503 because the request-body budget was spent.", registers: [registry] });
    }
  }

  get held(): number {
    return this.heldBytes;
  }

  /** The most held at once since start (tests, benchmarks). */
  get peak(): number {
    return this.peakBytes;
  }

  reserve(): Reservation {
    return new Reservation(this);
  }

  /** Count a refusal (the caller answers 503). */
  refused(): void {
    this.refusals++;
    this.refusedCounter?.inc();
  }

  /** @internal (Reservation) */
  take(n: number): boolean {
    if (this.heldBytes + n > this.maxBytes) return false;
    this.heldBytes += n;
    this.peakBytes = Math.max(this.peakBytes, this.heldBytes);
    return true;
  }

  /** @internal (Reservation) */
  give(n: number): void {
    this.heldBytes = Math.max(0, this.heldBytes - n);
  }
}
