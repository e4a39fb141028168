/**
 * Callers waiting for "the next sync of this repository that ends" (Daemon.resync). A caller
 * that asked while a run was already going waits for the end after that one (`skip` 1): the
 * running fetch may have started before whatever made it ask.
 */
import type { RepoKey } from "../types";

export class SyncWaiters<R> {
  private readonly waiting = new Map<RepoKey, Array<{ skip: number; done: (r: R) => void }>>();

  wait(key: RepoKey, skip: number): Promise<R> {
    return new Promise((done) => {
      const list = this.waiting.get(key) ?? [];
      list.push({ skip, done });
      this.waiting.set(key, list);
    });
  }

  /** A sync of `key` ended with `r`: resolve who waited for this one; the others wait on. */
  settle(key: RepoKey, r: R): void {
    const list = this.waiting.get(key);
    if (!list) return;
    const rest = list.filter((w) => {
      if (w.skip === 0) w.done(r);
      w.skip--;
      return w.skip >= 0;
    });
    if (rest.length > 0) this.waiting.set(key, rest);
    else this.waiting.delete(key);
  }

  get size(): number {
    return this.waiting.size;
  }
}
