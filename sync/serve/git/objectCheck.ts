/**
 * Which of the objects (or refs) a request wants the mirror's repository does not have: one
 * `git cat-file --batch-check` per request (a few ms), names on its stdin, one answer line per
 * name, in order ("<name> missing" for an absent one). A raw spawn like uploadPack.ts: the
 * names go through a pipe, never the command line.
 */
import { spawn } from "node:child_process";
import { uploadPackEnv } from "./uploadPack";

/** A check that takes longer than this has failed (a repository on a dying disk). */
const CHECK_TIMEOUT_MS = 30_000;

export interface CheckOptions {
  gitBinary: string;
  gitEnv: NodeJS.ProcessEnv;
}

/** The names among `names` that do not resolve to an object in `dir`. Rejects when git fails. */
export function missingObjects(dir: string, names: readonly string[], o: CheckOptions): Promise<string[]> {
  if (names.length === 0) return Promise.resolve([]);
  return new Promise((resolve, reject) => {
    const child = spawn(o.gitBinary, ["cat-file", "--batch-check"], { cwd: dir, env: { ...uploadPackEnv(o.gitEnv, undefined), GIT_DIR: dir }, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), CHECK_TIMEOUT_MS);
    child.stdout.setEncoding("utf8").on("data", (s: string) => (out += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (err = (err + s).slice(-2000)));
    child.stdin.on("error", () => undefined); // git gone: its exit tells
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const lines = out.split("\n").filter((l) => l !== "");
      if (code !== 0 || lines.length !== names.length) return reject(new Error(`git cat-file --batch-check in ${dir} failed (${signal ?? code}): ${err.trim().slice(0, 300)}`));
      resolve(names.filter((_, i) => / missing$| ambiguous$/.test(lines[i])));
    });
    child.stdin.end(names.join("\n") + "\n");
  });
}
