/**
 * Where the time goes, measured from /proc rather than guessed:
 * - CPU of a process tree (the primary's sshd with every session it forked, reaped or not),
 * - CPU of this process (the in-process daemon),
 * - CPU the whole machine spent (to tell our load from other people's),
 * - per-exec costs of the layers a primary session runs (git upload-pack alone, behind the
 *   bench primary's /bin/sh dispatcher, behind git-shell), timed by bash's `times`.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Linux's USER_HZ: /proc times are in these ticks. */
const TICKS_PER_SEC = 100;

function statFields(pid: number): string[] | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // "pid (comm) state ppid ...": comm may hold spaces; fields restart after the last ")".
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

function childrenOf(): Map<number, number[]> {
  const map = new Map<number, number[]>();
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(Number(name));
    if (!f) continue;
    const ppid = Number(f[1]);
    const list = map.get(ppid) ?? [];
    list.push(Number(name));
    map.set(ppid, list);
  }
  return map;
}

/**
 * CPU ms used so far by `root` and all its descendants, including descendants that already
 * exited and were reaped inside the tree (their time is in their parent's cutime/cstime).
 * A difference of two readings is the CPU the tree spent in between.
 */
export function treeCpuMs(root: number): number {
  const kids = childrenOf();
  let ticks = 0;
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop() as number;
    const f = statFields(pid);
    if (f) ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]); // utime stime cutime cstime
    stack.push(...(kids.get(pid) ?? []));
  }
  return (ticks * 1000) / TICKS_PER_SEC;
}

/** CPU ms this process used so far (user + system). */
export function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** CPU ms of this process's children that exited and were reaped (git, ssh, and their children). */
export function reapedChildrenCpuMs(): number {
  const f = statFields(process.pid);
  return f ? ((Number(f[13]) + Number(f[14])) * 1000) / TICKS_PER_SEC : 0;
}

/** Busy CPU ms of the whole machine so far (all cores; /proc/stat minus idle and iowait). */
export function machineBusyMs(): number {
  const line = fs.readFileSync("/proc/stat", "utf8").split("\n")[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0); // user nice system idle iowait irq softirq steal
  return ((total - v[3] - v[4]) * 1000) / TICKS_PER_SEC;
}

/** The pid of the primary's sshd listener (from its PidFile, else its command line). */
export function sshdPid(primaryDir: string): number {
  try {
    const pid = Number(fs.readFileSync(`${primaryDir}/sshd.pid`, "utf8").trim());
    if (pid > 0 && statFields(pid)) return pid;
  } catch {
    /* fall through */
  }
  for (const name of fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = fs.readFileSync(`/proc/${name}/cmdline`, "utf8");
      if (cmd.includes("sshd") && cmd.includes(`${primaryDir}/sshd_config`)) return Number(name);
    } catch {
      /* exited */
    }
  }
  throw new Error(`no sshd found for the primary in ${primaryDir}`);
}

export interface CpuWindow {
  /** Wall ms. */
  wall: number;
  /** CPU ms of the watched tree (e.g. the primary's sshd and its sessions). */
  tree: number;
  /** CPU ms of this process. */
  self: number;
  /** CPU ms of this process's children (git, ssh) that finished meanwhile. */
  children: number;
  /** Busy CPU ms of the machine (all processes, all cores). */
  machine: number;
}

/** Run fn and report the CPU each party spent meanwhile. */
export async function measureCpu<T>(treeRoot: number, fn: () => Promise<T>): Promise<{ value: T; cpu: CpuWindow }> {
  const t0 = performance.now();
  const tree0 = treeCpuMs(treeRoot);
  const self0 = selfCpuMs();
  const c0 = reapedChildrenCpuMs();
  const m0 = machineBusyMs();
  const value = await fn();
  return {
    value,
    cpu: { wall: performance.now() - t0, tree: treeCpuMs(treeRoot) - tree0, self: selfCpuMs() - self0, children: reapedChildrenCpuMs() - c0, machine: machineBusyMs() - m0 },
  };
}

// Runs `body` n times under bash and prints `times`: the children's user and system time.
const LOOP_SCRIPT = `n=$1; shift
i=0
while [ "$i" -lt "$n" ]; do eval "$@"; i=$((i + 1)); done
times`;

/** bash `times` output: "0m0.010s 0m0.002s\\n0m1.230s 0m0.450s" (self, then children). */
export function parseBashTimes(out: string): { childrenCpuMs: number } {
  const lines = out.trim().split("\n");
  const last = lines[lines.length - 1];
  const secs = [...last.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  if (secs.length !== 2) throw new Error(`cannot parse bash times output: ${JSON.stringify(out)}`);
  return { childrenCpuMs: (secs[0] + secs[1]) * 1000 };
}

/** CPU ms and wall ms per execution of a shell command line (run n times in a row). */
export async function perExec(commandLine: string, n: number, env: NodeJS.ProcessEnv): Promise<{ cpuMs: number; wallMs: number }> {
  const t0 = performance.now();
  const { stdout } = await run("bash", ["-c", LOOP_SCRIPT, "per-exec", String(n), commandLine], { env, maxBuffer: 1 << 24 });
  const wall = performance.now() - t0;
  return { cpuMs: parseBashTimes(stdout).childrenCpuMs / n, wallMs: wall / n };
}
