/**
 * A thin shell around `git` for the operations that must stream, be killed as a group, or
 * report precisely: fetches and clones (which run ssh and index-pack children: an abort kills
 * the whole process group, which simple-git's abort, killing git alone, would leave running),
 * fsck, repack. The small local queries go through simple-git (localGit.ts).
 * Output is never held beyond a bounded tail: packs go from the network straight to disk.
 */
import { spawn } from "node:child_process";

export interface GitResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Last part of stderr (bounded), for error messages. */
  stderrTail: string;
}

export class GitError extends Error {
  override name = "GitError";
  constructor(message: string, readonly result: GitResult) {
    super(message);
  }
}

export interface RunGitOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

/** Runs git in its own process group; abort kills the group (git, ssh, index-pack) with SIGKILL. */
export function runGit(args: string[], o: RunGitOptions = {}): Promise<GitResult> {
  return runGitInput(args, undefined, o);
}

/** runGit with `input` on git's stdin (a small command list, e.g. update-ref --stdin). */
export function runGitInput(args: string[], input: string | undefined, o: RunGitOptions = {}): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    if (o.signal?.aborted) return reject(new Error(`git ${args[0]} aborted before start`));
    const child = spawn("git", args, {
      cwd: o.cwd,
      env: o.env ?? process.env,
      stdio: [input === undefined ? "ignore" : "pipe", "ignore", "pipe"],
      detached: true,
    });
    if (input !== undefined) {
      child.stdin!.on("error", () => undefined);
      child.stdin!.end(input);
    }
    let stderrTail = "";
    child.stderr!.on("data", (d: Buffer) => {
      stderrTail = (stderrTail + d.toString("utf8")).slice(-4096);
    });
    const kill = () => {
      try {
        if (child.pid) process.kill(-child.pid, "SIGKILL");
      } catch {
        /* already gone */
      }
    };
    o.signal?.addEventListener("abort", kill, { once: true });
    child.on("error", (e) => {
      o.signal?.removeEventListener("abort", kill);
      reject(new Error(`cannot run git: ${e.message} (is the git package installed?)`));
    });
    child.on("close", (code, signal) => {
      o.signal?.removeEventListener("abort", kill);
      resolve({ code, signal, stderrTail: stderrTail.trim() });
    });
  });
}

/** The git subcommand, skipping `-c key=value` pairs, for messages. */
function subcommand(args: string[]): string {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "-c" || args[i] === "-C") i++;
    else return args[i];
  }
  return "";
}

export async function git(args: string[], o: RunGitOptions = {}): Promise<GitResult> {
  const r = await runGit(args, o);
  if (r.code !== 0) {
    const why = o.signal?.aborted ? `aborted (${String(o.signal.reason ?? "timeout")})` : r.stderrTail || `exit ${r.code ?? r.signal}`;
    throw new GitError(`git ${subcommand(args)} failed: ${why}`, r);
  }
  return r;
}
