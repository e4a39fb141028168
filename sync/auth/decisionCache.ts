/**
 * Remembered access decisions ("may these credentials read this repository?"), so a clone does
 * not cost a REST call to the primary per HTTP request, and an outage of the primary does not
 * lock out users the mirror already knows.
 *
 * - Two bounded LRUs (Maps in recency order), one for allows and one for denials: memory stays
 *   flat whatever clients send, and a flood of denials (10k bogus credentials) only evicts
 *   other denials, never a known user's allow.
 * - Allows are fresh for `allowTtlMs`, denials for `denyTtlMs` (shorter: someone just granted
 *   access should not wait long).
 * - Coalescing: concurrent checks of one key share one call (32 parallel clones by one CI user
 *   cost one REST call, not 32).
 * - Grace: when the check says the primary is unavailable, a remembered allow is still honoured
 *   if its last *positive* check is at most `graceMs` old — what Bitbucket mirrors do for known
 *   users during an outage of the primary. A remembered denial is not extended: an unknown or
 *   denied user gets "unavailable" (503), never a guess.
 * Keys are opaque strings (credentials fingerprints); nothing secret is stored here.
 */

/** What a check of the primary concluded. */
export type Verdict = "allow" | "bad_credentials" | "forbidden" | "unavailable";

export interface Decision {
  verdict: Verdict;
  /** "check": a call was made for this request (or joined); "cache": fresh entry; "grace": stale allow during an outage. */
  source: "check" | "cache" | "grace";
}

export interface DecisionCacheOptions {
  /** LRU bound of remembered allows (default 10,000). */
  maxEntries?: number;
  /** LRU bound of remembered denials, kept apart from the allows (default 10,000). */
  maxDenials?: number;
  /** How long an allow is trusted without asking again (0: always ask). */
  allowTtlMs: number;
  /** How long a denial is trusted (default min(30 s, allowTtlMs)). */
  denyTtlMs?: number;
  /** How long after its last positive check an allow survives an outage (0: no grace). Default 24 h. */
  graceMs?: number;
  now?: () => number;
}

interface Entry {
  verdict: Exclude<Verdict, "unavailable">;
  /** When this verdict was last confirmed by the primary. */
  checkedAt: number;
  freshUntil: number;
}

export const DEFAULT_MAX_ENTRIES = 10_000;
export const DEFAULT_DENY_TTL_MS = 30_000;
export const DEFAULT_GRACE_MS = 24 * 3600_000;

export class DecisionCache {
  private readonly allows = new Map<string, Entry>();
  private readonly denials = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<Decision>>();
  private readonly max: number;
  private readonly maxDenials: number;
  private readonly allowTtl: number;
  private readonly denyTtl: number;
  private readonly grace: number;
  private readonly now: () => number;

  constructor(o: DecisionCacheOptions) {
    this.max = Math.max(1, o.maxEntries ?? DEFAULT_MAX_ENTRIES);
    this.maxDenials = Math.max(1, o.maxDenials ?? DEFAULT_MAX_ENTRIES);
    this.allowTtl = Math.max(0, o.allowTtlMs);
    this.denyTtl = Math.max(0, o.denyTtlMs ?? Math.min(DEFAULT_DENY_TTL_MS, this.allowTtl));
    this.grace = Math.max(0, o.graceMs ?? DEFAULT_GRACE_MS);
    this.now = o.now ?? Date.now;
  }

  /** Remembered decisions, allows and denials. */
  get size(): number {
    return this.allows.size + this.denials.size;
  }

  /** Remembered allows (what an outage's grace can use). */
  get allowCount(): number {
    return this.allows.size;
  }

  /** The remembered, still fresh decision for `key`, if any (no check is made). */
  peek(key: string): Exclude<Verdict, "unavailable"> | undefined {
    const e = this.allows.get(key) ?? this.denials.get(key);
    return e && this.now() < e.freshUntil ? e.verdict : undefined;
  }

  /** A fresh decision from the cache, else the (shared) result of `check`. `check` should not throw; if it does, that counts as "unavailable". */
  decide(key: string, check: () => Promise<Verdict>): Promise<Decision> {
    const e = this.allows.get(key) ?? this.denials.get(key);
    if (e && this.now() < e.freshUntil) {
      this.touch(key, e);
      return Promise.resolve({ verdict: e.verdict, source: "cache" });
    }
    const running = this.inflight.get(key);
    if (running) return running;
    const p = this.run(key, check).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  /** Remember a denial learnt elsewhere (e.g. credentials the primary called wrong, for every repository). */
  rememberDenial(key: string, verdict: Exclude<Verdict, "allow" | "unavailable">): void {
    const now = this.now();
    this.touch(key, { verdict, checkedAt: now, freshUntil: now + this.denyTtl });
  }

  /** Forget one key (e.g. after the primary said the credentials are wrong elsewhere). */
  forget(key: string): void {
    this.allows.delete(key);
    this.denials.delete(key);
  }

  private async run(key: string, check: () => Promise<Verdict>): Promise<Decision> {
    let verdict: Verdict;
    try {
      verdict = await check();
    } catch {
      verdict = "unavailable";
    }
    const now = this.now();
    if (verdict !== "unavailable") {
      const ttl = verdict === "allow" ? this.allowTtl : this.denyTtl;
      this.touch(key, { verdict, checkedAt: now, freshUntil: now + ttl });
      return { verdict, source: "check" };
    }
    const e = this.allows.get(key);
    if (e && now - e.checkedAt <= this.grace) {
      this.touch(key, e); // keep a known user from being evicted during the outage
      return { verdict: "allow", source: "grace" };
    }
    return { verdict: "unavailable", source: "check" };
  }

  /** Insert or refresh as most recent in its own map; evict that map's least recent beyond its bound. */
  private touch(key: string, e: Entry): void {
    const [map, other, max] = e.verdict === "allow" ? [this.allows, this.denials, this.max] : [this.denials, this.allows, this.maxDenials];
    other.delete(key);
    map.delete(key);
    map.set(key, e);
    while (map.size > max) {
      const oldest = map.keys().next().value as string;
      map.delete(oldest);
    }
  }
}
