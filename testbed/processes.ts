/**
 * Finding and signalling processes from /proc: to prove that a client killed mid-clone leaves
 * no git process behind, to wait for nginx's workers, and for `npm start` to find what an
 * earlier run left (scripts/start/leftovers.ts).
 */
import { ChildProcess } from "node:child_process";
import * as fs from "node:fs";

export interface ProcInfo {
  pid: number;
  ppid: number;
  pgid: number;
  /** argv joined by spaces. */
  cmdline: string;
  cwd?: string;
}

/** Every live process (zombies left out), from /proc; one that exits while we look is left out too. */
export function listProcesses(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, "utf8");
      // "pid (comm) state ppid pgrp ...": comm may hold spaces and parens, so split after the last ')'.
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (rest[0] === "Z") continue;
      const cmdline = fs.readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0").join(" ").trim();
      let cwd: string | undefined;
      try {
        cwd = fs.readlinkSync(`/proc/${d}/cwd`);
      } catch {
        cwd = undefined;
      }
      out.push({ pid: Number(d), ppid: Number(rest[1]), pgid: Number(rest[2]), cmdline, cwd });
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

/** Pids whose parent is `ppid` (no dependence on CONFIG_PROC_CHILDREN). */
export function childPids(ppid: number): number[] {
  return listProcesses()
    .filter((p) => p.ppid === ppid)
    .map((p) => p.pid);
}

/** Processes whose command line names `dir`, or that run inside it; optionally matching `pattern`. */
export function processesOn(dir: string, pattern?: RegExp): string[] {
  return listProcesses()
    .filter((p) => (p.cmdline.includes(dir) || (p.cwd !== undefined && (p.cwd === dir || p.cwd.startsWith(`${dir}/`)))) && (!pattern || pattern.test(p.cmdline)))
    .map((p) => `${p.pid} (cwd ${p.cwd}): ${p.cmdline}`);
}

/** Signal a child's whole process group (it was spawned detached). */
export function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-(child.pid as number), signal);
  } catch {
    /* gone */
  }
}
