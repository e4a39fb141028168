/**
 * CPU of process trees whose children are not reaped into the tree's accounting: fcgiwrap's
 * workers ignore SIGCHLD, so the kernel reaps the git-http-backend / upload-pack / pack-objects
 * they start and their CPU never reaches a parent's cutime (profile.ts treeCpuMs would see
 * nothing). Instead /proc is sampled every few milliseconds and each process's own CPU
 * (utime + stime, never cutime: no double counting) is taken at its last sighting.
 *
 * What a process spends after its last sample is missed (at most one interval each), and a
 * process living shorter than an interval may be missed entirely: fine for the upload-pack
 * and pack-objects of a clone, which run for hundreds of milliseconds. Sampling costs CPU
 * itself, so use it on dedicated profiling runs, not on timed ones.
 */
import * as fs from "node:fs";

/** Linux's USER_HZ: /proc times are in these ticks. */
const TICKS_PER_SEC = 100;

interface Proc {
  ppid: number;
  /** Own CPU ticks (utime + stime). */
  ticks: number;
  /** Start time (ticks since boot): with the pid, names a process uniquely. */
  start: string;
}

function snapshot(): Map<number, Proc> {
  const out = new Map<number, Proc>();
  for (const name of fs.readdirSync("/proc")) {
    if (name.charCodeAt(0) > 57) continue; // not a digit: not a process
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, "utf8");
      // "pid (comm) state ppid ...": comm may hold spaces; fields restart after the last ")".
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(Number(name), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), start: f[19] });
    } catch {
      /* exited while we looked */
    }
  }
  return out;
}

/** Keys (pid:start) of `roots` and all their descendants in a snapshot. */
function treeKeys(procs: Map<number, Proc>, roots: number[]): Map<string, number> {
  const kids = new Map<number, number[]>();
  for (const [pid, p] of procs) kids.set(p.ppid, [...(kids.get(p.ppid) ?? []), pid]);
  const out = new Map<string, number>();
  const stack = roots.filter((r) => procs.has(r));
  while (stack.length) {
    const pid = stack.pop() as number;
    const p = procs.get(pid) as Proc;
    out.set(`${pid}:${p.start}`, p.ticks);
    stack.push(...(kids.get(pid) ?? []));
  }
  return out;
}

export interface CpuSampler {
  /** Stop sampling; CPU ms each tree spent since start(), by the name it was given. */
  stop(): Record<string, number>;
}

/** Start sampling the trees under `roots` (name -> root pid) every `everyMs`. */
export function sampleTrees(roots: Record<string, number>, everyMs = 10): CpuSampler {
  const names = Object.keys(roots);
  const first = snapshot();
  const baseline = new Map(names.map((n) => [n, treeKeys(first, [roots[n]])]));
  const last = new Map(names.map((n) => [n, new Map(baseline.get(n))]));
  const sample = () => {
    const procs = snapshot();
    for (const n of names) {
      const seen = last.get(n) as Map<string, number>;
      for (const [key, ticks] of treeKeys(procs, [roots[n]])) seen.set(key, ticks);
    }
  };
  const timer = setInterval(sample, everyMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      const out: Record<string, number> = {};
      for (const n of names) {
        const base = baseline.get(n) as Map<string, number>;
        let ticks = 0;
        for (const [key, t] of last.get(n) as Map<string, number>) ticks += t - (base.get(key) ?? 0);
        out[n] = (ticks * 1000) / TICKS_PER_SEC;
      }
      return out;
    },
  };
}
