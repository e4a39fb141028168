/**
 * git run to completion whatever its exit code, with both outputs: tests that look at what git
 * told the user (the "remote: ..." lines are on stderr, also when it succeeded).
 */
import { execFile } from "node:child_process";
import type { GitEnv } from "./repos";

export interface GitRun {
  /** Exit code (0: success). */
  code: number;
  stdout: string;
  stderr: string;
}

export function runGit(args: string[], env: GitEnv, cwd?: string): Promise<GitRun> {
  return new Promise((resolve) => {
    execFile("git", args, { env: env as NodeJS.ProcessEnv, cwd, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}
