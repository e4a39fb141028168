/**
 * Finds what a bench run left behind: processes whose command line names the run's root,
 * network namespaces with the run's prefix, and leftover temp dirs. Scoped per run so that
 * concurrent runs on one machine never sweep each other.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { BENCH_MARKER, benchRoot, netnsPrefix } from "./resources";
import { isProcessAlive as alive } from "../sync/daemon/lock";

export interface LeakReport {
  processes: string[];
  namespaces: string[];
  dirs: string[];
}

export function findLeaks(runId: string): LeakReport {
  const root = benchRoot(runId);
  const prefix = netnsPrefix(runId);
  const processes: string[] = [];
  for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    if (Number(pid) === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
      if (cmd.includes(root + "/") || cmd.endsWith(root)) processes.push(`${pid}: ${cmd}`);
    } catch {
      /* exited while we looked */
    }
  }
  let namespaces: string[] = [];
  try {
    namespaces = execFileSync("ip", ["netns", "list"], { encoding: "utf8" })
      .split("\n")
      .map((l) => l.split(" ")[0])
      .filter((n) => n.startsWith(prefix));
  } catch {
    /* no iproute2: nothing could have been made */
  }
  const dirs = fs.readdirSync(root).map((d) => path.join(root, d));
  return { processes, namespaces, dirs };
}

export function isClean(r: LeakReport): boolean {
  return r.processes.length + r.namespaces.length + r.dirs.length === 0;
}

/** Kill and remove what was found, so one bad run does not poison the next. */
export function sweep(r: LeakReport): void {
  for (const p of r.processes) {
    try {
      process.kill(Number(p.split(":")[0]), "SIGKILL");
    } catch {
      /* gone */
    }
  }
  for (const n of r.namespaces) {
    try {
      execFileSync("ip", ["netns", "pids", n], { encoding: "utf8" })
        .split("\n")
        .filter(Boolean)
        .forEach((pid) => process.kill(Number(pid), "SIGKILL"));
      execFileSync("ip", ["netns", "del", n]);
    } catch {
      /* best effort */
    }
  }
  for (const d of r.dirs) fs.rmSync(d, { recursive: true, force: true });
}


/** Run ids of earlier runs whose jest parent is gone (crashed or killed). */
export function deadRuns(): string[] {
  const base = path.join(os.tmpdir(), BENCH_MARKER);
  if (!fs.existsSync(base)) return [];
  return fs
    .readdirSync(base)
    .filter((d) => /^run-\d+$/.test(d))
    .map((d) => d.slice(4))
    .filter((id) => !alive(Number(id)));
}
