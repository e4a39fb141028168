/**
 * The built daemon (dist/smart-mirror.js) as a real subprocess, as systemd would run it.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { spawnTracked, TrackedProcess, waitFor } from "./resources";

export const BUNDLE = path.resolve(__dirname, "../dist/smart-mirror.js");

/** Newest modification time of the daemon's sources (.ts under sync/). */
function newestSource(dir: string): number {
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (e.name.endsWith(".ts")) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

let checked = false;

/**
 * dist/smart-mirror.js, built first when it is missing or older than the daemon's sources (a
 * test after a merge or an edit must not run yesterday's daemon), or with SMART_MIRROR_REBUILD=1.
 * Checked once per test process.
 */
export function ensureBundle(): string {
  if (checked) return BUNDLE;
  const built = fs.statSync(BUNDLE, { throwIfNoEntry: false });
  if (!built || built.mtimeMs < newestSource(path.resolve(__dirname, "../sync")) || process.env.SMART_MIRROR_REBUILD === "1") {
    execFileSync("node", ["scripts/build.mjs"], { cwd: path.resolve(__dirname, ".."), stdio: "inherit" });
  }
  checked = true;
  return BUNDLE;
}

/**
 * A private copy of the bundle, for deploys that ship it: other test files may rebuild dist/
 * meanwhile, and a copy taken while esbuild rewrites the file would be cut short, so it is
 * parsed, and copied again if it does not parse.
 */
export function privateBundleCopy(dir: string): string {
  const copy = path.join(dir, "smart-mirror.js");
  for (let attempt = 1; ; attempt++) {
    fs.copyFileSync(ensureBundle(), copy);
    try {
      execFileSync(process.execPath, ["--check", copy], { stdio: "pipe" });
      return copy;
    } catch (e) {
      if (attempt >= 5) throw e;
      execFileSync("sleep", ["1"]);
    }
  }
}

export function runDaemon(home: string, env: NodeJS.ProcessEnv = {}): TrackedProcess {
  // The home path is on the command line, so the bench leak check can see the process.
  return spawnTracked("node", [ensureBundle(), "run", "--home", home], { env: { ...process.env, ...env } });
}

export function getJson(port: number, urlPath: string, timeoutMs = 5000): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path: urlPath, timeout: timeoutMs }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) });
        } catch {
          resolve({ status: res.statusCode ?? 0, body: text });
        }
      });
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("timeout")));
  });
}

export interface StatusDoc {
  state: string;
  syncedRepos: number;
  totalRepos: number;
  [k: string]: unknown;
}

export async function waitForState(port: number, states: string[], timeoutMs = 60000): Promise<StatusDoc> {
  return waitFor(
    `mirror /status in ${states.join("|")}`,
    async () => {
      const r = await getJson(port, "/status");
      const doc = r.body as StatusDoc;
      return states.includes(doc?.state) ? doc : undefined;
    },
    timeoutMs,
    100,
  );
}

/** All descendants of pid (children, grandchildren, ...), from /proc. */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const p of fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid)!.push(Number(p));
    } catch {
      /* exited */
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

/** kill -9 a process and its whole tree at once, like systemd killing the unit's cgroup. */
export function killTree9(pid: number): number[] {
  const all = [pid, ...descendants(pid)];
  for (const p of all) {
    try {
      process.kill(p, "SIGKILL");
    } catch {
      /* gone */
    }
  }
  return all;
}
