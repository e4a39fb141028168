/**
 * Single flight per key, for checks whose answer must not predate the caller (freshness.ts:
 * "are the mirror's refs the primary's?"). Pure bookkeeping, no I/O.
 */

/**
 * Per-key single flight where a caller joins the flight that starts after it arrived: a
 * running one is never joined (it may have read the primary too early), the one queued behind
 * it is. At most one running and one waiting flight per key.
 */
export class NextFlight<T> {
  private readonly flights = new Map<string, { done: Promise<T>; next?: Promise<T> }>();

  run(key: string, fn: () => Promise<T>): Promise<T> {
    const f = this.flights.get(key);
    if (!f) return this.start(key, fn);
    f.next ??= f.done.then(
      () => this.start(key, fn),
      () => this.start(key, fn),
    );
    return f.next;
  }

  /** Keys with a flight going (tests). */
  get size(): number {
    return this.flights.size;
  }

  private start(key: string, fn: () => Promise<T>): Promise<T> {
    const flight: { done: Promise<T>; next?: Promise<T> } = { done: Promise.resolve().then(fn) };
    flight.done.then(
      () => this.end(key, flight),
      () => this.end(key, flight),
    );
    this.flights.set(key, flight);
    return flight.done;
  }

  private end(key: string, flight: { done: Promise<T> }): void {
    if (this.flights.get(key) === flight) this.flights.delete(key);
  }
}
