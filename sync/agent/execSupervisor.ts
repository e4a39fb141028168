/**
 * A service manager without systemd: runs each unit's ExecStart as a background process (own
 * session, so it outlives apply and an SSH session), as the unit's User=/Group= with its
 * supplementary groups (setpriv --init-groups, as systemd's initgroups), with the unit's
 * Environment= and UMask= on a clean environment. Tests and `npm start` use it where systemd is not PID 1.
 *
 * State under the apply root: run/smart-mirror-exec/UNIT.pid ({pid, startTime}: a recycled pid
 * is not mistaken for the service), logs in var/log/smart-mirror-exec/UNIT.log. Enabling makes
 * the same WantedBy symlink systemctl would. Stop follows KillMode: SIGTERM to the main process
 * (mixed, process) or the whole group (control-group), SIGKILL for what is left after
 * TimeoutStopSec. The sandboxing directives of the unit are systemd's job and are not emulated.
 */
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { lookupUser } from "./accountsIo";
import { hostPath } from "./fsOps";
import { mustRun } from "./runProcess";
import { UNIT_DIRS } from "./serviceActions";
import { ServiceManager } from "./serviceManager";
import { ExecSpec, execSpec, parseUnitFile } from "./unitFile";

/** What systemd puts in PATH for services. */
const SERVICE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

interface PidRecord {
  pid: number;
  /** /proc/PID/stat field 22 (start time in clock ticks since boot). */
  startTime: string;
}

/** State letter and start time from /proc/PID/stat; undefined when the process is gone. */
export function procStat(pid: number): { state: string; startTime: string } | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // comm (field 2) may contain spaces and parentheses: fields 3.. follow the last ")".
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { state: rest[0], startTime: rest[19] };
}

function isRunning(rec: PidRecord | undefined): rec is PidRecord {
  if (!rec) return false;
  const st = procStat(rec.pid);
  return st !== undefined && st.state !== "Z" && st.startTime === rec.startTime;
}

/** The longest a stop waits for SIGTERM to work before SIGKILL (TimeoutStopSec=infinity). */
export const MAX_STOP_WAIT_MS = 2 * 3_600_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

export interface ExecSupervisor extends ServiceManager {
  /** The main pid of a running unit (tests compare it across applies). */
  mainPid(unit: string): number | undefined;
  /** Stop a unit (tests' cleanup; `npm start` on Ctrl-C). */
  stop(unit: string): Promise<void>;
  logPath(unit: string): string;
}

export function execSupervisor(root: string): ExecSupervisor {
  const stateDir = hostPath(root, "/run/smart-mirror-exec");
  const logDir = hostPath(root, "/var/log/smart-mirror-exec");
  const pidFile = (unit: string) => path.join(stateDir, `${unit}.pid`);
  const logPath = (unit: string) => path.join(logDir, `${unit}.log`);

  const readPid = (unit: string): PidRecord | undefined => {
    try {
      return JSON.parse(fs.readFileSync(pidFile(unit), "utf8")) as PidRecord;
    } catch {
      return undefined;
    }
  };

  const unitPath = (unit: string): string => {
    for (const dir of UNIT_DIRS) {
      const p = `${dir}/${unit}`;
      if (fs.existsSync(hostPath(root, p))) return p;
    }
    throw new Error(`${unit}: no unit file in ${UNIT_DIRS.map((d) => hostPath(root, d)).join(", ")}; the plan must lay it down`);
  };

  const spec = (unit: string): ExecSpec => {
    const text = fs.readFileSync(hostPath(root, unitPath(unit)), "utf8");
    try {
      return execSpec(parseUnitFile(text), unit);
    } catch (e) {
      throw new Error(`${unit}: ${(e as Error).message}`);
    }
  };

  /** setpriv prefix and environment for the unit's credentials. */
  const credentials = async (unit: string, s: ExecSpec): Promise<{ prefix: string[]; env: Record<string, string> }> => {
    if (!s.user && !s.group) return { prefix: [], env: {} };
    if (process.geteuid?.() !== 0) throw new Error(`${unit} runs as ${s.user ?? ""}:${s.group ?? ""}; the exec supervisor needs root to switch to it`);
    const prefix = ["setpriv"];
    let env: Record<string, string> = {};
    if (s.user) {
      const pw = await lookupUser(s.user);
      if (!pw) throw new Error(`${unit}: User=${s.user} does not exist`);
      prefix.push(`--reuid=${pw.uid}`, `--regid=${s.group ?? pw.gid}`, "--init-groups");
      // Like systemd: the account's home (under the apply root, where the plan put it).
      env = { HOME: hostPath(root, pw.home), USER: pw.name, LOGNAME: pw.name, SHELL: pw.shell };
    } else {
      prefix.push(`--regid=${s.group}`, "--clear-groups");
    }
    return { prefix: [...prefix, "--"], env };
  };

  const startUnit = async (unit: string): Promise<void> => {
    if (isRunning(readPid(unit))) return;
    const s = spec(unit);
    const cred = await credentials(unit, s);
    const argv = [...cred.prefix, ...s.start];
    fs.mkdirSync(stateDir, { recursive: true, mode: 0o755 });
    fs.mkdirSync(logDir, { recursive: true, mode: 0o755 });
    const log = fs.openSync(logPath(unit), "a", 0o640);
    try {
      // The child inherits the umask at fork: set the unit's for the spawn only.
      const previousUmask = process.umask(s.umask);
      let child: ChildProcess;
      try {
        child = spawn(argv[0], argv.slice(1), {
          detached: true,
          stdio: ["ignore", log, log],
          cwd: s.workingDirectory ?? "/",
          env: { PATH: SERVICE_PATH, ...cred.env, ...s.env },
        });
      } finally {
        process.umask(previousUmask);
      }
      await new Promise<void>((resolve, reject) => {
        child.once("spawn", resolve);
        child.once("error", (e) => reject(new Error(`${unit}: cannot start ${s.start[0]}: ${e.message}`)));
      });
      child.unref();
      const pid = child.pid as number;
      const st = procStat(pid);
      const rec: PidRecord = { pid, startTime: st?.startTime ?? "" };
      const tmp = `${pidFile(unit)}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify(rec) + "\n");
      fs.renameSync(tmp, pidFile(unit));
    } finally {
      fs.closeSync(log);
    }
  };

  const stopUnit = async (unit: string): Promise<void> => {
    const rec = readPid(unit);
    if (isRunning(rec)) {
      let s: ExecSpec | undefined;
      try {
        s = spec(unit);
      } catch {
        s = undefined; // the unit file is gone or broken: still stop what runs
      }
      const mode = s?.killMode ?? "control-group";
      signal(mode === "control-group" ? -rec.pid : rec.pid, "SIGTERM");
      // TimeoutStopSec as systemd honours it: the daemon's is its drain bound plus its stop
      // (components/render/systemd.ts; up to 1 h of mirror.drain.timeout), so a restart never
      // kills a drain. Only "infinity" is capped, at MAX_STOP_WAIT_MS.
      const timeout = Math.min(s?.stopTimeoutMs ?? 90_000, MAX_STOP_WAIT_MS);
      const deadline = Date.now() + timeout;
      while (isRunning(rec) && Date.now() < deadline) await sleep(25);
      // The group is the session the service was started in: whatever is left of it.
      signal(-rec.pid, "SIGKILL");
      while (isRunning(rec)) await sleep(25);
    }
    fs.rmSync(pidFile(unit), { force: true });
  };

  const wantsLinks = (unit: string): string[] => spec(unit).wantedBy.map((t) => hostPath(root, `/etc/systemd/system/${t}.wants/${unit}`));

  return {
    name: "exec",
    logPath,
    mainPid: (unit) => {
      const rec = readPid(unit);
      return isRunning(rec) ? rec.pid : undefined;
    },
    async state(unit) {
      const active = isRunning(readPid(unit));
      let enabled = false;
      try {
        // The link points at the unprefixed unit path, so under --root it dangles: lstat, not stat.
        enabled = wantsLinks(unit).every((l) => fs.lstatSync(l, { throwIfNoEntry: false }) !== undefined);
      } catch {
        enabled = false; // no unit file yet
      }
      return { active, enabled };
    },
    async daemonReload() {
      // Unit files are read at every start: nothing is cached.
    },
    async enable(unit) {
      const target = unitPath(unit);
      for (const link of wantsLinks(unit)) {
        fs.mkdirSync(path.dirname(link), { recursive: true, mode: 0o755 });
        if (!fs.lstatSync(link, { throwIfNoEntry: false })) fs.symlinkSync(target, link);
      }
    },
    start: startUnit,
    async restart(unit) {
      await stopUnit(unit);
      await startUnit(unit);
    },
    async reload(unit) {
      const rec = readPid(unit);
      if (!isRunning(rec)) return startUnit(unit);
      const s = spec(unit);
      if (!s.reload) throw new Error(`${unit} has no ExecReload=; set reload: false in the plan to restart it instead`);
      const cred = await credentials(unit, s);
      const argv = [...cred.prefix, ...s.reload.map((w) => w.replace(/\$\{MAINPID\}/g, String(rec.pid)))];
      await mustRun(argv, `${unit} did not reload (see ${logPath(unit)})`, { env: { PATH: SERVICE_PATH, ...cred.env, ...s.env, MAINPID: String(rec.pid) } });
    },
    stop: stopUnit,
  };
}
