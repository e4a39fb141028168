/**
 * What an earlier `npm start` may have left running: the daemon, nginx (master and workers),
 * the demo primary's sshd and their git children, found by the run's directories (on the
 * command line or as the working directory) and stopped by process group. An earlier run that
 * was killed (kill -9, a closed terminal before the handlers were in place) leaves exactly these.
 */
import * as path from "node:path";
import { listProcesses, ProcInfo } from "../../testbed/processes";

function under(p: string, root: string): boolean {
  return p === root || p.startsWith(root.endsWith("/") ? root : `${root}/`);
}

/** Pure: the processes that belong to a run rooted at one of `roots` (never `exclude`). */
export function leftoverProcesses(procs: ProcInfo[], roots: string[], exclude: Set<number>): ProcInfo[] {
  const own = procs.filter((p) => !exclude.has(p.pid) && roots.some((r) => `${p.cmdline} `.includes(`${r}/`) || `${p.cmdline} `.includes(`${r} `) || (p.cwd !== undefined && under(p.cwd, r))));
  // Their process groups too (nginx workers and sshd children name no directory).
  const groups = new Set(own.map((p) => p.pgid));
  return procs.filter((p) => !exclude.has(p.pid) && (own.includes(p) || (groups.has(p.pgid) && !exclude.has(p.pgid))));
}

/** This process and its ancestors: never ours to kill. */
function selfAndAncestors(): Set<number> {
  const parent = new Map(listProcesses().map((p) => [p.pid, p.ppid]));
  const out = new Set<number>();
  for (let pid: number | undefined = process.pid; pid !== undefined && pid > 1 && !out.has(pid); pid = parent.get(pid)) out.add(pid);
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Stop whatever runs from `roots`: SIGTERM to each process group (then each process), SIGKILL
 * after `graceMs`, until nothing is left. Returns the pids that were running.
 */
export async function stopLeftovers(roots: string[], graceMs = 5000): Promise<number[]> {
  const exclude = selfAndAncestors();
  const found = leftoverProcesses(listProcesses(), roots.map((r) => path.resolve(r)), exclude);
  if (found.length === 0) return [];
  const send = (sig: NodeJS.Signals, procs: ProcInfo[]) => {
    for (const p of procs) {
      for (const target of exclude.has(p.pgid) ? [p.pid] : [-p.pgid, p.pid]) {
        try {
          process.kill(target, sig);
        } catch {
          /* gone */
        }
      }
    }
  };
  send("SIGTERM", found);
  const deadline = Date.now() + graceMs;
  let left = found;
  while (Date.now() < deadline) {
    const alive = new Set(listProcesses().map((p) => p.pid));
    left = found.filter((p) => alive.has(p.pid));
    if (left.length === 0) break;
    await sleep(50);
  }
  for (let i = 0; i < 3; i++) {
    const again = leftoverProcesses(listProcesses(), roots, exclude);
    if (again.length === 0) break;
    send("SIGKILL", again);
    await sleep(100);
  }
  return found.map((p) => p.pid);
}
