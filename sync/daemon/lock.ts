/**
 * One daemon per mirror home. The lock is a pid file created with O_EXCL; a file left by a
 * process that no longer exists (kill -9, power loss) is stale and taken over, which is what
 * makes the startup recovery (stale git locks, half-made clones) safe: nothing of ours runs.
 *
 * On a full disk the pid cannot be written (a data block is needed; a new empty file needs
 * none): the pid then goes into the name of an empty marker beside it, `daemon.pid.<pid>`, so
 * the daemon still starts and serves, and another start still sees who holds the lock.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { homePath } from "../homeLayout";

export class HomeLockedError extends Error {
  override name = "HomeLockedError";
}

/** Is a process with this pid running (EPERM: it exists, owned by someone else)? */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

const MARKER = `${path.basename(homePath("", "pidFile"))}.`;

/** The pid holding `file`: its content, else the pid in a marker's name (full disk); 0 if none. */
function holder(file: string): number {
  const text = fs.readFileSync(file, "utf8").trim();
  if (text !== "") return Number(text);
  const dir = path.dirname(file);
  const pids = fs.readdirSync(dir).filter((n) => n.startsWith(MARKER)).map((n) => Number(n.slice(MARKER.length)));
  return pids.find((p) => Number.isInteger(p) && p > 0 && p !== process.pid && isProcessAlive(p)) ?? 0;
}

function removeMarkers(dir: string, only?: number): void {
  for (const n of fs.readdirSync(dir)) if (n.startsWith(MARKER) && (only === undefined || n === `${MARKER}${only}`)) fs.rmSync(path.join(dir, n), { force: true });
}

/** The pid of the daemon holding the home's lock, if one is running (`verify` asks it to resync). */
export function runningDaemonPid(home: string): number | undefined {
  try {
    const pid = holder(homePath(home, "pidFile"));
    return Number.isInteger(pid) && pid > 0 && pid !== process.pid && isProcessAlive(pid) ? pid : undefined;
  } catch {
    return undefined; // no lock file: nothing runs
  }
}

export function acquireHomeLock(home: string): () => void {
  const file = homePath(home, "pidFile");
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true, mode: 0o750 });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = fs.openSync(file, "wx", 0o644);
      try {
        fs.writeSync(fd, `${process.pid}\n`);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== "ENOSPC" && code !== "EDQUOT") throw e;
        fs.closeSync(fd);
        // The file (empty) is the lock; the marker's name says whose it is.
        fs.closeSync(fs.openSync(path.join(dir, `${MARKER}${process.pid}`), "w", 0o644));
        return () => {
          removeMarkers(dir, process.pid);
          fs.rmSync(file, { force: true });
        };
      }
      fs.closeSync(fd);
      return () => {
        try {
          if (fs.readFileSync(file, "utf8").trim() === String(process.pid)) fs.rmSync(file);
        } catch {
          /* already gone */
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const pid = holder(file);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isProcessAlive(pid)) {
        throw new HomeLockedError(`another smart-mirror (pid ${pid}) is running on ${home}; stop it first (or remove ${file} if that pid is not smart-mirror)`);
      }
      fs.rmSync(file, { force: true });
      removeMarkers(dir);
    }
  }
  throw new HomeLockedError(`cannot take the lock ${file}`);
}
