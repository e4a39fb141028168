/**
 * Which of some object names a repository holds: one `git cat-file --batch-check` run for all
 * of them (a sync can wake many waiters of one repository at once). Thin I/O shell.
 */
import { spawn } from "node:child_process";

/** The names (full hex, lower case) `dir` holds; throws if git cannot run. */
export function objectsPresent(dir: string, names: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<Set<string>> {
  return new Promise((resolve, reject) => {
    const child = spawn("git", ["cat-file", "--batch-check=%(objectname)"], { cwd: dir, env, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err = (err + d).slice(-2048)));
    child.on("error", (e) => reject(new Error(`cannot run git cat-file: ${e.message}`)));
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`git cat-file failed in ${dir}: ${err.trim() || `exit ${code}`}`));
      // A held object prints its name; a missing one "<name> missing".
      resolve(new Set(out.split("\n").filter((l) => /^[0-9a-f]+$/.test(l))));
    });
    child.stdin.on("error", () => undefined); // git gone early: reported by "close"
    child.stdin.end(names.map((n) => `${n}\n`).join(""));
  });
}
