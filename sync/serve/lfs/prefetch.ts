/**
 * mirror.lfs.prefetch: after a sync that changed refs, the LFS objects its new commits point
 * to are fetched into the store before anyone asks (pointers.ts finds them), so even the first
 * checkout after a push is served at the mirror's speed. One repository at a time, one object
 * at a time, with the mirror's own upstream credentials; objects already stored, or being
 * fetched for a client, are not fetched again. A bounded queue: beyond it, syncs are dropped
 * (counted), and their objects are fetched on first request as without prefetch.
 */
import type { RepoId } from "../../types";
import type { Log } from "../http";
import type { LfsMetrics } from "./lfsMetrics";
import type { ObjectFetches } from "./objects";
import { newPointers } from "./pointers";

const ZERO = /^0+$/;

export interface RefMove {
  fromHash: string;
  toHash: string;
}

export class LfsPrefetcher {
  private readonly queue: { repo: RepoId; dir: string; tips: string[]; exclude: string[] }[] = [];
  private draining: Promise<void> | undefined;

  constructor(
    private readonly fetches: ObjectFetches,
    private readonly metrics: LfsMetrics,
    private readonly log: Log,
    private readonly maxQueue = 1000,
  ) {}

  /** A sync of `repo` (bare repository `dir`) moved these refs. */
  enqueue(repo: RepoId, dir: string, moves: RefMove[]): void {
    const tips = moves.filter((m) => !ZERO.test(m.toHash)).map((m) => m.toHash);
    if (tips.length === 0) return;
    if (this.queue.length >= this.maxQueue) return this.metrics.prefetched("dropped");
    this.queue.push({ repo, dir, tips, exclude: moves.filter((m) => !ZERO.test(m.fromHash)).map((m) => m.fromHash) });
    this.draining ??= this.drain().finally(() => (this.draining = undefined));
  }

  /** Resolves when the queue is empty (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  private async drain(): Promise<void> {
    for (let job = this.queue.shift(); job; job = this.queue.shift()) {
      const name = `${job.repo.project}/${job.repo.slug}`;
      try {
        const pointers = await newPointers(job.dir, job.tips, job.exclude);
        let stored = 0;
        for (const p of pointers) {
          const r = await this.fetches.prefetch(job.repo, p.oid);
          this.metrics.prefetched(r === "stored" || r === "had" ? r : "failed");
          if (r === "stored") stored++;
        }
        if (pointers.length > 0) this.log.info({ repo: name, pointers: pointers.length, stored }, "lfs prefetch done");
      } catch (e) {
        this.log.warn({ repo: name, error: (e as Error).message }, "lfs prefetch: cannot list the new pointers");
      }
    }
  }
}
