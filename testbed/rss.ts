/**
 * A process's resident memory, sampled from /proc/PID/status (VmRSS) at a fixed interval:
 * what a push or clone cost the daemon in memory, measured from outside the process.
 */
import * as fs from "node:fs";

/** VmRSS of a process in KiB, or undefined when it is gone. */
export function rssKb(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

export interface RssSample {
  baselineKb: number;
  maxKb: number;
  samples: number;
}

/** Start sampling now (the first sample is the baseline); stop() returns what was seen. */
export function rssSampler(pid: number, everyMs = 50): { stop(): RssSample; maxSoFarKb(): number } {
  const baselineKb = rssKb(pid) ?? 0;
  let maxKb = baselineKb;
  let samples = 1;
  const timer = setInterval(() => {
    const kb = rssKb(pid);
    if (kb === undefined) return;
    samples++;
    if (kb > maxKb) maxKb = kb;
  }, everyMs);
  return {
    maxSoFarKb: () => maxKb,
    stop() {
      clearInterval(timer);
      const kb = rssKb(pid);
      if (kb !== undefined && kb > maxKb) maxKb = kb;
      return { baselineKb, maxKb, samples };
    },
  };
}
