/**
 * One daemon per mirror home. The lock is a pid file created with O_EXCL; a file left by a
 * process that no longer exists (kill -9, power loss) is stale and taken over, which is what
 * makes the startup recovery (stale git locks, half-made clones) safe: nothing of ours runs.
 */
import * as fs from "node:fs";
import * as path from "node:path";

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

export function acquireHomeLock(home: string): () => void {
  const file = path.join(home, "run", "daemon.pid");
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o750 });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = fs.openSync(file, "wx", 0o644);
      fs.writeSync(fd, `${process.pid}\n`);
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
      const pid = Number(fs.readFileSync(file, "utf8").trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isProcessAlive(pid)) {
        throw new HomeLockedError(`another smart-mirror (pid ${pid}) is running on ${home}; stop it first (or remove ${file} if that pid is not smart-mirror)`);
      }
      fs.rmSync(file, { force: true });
    }
  }
  throw new HomeLockedError(`cannot take the lock ${file}`);
}
