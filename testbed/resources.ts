/**
 * The testbed's bookkeeping: every fixture makes its temp dirs, processes and namespaces
 * through here, so a test run can clean up after a failing test and the suite can prove it
 * left nothing behind (see leaks.ts and globalTeardown.ts).
 */
import { ChildProcess, spawn, SpawnOptions } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

/** Everything the bench creates lives under this root; its name is the leak-check marker. */
export const BENCH_MARKER = "smart-mirror-bench";

/** The id of this run: the jest parent's pid (set by globalSetup), else our own pid. */
export function benchRunId(): string {
  return process.env.SMART_MIRROR_BENCH_RUN ?? String(process.pid);
}

/** Root of the run's temp dirs; every bench process names a path under it on its command line. */
export function benchRoot(runId = benchRunId()): string {
  const root = path.join(os.tmpdir(), BENCH_MARKER, `run-${runId}`);
  fs.mkdirSync(root, { recursive: true });
  return root;
}

/** Network namespaces of a run all start with this prefix (names stay short: IFNAMSIZ). */
export function netnsPrefix(runId = benchRunId()): string {
  return `smb${runId}-`;
}

type Cleanup = () => Promise<void> | void;
const cleanups: Cleanup[] = [];

/** Register an undo action; run (last first) by cleanupAll(), which every test file calls after all. */
export function onCleanup(fn: Cleanup): () => Promise<void> {
  let done = false;
  const once = async () => {
    if (done) return;
    done = true;
    const i = cleanups.indexOf(once);
    if (i >= 0) cleanups.splice(i, 1);
    await fn();
  };
  cleanups.push(once);
  return once;
}

export async function cleanupAll(): Promise<void> {
  const errors: unknown[] = [];
  while (cleanups.length > 0) {
    const fn = cleanups[cleanups.length - 1];
    try {
      await fn();
    } catch (e) {
      errors.push(e);
    }
  }
  if (errors.length > 0) throw new AggregateError(errors, "testbed cleanup failed");
}

let tmpCounter = 0;
/** A fresh directory under the bench root, removed at cleanup. */
export function tempDir(label: string): string {
  const dir = path.join(benchRoot(), `${label}-${process.pid}-${++tmpCounter}-${Math.random().toString(36).slice(2, 8)}`);
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A free TCP port on loopback (bind to 0, read it, release it). */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

export interface TrackedProcess {
  child: ChildProcess;
  /** Collected stdout+stderr (bounded), for error messages. */
  output(): string;
  /** SIGTERM the process group, SIGKILL after graceMs; resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
  exited: Promise<number | null>;
}

/**
 * Spawn a child in its own process group, so stop() also reaps whatever it forked
 * (sshd's per-connection children, nginx workers, git subprocesses).
 */
export function spawnTracked(cmd: string, args: string[], opts: SpawnOptions = {}): TrackedProcess {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...opts, detached: true });
  let out = "";
  const keep = (b: Buffer) => {
    out = (out + b.toString()).slice(-16384);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<number | null>((resolve) => {
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 128 : null)));
    child.on("error", (e) => {
      keep(Buffer.from(String(e)));
      resolve(-1);
    });
  });
  const killGroup = (sig: NodeJS.Signals) => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, sig);
    } catch {
      /* already gone */
    }
  };
  const stop = onCleanup(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      killGroup("SIGTERM");
      const timer = setTimeout(() => killGroup("SIGKILL"), 3000);
      await exited;
      clearTimeout(timer);
    }
    // Children of a group leader may outlive it (e.g. sshd session processes).
    killGroup("SIGKILL");
  });
  return { child, output: () => out, stop: () => stop(), exited };
}

/** Poll until fn() resolves truthy or the deadline passes; throws with the last error. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}

/** Whether something accepts a TCP connection on host:port now. */
export function acceptsTcp(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/** Resolve when something accepts TCP connections on host:port. */
export function waitForPort(port: number, host = "127.0.0.1", timeoutMs = 10000): Promise<true> {
  return waitFor(`${host}:${port} to accept connections`, () => acceptsTcp(host, port), timeoutMs);
}
