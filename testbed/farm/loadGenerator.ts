/**
 * The farm's client load: parallel workers that `git clone --mirror` and `git fetch` the
 * farm's repositories through the load balancer until told to stop, each request of a git
 * command on a new connection (the farm's gitArgs), recording every operation and, for a
 * failed one, git's stderr. A worker keeps one mirror clone per repository (its "client"),
 * which it re-clones now and then and fetches into otherwise; at the end each client does a
 * last fetch and its refs are compared with the primary's (see finalCheck).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { runCommand } from "../netnsHost";
import { GitEnv, listRefs } from "../repos";
import { tempDir } from "../resources";

export interface FarmClientTarget {
  url(repo: string): string;
  gitArgs(): string[];
  gitEnv(): GitEnv;
}

export type OpKind = "clone" | "fetch";

export interface OpRecord {
  kind: OpKind;
  repo: string;
  worker: number;
  ok: boolean;
  ms: number;
  /** When it started, ms since the load started. */
  at: number;
  /** git's exit code and stderr of a failed operation. */
  code?: number;
  stderr?: string;
}

export interface LoadOptions {
  target: FarmClientTarget;
  repos: readonly string[];
  workers: number;
  /** Every Nth operation of a worker on a repository is a fresh clone (default 3). */
  cloneEvery?: number;
  /** Bound on one git command; a hung one is killed and counted as failed. */
  opTimeoutMs?: number;
}

export interface Load {
  /** Operations so far (live). */
  ops: OpRecord[];
  /** Let the workers finish their current operation and stop. */
  stop(): Promise<OpRecord[]>;
  /** Each worker's clone directory per repository (after stop). */
  clients(): Array<{ worker: number; repo: string; dir: string }>;
}

/** Run one git command against the farm; never rejects. */
async function runGit(t: FarmClientTarget, args: string[], cwd: string | undefined, timeoutMs: number) {
  const argv = [...t.gitArgs(), ...(cwd ? ["-C", cwd] : []), ...args];
  return runCommand("git", argv, { env: t.gitEnv() as NodeJS.ProcessEnv, timeoutMs });
}

export function startLoad(o: LoadOptions): Load {
  const root = tempDir("farm-load");
  const ops: OpRecord[] = [];
  const t0 = Date.now();
  let stopped = false;
  const cloneEvery = o.cloneEvery ?? 3;
  const timeoutMs = o.opTimeoutMs ?? 120_000;
  const clientDirs = new Map<string, string>();
  let fresh = 0;

  const one = async (worker: number, repo: string, n: number): Promise<void> => {
    const key = `${worker} ${repo}`;
    const current = clientDirs.get(key);
    const kind: OpKind = current === undefined || n % cloneEvery === 0 ? "clone" : "fetch";
    const started = Date.now();
    let r;
    let dir = current;
    if (kind === "clone") {
      dir = path.join(root, `w${worker}-${repo.replace("/", "-")}-${++fresh}.git`);
      r = await runGit(o.target, ["clone", "--quiet", "--mirror", o.target.url(repo), dir], undefined, timeoutMs);
    } else {
      r = await runGit(o.target, ["fetch", "--quiet", "--prune", "origin"], dir, timeoutMs);
    }
    const rec: OpRecord = { kind, repo, worker, ok: r.code === 0, ms: Date.now() - started, at: started - t0 };
    if (!rec.ok) Object.assign(rec, { code: r.code, stderr: r.stderr.trim() });
    ops.push(rec);
    if (kind === "clone" && rec.ok && dir) {
      // The new clone becomes the worker's client; the one it replaces goes.
      if (current) fs.rmSync(current, { recursive: true, force: true });
      clientDirs.set(key, dir);
    } else if (kind === "clone" && dir) {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };

  const worker = async (w: number) => {
    for (let n = 0; !stopped; n++) await one(w, o.repos[(w + n) % o.repos.length], Math.floor(n / o.repos.length));
  };
  const running = Promise.all(Array.from({ length: o.workers }, (_, w) => worker(w)));

  return {
    ops,
    async stop() {
      stopped = true;
      await running;
      return ops;
    },
    clients: () =>
      [...clientDirs.entries()].map(([key, dir]) => {
        const [w, repo] = key.split(" ");
        return { worker: Number(w), repo, dir };
      }),
  };
}

export interface ClientMismatch {
  worker: number;
  repo: string;
  detail: string;
}

/**
 * Every client fetches once more (through the farm, as before) and must then hold exactly the
 * primary's refs. Returns the final fetches (counted like the load's) and the mismatches.
 */
export async function finalCheck(load: Load, target: FarmClientTarget, primaryRefs: (repo: string) => Promise<Map<string, string>>): Promise<{ ops: OpRecord[]; mismatches: ClientMismatch[] }> {
  const ops: OpRecord[] = [];
  const mismatches: ClientMismatch[] = [];
  await Promise.all(
    load.clients().map(async (c) => {
      const started = Date.now();
      const r = await runGit(target, ["fetch", "--quiet", "--prune", "origin"], c.dir, 120_000);
      ops.push({ kind: "fetch", repo: c.repo, worker: c.worker, ok: r.code === 0, ms: Date.now() - started, at: -1, ...(r.code === 0 ? {} : { code: r.code, stderr: r.stderr.trim() }) });
      const [mine, primary] = await Promise.all([listRefs(c.dir), primaryRefs(c.repo)]);
      const diff = [...new Set([...mine.keys(), ...primary.keys()])].filter((ref) => mine.get(ref) !== primary.get(ref));
      if (diff.length > 0) mismatches.push({ worker: c.worker, repo: c.repo, detail: diff.map((ref) => `${ref}: client ${mine.get(ref) ?? "-"} primary ${primary.get(ref) ?? "-"}`).join("; ") });
    }),
  );
  return { ops, mismatches };
}

/** Counts for the report. Pure. */
export function summarize(ops: readonly OpRecord[]): { clones: number; fetches: number; failedClones: number; failedFetches: number } {
  const count = (k: OpKind, ok?: boolean) => ops.filter((x) => x.kind === k && (ok === undefined || x.ok === ok)).length;
  return { clones: count("clone"), fetches: count("fetch"), failedClones: count("clone", false), failedFetches: count("fetch", false) };
}
