/**
 * First clones that survive kills, timeouts and lost connections without starting from zero.
 *
 * One `git fetch` is all or nothing: the pack streams into objects/pack/tmp_pack_* and becomes
 * part of the repository only when it is complete, so a kill at 90% keeps nothing. A large
 * first clone is therefore taken in steps, each one a complete fetch that stays in the
 * incoming copy (repos/.incoming/PROJECT.slug.git, kept across failures and restarts):
 *
 * 1. A plain full fetch, watched: most repositories finish it below `stepBytes` and cost
 *    nothing extra (no second round trip).
 * 2. Once the pack being received passes `stepBytes`, the repository is known to be large:
 *    that fetch is stopped (at most `stepBytes` is thrown away, once), a marker is written,
 *    and the copy is filled by `--depth=1` (the tips' snapshot), then `--deepen=N` steps sized
 *    from what the previous step transferred, until git drops the `shallow` file (the whole
 *    history is there). A kill loses at most the step in flight; the next attempt (after a
 *    restart, a timeout or a retry) continues from the shallow copy.
 *
 * Measured with git 2.39: depth/deepen steps transfer more in total than one full fetch
 * (thin-pack bases are repeated at each boundary; +50% on a 12 MB repository of binary
 * assets), which is why small repositories keep the single fetch.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { packBytes } from "./packFiles";
import { hasAnyRef } from "./localGit";
import { git } from "./runGit";
import { sweepTempFiles } from "./tempFiles";

/** Written in the incoming copy when it switched to steps; the next attempt skips step 1. */
export const STEPWISE_MARKER = "smart-mirror.stepwise";

/** Default step size; `mirror.sync.firstCloneStepMb` overrides it. */
export const DEFAULT_FIRST_CLONE_STEP_BYTES = 64 * 1024 * 1024;

/** How often the size of the pack being received is looked at. */
const WATCH_EVERY_MS = 200;

export interface ResumableCloneInput {
  /** The incoming copy (already `git init --bare`). */
  dir: string;
  /** `git fetch` arguments without depth options: [...-c options, "fetch", ...flags, url, ...refspecs]. */
  fetchArgs: string[];
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
  stepBytes: number;
}

export interface ResumableCloneResult {
  /** Fetches run by this attempt, e.g. ["full"] or ["full-stopped", "depth=1", "deepen=40"]. */
  steps: string[];
  /** Pack bytes the copy held when this attempt started (kept from earlier attempts). */
  resumedFromBytes: number;
}

export function isShallow(dir: string): boolean {
  return fs.existsSync(path.join(dir, "shallow"));
}

function stepwise(dir: string): boolean {
  return fs.existsSync(path.join(dir, STEPWISE_MARKER));
}

/** Bytes of the pack(s) git is receiving right now (objects/pack/tmp_pack_*). */
export function receivingBytes(dir: string): number {
  const packDir = path.join(dir, "objects", "pack");
  let total = 0;
  let names: string[] = [];
  try {
    names = fs.readdirSync(packDir);
  } catch {
    return 0;
  }
  for (const f of names) {
    if (!f.startsWith("tmp_pack_")) continue;
    try {
      total += fs.statSync(path.join(packDir, f)).size;
    } catch {
      /* renamed into place meanwhile */
    }
  }
  return total;
}

/**
 * Pure: the next `--deepen` count, from the last step's size. Aims at `stepBytes` per step,
 * changes by at most 4x per step (history is uneven), at least 1 commit.
 */
export function nextDeepen(last: number, lastBytes: number, stepBytes: number): number {
  const want = Math.round((last * stepBytes) / Math.max(lastBytes, 1));
  return Math.max(1, Math.min(last * 4, Math.max(Math.floor(last / 4), want)));
}

/** Insert depth options right after the "fetch" subcommand. */
function withDepth(fetchArgs: string[], opt: string): string[] {
  const i = fetchArgs.indexOf("fetch");
  return [...fetchArgs.slice(0, i + 1), opt, ...fetchArgs.slice(i + 1)];
}

/** The full fetch, stopped when what it receives passes `stepBytes`. True when it completed. */
async function watchedFullFetch(i: ResumableCloneInput): Promise<boolean> {
  const ac = new AbortController();
  const onAbort = () => ac.abort(i.signal.reason);
  i.signal.addEventListener("abort", onAbort, { once: true });
  let tooBig = false;
  const timer = setInterval(() => {
    if (receivingBytes(i.dir) > i.stepBytes) {
      tooBig = true;
      ac.abort(new Error("first clone is large: continuing in steps"));
    }
  }, WATCH_EVERY_MS);
  try {
    await git(i.fetchArgs, { cwd: i.dir, env: i.env, signal: ac.signal });
    return true;
  } catch (e) {
    if (tooBig && !i.signal.aborted) return false;
    throw e;
  } finally {
    clearInterval(timer);
    i.signal.removeEventListener("abort", onAbort);
  }
}

/** Fill the incoming copy; resumes from whatever earlier attempts left in it. */
export async function resumableClone(i: ResumableCloneInput): Promise<ResumableCloneResult> {
  const resumedFromBytes = packBytes(i.dir);
  const steps: string[] = [];
  if (!stepwise(i.dir)) {
    if (await watchedFullFetch(i)) return { steps: ["full"], resumedFromBytes };
    steps.push("full-stopped");
    sweepTempFiles(i.dir, { minAgeMs: 0 });
    fs.writeFileSync(path.join(i.dir, STEPWISE_MARKER), `${new Date().toISOString()}\n`);
  }
  if (!(await hasAnyRef(i.dir, i.env))) {
    await git(withDepth(i.fetchArgs, "--depth=1"), { cwd: i.dir, env: i.env, signal: i.signal });
    steps.push("depth=1");
  }
  let deepen = 16;
  while (isShallow(i.dir)) {
    i.signal.throwIfAborted();
    const before = packBytes(i.dir);
    await git(withDepth(i.fetchArgs, `--deepen=${deepen}`), { cwd: i.dir, env: i.env, signal: i.signal });
    steps.push(`deepen=${deepen}`);
    deepen = nextDeepen(deepen, packBytes(i.dir) - before, i.stepBytes);
  }
  return { steps, resumedFromBytes };
}
