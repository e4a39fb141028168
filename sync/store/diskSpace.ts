/**
 * Free space on the mirror home's file system, and the rule that keeps a full disk from
 * stopping the mirror: below `minFreeBytes`, syncs that grow the disk (first clones, fetches)
 * pause with a clear reason while serving goes on; the space left stays for maintenance. The
 * decision is pure (diskState); DiskSpace is the statfs shell.
 */
import * as fs from "node:fs";

export type DiskState = "ok" | "low" | "full";

export interface DiskFacts {
  state: DiskState;
  freeBytes: number;
  totalBytes: number;
  minFreeBytes: number;
}

/** Below this the disk counts as full (a write of one block may fail), whatever the setting. */
export const FULL_BYTES = 1024 * 1024;

export function diskState(freeBytes: number, minFreeBytes: number): DiskState {
  if (freeBytes < FULL_BYTES) return "full";
  return minFreeBytes > 0 && freeBytes < minFreeBytes ? "low" : "ok";
}

const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

/** A sync refused for want of space; failureKind reads `kind`. */
export class DiskLowError extends Error {
  override name = "DiskLowError";
  readonly kind = "disk";
}

export class DiskSpace {
  private last?: DiskFacts;

  constructor(
    private readonly dir: string,
    private readonly minFreeBytes: number,
    private readonly statfs: (dir: string) => { bavail: number; blocks: number; bsize: number } = (d) => fs.statfsSync(d),
  ) {}

  /** Measure now (one statfs call: microseconds). */
  check(): DiskFacts {
    const st = this.statfs(this.dir);
    const freeBytes = st.bavail * st.bsize;
    this.last = { state: diskState(freeBytes, this.minFreeBytes), freeBytes, totalBytes: st.blocks * st.bsize, minFreeBytes: this.minFreeBytes };
    return this.last;
  }

  get facts(): DiskFacts | undefined {
    return this.last;
  }

  /** Throws DiskLowError when a sync that grows the disk must wait; `what` names it for the message. */
  assertCanGrow(what: string): void {
    const f = this.check();
    if (f.state === "ok") return;
    throw new DiskLowError(
      `disk ${f.state === "full" ? "full" : "nearly full"}: ${mib(f.freeBytes)} free on ${this.dir} (mirror.disk.minFreeMb=${Math.round(f.minFreeBytes / 2 ** 20)}): ${what} postponed, ` +
        `the copies on disk are still served; free space or grow the volume and syncing resumes by itself`,
    );
  }
}

/** ENOSPC (no space) or EDQUOT (quota): a write failed for want of space. */
export function isNoSpace(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOSPC" || code === "EDQUOT";
}
