/**
 * "Sync this repository now and tell me when it is done", on top of the scheduler's events:
 * a waiter registered right after a trigger is settled by the end of the first run of that
 * repository that starts after it (the run the trigger queued, or the follow-up it asked for
 * while a run was going: a run already going may have read the primary too early). The
 * scheduler never starts a run inside trigger() (a microtask later), so registering right
 * after the trigger cannot miss the start.
 */
import type { SchedulerEvent } from "../scheduler/scheduler";
import type { RepoKey } from "../types";

export type SyncResult = { ok: true } | { ok: false; error: Error };

type Resolve = (r: SyncResult) => void;

export class SyncWaiters {
  /** Waiting for the next run of the repository to start. */
  private readonly beforeStart = new Map<RepoKey, Resolve[]>();
  /** Waiting for the repository's running run to end. */
  private readonly running = new Map<RepoKey, Resolve[]>();

  /** Settles when the next run of `key` to start has ended. */
  wait(key: RepoKey): Promise<SyncResult> {
    return new Promise((resolve) => {
      const list = this.beforeStart.get(key);
      if (list) list.push(resolve);
      else this.beforeStart.set(key, [resolve]);
    });
  }

  /** Waiters of a repository (pending ones included) right now; for tests and metrics. */
  count(key: RepoKey): number {
    return (this.beforeStart.get(key)?.length ?? 0) + (this.running.get(key)?.length ?? 0);
  }

  /** Feed every scheduler event here. */
  onEvent(e: SchedulerEvent<unknown>): void {
    switch (e.type) {
      case "started": {
        const list = this.beforeStart.get(e.key);
        if (!list) return;
        this.beforeStart.delete(e.key);
        this.running.set(e.key, [...(this.running.get(e.key) ?? []), ...list]);
        return;
      }
      case "succeeded":
        return this.settle(this.running, e.key, { ok: true });
      case "failed":
        return this.settle(this.running, e.key, { ok: false, error: e.error });
      case "cancelled": {
        const error = new Error(e.cause === "drain" ? "the mirror is stopping" : "the repository left the mirror's catalog");
        // Drain and forget drop follow-ups too: nobody will run them.
        this.settle(this.running, e.key, { ok: false, error });
        this.settle(this.beforeStart, e.key, { ok: false, error });
        return;
      }
      default:
        return;
    }
  }

  private settle(map: Map<RepoKey, Resolve[]>, key: RepoKey, r: SyncResult): void {
    const list = map.get(key);
    if (!list) return;
    map.delete(key);
    for (const resolve of list) resolve(r);
  }
}
