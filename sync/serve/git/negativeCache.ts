/**
 * What the primary was found not to have, so that asking again for it does not reach the
 * primary again (freshness.ts). Pure bookkeeping, no I/O.
 */

/** A want the primary did not have either is answered without asking again for this long (unless the refs change). */
export const NEGATIVE_TTL_MS = 30_000;
/** Negative entries kept at most (oldest dropped first). */
export const NEGATIVE_MAX_ENTRIES = 10_000;

/**
 * Wants known to be on neither side, per repository state (refStateToken): an entry holds
 * while the repository's refs are those it was recorded at, and for at most ttlMs.
 */
export class NegativeCache {
  private readonly entries = new Map<string, { state: string; at: number }>();

  constructor(
    private readonly ttlMs = NEGATIVE_TTL_MS,
    private readonly maxEntries = NEGATIVE_MAX_ENTRIES,
  ) {}

  add(dir: string, state: string, name: string, now: number): void {
    const key = `${dir}\0${name}`;
    this.entries.delete(key);
    this.entries.set(key, { state, at: now });
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
  }

  has(dir: string, state: string | undefined, name: string, now: number): boolean {
    const key = `${dir}\0${name}`;
    const e = this.entries.get(key);
    if (!e) return false;
    if (e.state !== state || now - e.at > this.ttlMs) {
      this.entries.delete(key);
      return false;
    }
    return true;
  }

  get size(): number {
    return this.entries.size;
  }
}
