/**
 * Per-client budget of access checks that ended in a denial: each client (address) may make the
 * mirror ask the primary about wrong credentials or unreadable repositories `burst` times, then
 * once per `refillMs`. Beyond that its unknown credentials are refused (429) without a REST call,
 * so a client spraying bogus credentials cannot make the mirror hammer the primary (nor lock out
 * the primary's users through it). Token buckets in a bounded LRU: memory stays flat.
 */
export interface FailureBudgetOptions {
  burst?: number;
  refillMs?: number;
  maxClients?: number;
  now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class FailureBudget {
  private readonly buckets = new Map<string, Bucket>();
  private readonly burst: number;
  private readonly refillMs: number;
  private readonly maxClients: number;
  private readonly now: () => number;

  constructor(o: FailureBudgetOptions = {}) {
    this.burst = Math.max(1, o.burst ?? 30);
    this.refillMs = Math.max(1, o.refillMs ?? 2000);
    this.maxClients = Math.max(1, o.maxClients ?? 10_000);
    this.now = o.now ?? Date.now;
  }

  /** May this client cause another check that could fail? */
  allows(client: string): boolean {
    return this.current(client).tokens >= 1;
  }

  /** A check for this client ended in a denial. */
  charge(client: string): void {
    const b = this.current(client);
    b.tokens = Math.max(0, b.tokens - 1);
    this.buckets.delete(client);
    this.buckets.set(client, b);
    while (this.buckets.size > this.maxClients) this.buckets.delete(this.buckets.keys().next().value as string);
  }

  /** Seconds until this client may try again (for Retry-After). */
  retryAfterSeconds(client: string): number {
    const b = this.current(client);
    return b.tokens >= 1 ? 0 : Math.ceil(((1 - b.tokens) * this.refillMs) / 1000);
  }

  private current(client: string): Bucket {
    const now = this.now();
    const b = this.buckets.get(client) ?? { tokens: this.burst, at: now };
    b.tokens = Math.min(this.burst, b.tokens + (now - b.at) / this.refillMs);
    b.at = now;
    return b;
  }
}
