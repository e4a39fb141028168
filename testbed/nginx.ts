/**
 * Real nginx for the testbed: a foreground master (plus workers) per test, confined to a
 * temp prefix. Every path nginx would otherwise take from its compiled-in defaults (pid, logs,
 * the five temp dirs) is set inside the prefix, so a test never touches /var/lib/nginx,
 * /var/log/nginx or /run/nginx.pid, and two tests never share state.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { childPids } from "./processes";
import { acceptsTcp, spawnTracked, tempDir, TrackedProcess } from "./resources";

export const NGINX_BIN = "/usr/sbin/nginx";

export interface NginxContext {
  /** The nginx prefix (-p): every file of this instance lives under it. */
  prefix: string;
  logsDir: string;
  /** Parent of the client_body/proxy/fastcgi/uwsgi/scgi temp dirs. */
  tempDir: string;
  /** Main-context lines (daemon, pid, error_log, user, ...) for callers writing a full config. */
  mainDirectives: string;
  /** http-context lines (access_log, temp paths, mime types) for callers writing a full config. */
  httpDirectives: string;
}

export interface NginxOptions {
  /** confBody is the whole nginx.conf (embed ctx.mainDirectives/httpDirectives), not the inside of http {}. */
  fullConfig?: boolean;
  /**
   * Worker user when running as root. Default "root root": bench fixtures (unix sockets of the
   * sync daemon, fcgiwrap, repos, keys) are created by root with umask 022, and a worker
   * running as nobody could not connect() to a 0755 socket. Pass "nobody nogroup" to exercise
   * the production-like unprivileged worker. Ignored (omitted) when not root, as nginx would.
   */
  user?: string;
  workerProcesses?: number;
  /** Addresses to wait for; default: every TCP `listen` of the rendered config. */
  waitFor?: Array<{ host: string; port: number }>;
  timeoutMs?: number;
}

export interface NginxLogs {
  error: string;
  access: string;
}

export interface NginxHandle {
  prefix: string;
  confPath: string;
  /** The master's pid. */
  pid: number;
  process: TrackedProcess;
  stop(): Promise<void>;
  /** Optionally rewrite the config (validated with `nginx -t` first), SIGHUP, wait for new workers. */
  reload(confBody?: string | ((ctx: NginxContext) => string)): Promise<void>;
  logs(): NginxLogs;
}

export class NginxConfigError extends Error {
  constructor(
    readonly confPath: string,
    readonly output: string,
  ) {
    super(`nginx rejected ${confPath}:\n${output.trim()}`);
    this.name = "NginxConfigError";
  }
}

export function nginxContext(prefix: string, opts: Pick<NginxOptions, "user" | "workerProcesses"> = {}, isRoot = process.geteuid?.() === 0): NginxContext {
  const logsDir = path.join(prefix, "logs");
  const temp = path.join(prefix, "temp");
  const main = [
    "daemon off;",
    "master_process on;",
    `worker_processes ${opts.workerProcesses ?? 1};`,
    // Bounds reload() and stop() when a client keeps a connection open.
    "worker_shutdown_timeout 3s;",
    ...(isRoot ? [`user ${opts.user ?? "root root"};`] : []),
    `pid ${path.join(prefix, "nginx.pid")};`,
    `lock_file ${path.join(prefix, "nginx.lock")};`,
    `error_log ${path.join(logsDir, "error.log")} notice;`,
  ];
  const http = [
    `access_log ${path.join(logsDir, "access.log")};`,
    ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `${t}_temp_path ${path.join(temp, t)};`),
    "include /etc/nginx/mime.types;",
    "default_type application/octet-stream;",
    "types_hash_max_size 2048;",
  ];
  return { prefix, logsDir, tempDir: temp, mainDirectives: main.join("\n"), httpDirectives: http.join("\n") };
}

/** The complete nginx.conf; pure. */
export function renderNginxConf(ctx: NginxContext, body: string, fullConfig = false): string {
  if (fullConfig) return body;
  const indent = (s: string) =>
    s
      .split("\n")
      .map((l) => (l.trim() ? `  ${l}` : l))
      .join("\n");
  return `# Written by testbed/nginx.ts\n${ctx.mainDirectives}\n\nevents {\n  worker_connections 512;\n}\n\nhttp {\n${indent(ctx.httpDirectives)}\n\n${indent(body.trim())}\n}\n`;
}

export type ListenAddress = { host: string; port: number } | { unix: string };

/** TCP and unix addresses of the `listen` directives in a config (comments ignored); pure. */
export function listenAddresses(conf: string): ListenAddress[] {
  const out: ListenAddress[] = [];
  const text = conf.replace(/#[^\n]*/g, "");
  for (const m of text.matchAll(/(?:^|[\s;{}])listen\s+([^\s;]+)/g)) {
    const a = m[1];
    if (a.startsWith("unix:")) {
      out.push({ unix: a.slice(5) });
      continue;
    }
    const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(a);
    const hostPort = /^([^:]+):(\d+)$/.exec(a);
    if (v6) out.push({ host: v6[1], port: Number(v6[2] ?? 80) });
    else if (/^\d+$/.test(a)) out.push({ host: "127.0.0.1", port: Number(a) });
    else if (hostPort) out.push({ host: hostPort[1] === "*" ? "127.0.0.1" : hostPort[1], port: Number(hostPort[2]) });
    else out.push({ host: a, port: 80 });
  }
  return out;
}

export interface NginxTestResult {
  ok: boolean;
  output: string;
}

/**
 * `nginx -t` on a config file, for tests that validate rendered configs. The prefix defaults
 * to the file's directory; the pre-config error log is stderr so nothing lands in /var/log.
 * Note nginx -t opens what the config names (certs, log files), so those paths must exist.
 */
export function nginxTest(confPath: string, opts: { prefix?: string } = {}): Promise<NginxTestResult> {
  const prefix = opts.prefix ?? path.dirname(confPath);
  return new Promise((resolve) => {
    execFile(NGINX_BIN, ["-t", "-q", "-p", prefix, "-c", confPath, "-e", "stderr"], { encoding: "utf8" }, (err, stdout, stderr) => {
      resolve({ ok: !err, output: `${stdout}${stderr}`.trim() || (err ? String(err) : "") });
    });
  });
}

/** Throws NginxConfigError with nginx's own message when the config is rejected. */
export async function assertNginxConfig(confPath: string, opts: { prefix?: string } = {}): Promise<void> {
  const r = await nginxTest(confPath, opts);
  if (!r.ok) throw new NginxConfigError(confPath, r.output);
}

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ").trim();
  } catch {
    return "";
  }
}

const readOr = (p: string) => (fs.existsSync(p) ? fs.readFileSync(p, "utf8") : "");

export async function startNginx(confBody: string | ((ctx: NginxContext) => string), opts: NginxOptions = {}): Promise<NginxHandle> {
  const prefix = tempDir("nginx");
  const ctx = nginxContext(prefix, opts);
  fs.mkdirSync(ctx.logsDir, { recursive: true });
  // nginx creates only the last path component of a *_temp_path.
  fs.mkdirSync(ctx.tempDir, { recursive: true });
  const confPath = path.join(prefix, "nginx.conf");
  const errorLog = path.join(ctx.logsDir, "error.log");
  const timeoutMs = opts.timeoutMs ?? 15000;

  const write = async (body: string | ((c: NginxContext) => string)): Promise<string> => {
    const conf = renderNginxConf(ctx, typeof body === "function" ? body(ctx) : body, opts.fullConfig);
    // Test a candidate first so a rejected reload leaves the running config on disk intact.
    const candidate = `${confPath}.next`;
    fs.writeFileSync(candidate, conf);
    await assertNginxConfig(candidate, { prefix });
    fs.renameSync(candidate, confPath);
    return conf;
  };
  const conf = await write(confBody);

  const proc = spawnTracked(NGINX_BIN, ["-p", prefix, "-c", confPath, "-e", errorLog]);
  const logs = (): NginxLogs => ({ error: readOr(errorLog), access: readOr(path.join(ctx.logsDir, "access.log")) });
  const failure = (why: string) => new Error(`nginx ${why}\n--- error.log ---\n${logs().error.slice(-4000)}\n--- output ---\n${proc.output()}`);

  const targets = opts.waitFor ?? listenAddresses(conf).filter((a): a is { host: string; port: number } => "port" in a);
  // Our own poll loop rather than waitForPort: it must stop at once if nginx exits (e.g. a
  // port already in use, which `nginx -t` cannot see).
  const deadline = Date.now() + timeoutMs;
  let pending = [...targets];
  let exited = false;
  void proc.exited.then(() => (exited = true));
  while (true) {
    if (exited) {
      const err = failure(`exited during startup (code ${String(await proc.exited)})`);
      await proc.stop();
      throw err;
    }
    const accepting = await Promise.all(pending.map((t) => acceptsTcp(t.host, t.port)));
    pending = pending.filter((_, i) => !accepting[i]);
    // Wait for a worker too: the master binds before forking them.
    if (pending.length === 0 && proc.child.pid !== undefined && childPids(proc.child.pid).length > 0) break;
    if (Date.now() > deadline) {
      const err = failure(`did not accept on ${pending.map((t) => `${t.host}:${t.port}`).join(", ") || "(workers)"} within ${timeoutMs} ms`);
      await proc.stop();
      throw err;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  const pid = proc.child.pid as number;

  async function reload(next?: string | ((c: NginxContext) => string)): Promise<void> {
    if (next !== undefined) await write(next);
    const before = new Set(childPids(pid));
    const logOffset = logs().error.length;
    process.kill(pid, "SIGHUP");
    const deadline = Date.now() + timeoutMs;
    while (true) {
      // The master logs [emerg] and keeps the old workers when the new config does not load.
      const fresh = logs().error.slice(logOffset);
      if (/\[emerg\]/.test(fresh)) throw failure(`reload failed: ${fresh.trim()}`);
      const now = childPids(pid);
      const newWorkers = now.filter((p) => !before.has(p) && cmdline(p).includes("worker process"));
      // Old workers stop accepting once told to quit; they may linger on open connections.
      const oldServing = now.filter((p) => before.has(p) && cmdline(p).includes("worker process") && !cmdline(p).includes("shutting down"));
      if (newWorkers.length > 0 && oldServing.length === 0) return;
      if (Date.now() > deadline) throw failure(`reload did not finish within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  return { prefix, confPath, pid, process: proc, stop: () => proc.stop(), reload, logs };
}
