/**
 * Run a command to completion (argv, never a shell line) and collect its output; never
 * rejects: the caller decides what a non-zero exit means and words the error.
 */
import { spawn } from "node:child_process";
import * as os from "node:os";

export interface ProcessResult {
  /** Exit code; 128 + signal number when killed by a signal; -1 when it could not start. */
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** SIGKILL after this long (default 120 s): apply must end even if a validator hangs. */
  timeoutMs?: number;
  /** Written to stdin, then stdin is closed (default: stdin closed at once). */
  input?: string;
  /** Keep the last this many characters of each output (default 64 Ki). */
  keepChars?: number;
}

export function runProcess(argv: string[], opts: RunOptions = {}): Promise<ProcessResult> {
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ["pipe", "pipe", "pipe"], env: opts.env ?? process.env, cwd: opts.cwd });
    let stdout = "";
    let stderr = "";
    // Bounded: a chatty validator must not grow the agent without limit.
    const keep = opts.keepChars ?? 65536;
    child.stdout.on("data", (b: Buffer) => (stdout = (stdout + b.toString()).slice(-keep)));
    child.stderr.on("data", (b: Buffer) => (stderr = (stderr + b.toString()).slice(-keep)));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 120_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      resolve({ code: -1, stdout, stderr: stderr + String(e.message) });
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? 128 + (signal ? os.constants.signals[signal] : 0), stdout, stderr });
    });
    child.stdin.on("error", () => undefined); // the command exited before reading its input
    child.stdin.end(opts.input ?? "");
  });
}

/** "cmd a b" for messages; arguments are not secrets by construction (secrets live in files). */
export function showArgv(argv: string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(" ");
}

/** Run; a non-zero exit throws with the command and its output. */
export async function mustRun(argv: string[], what: string, opts?: RunOptions): Promise<ProcessResult> {
  const r = await runProcess(argv, opts);
  if (r.code !== 0) throw new Error(`${what}: \`${showArgv(argv)}\` exited ${r.code}${r.stderr.trim() || r.stdout.trim() ? `:\n${(r.stderr.trim() || r.stdout.trim())}` : ""}`);
  return r;
}
