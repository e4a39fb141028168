/**
 * Finding and signalling the processes a test started, from /proc: used to prove that a
 * client killed mid-clone leaves no git process behind.
 */
import { ChildProcess } from "node:child_process";
import * as fs from "node:fs";

/** Processes whose command line names `dir`, or that run inside it; optionally matching `pattern`. */
export function processesOn(dir: string, pattern?: RegExp): string[] {
  const found: string[] = [];
  for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
      const cwd = fs.readlinkSync(`/proc/${pid}/cwd`);
      const onDir = cmd.includes(dir) || cwd === dir || cwd.startsWith(`${dir}/`);
      if (onDir && (!pattern || pattern.test(cmd))) found.push(`${pid} (cwd ${cwd}): ${cmd}`);
    } catch {
      /* gone */
    }
  }
  return found;
}

/** Signal a child's whole process group (it was spawned detached). */
export function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-(child.pid as number), signal);
  } catch {
    /* gone */
  }
}
