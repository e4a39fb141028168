/**
 * When a repository is due for repack/commit-graph or fsck. The last run is recorded as the
 * mtime of a marker file inside the repository, so it survives restarts and costs one stat.
 * New repositories get a random offset so 10,000 first clones don't all repack on one day.
 */
import * as fs from "node:fs";
import * as path from "node:path";

export type MaintenanceKind = "repack" | "fsck";

const MARKER: Record<MaintenanceKind, string> = { repack: "smart-mirror.repacked", fsck: "smart-mirror.fscked" };

/** Pure: is a task due, given when it last ran (undefined = never) and its interval (0 = off). */
export function isDue(lastRunMs: number | undefined, intervalMs: number, nowMs: number): boolean {
  if (intervalMs <= 0) return false;
  return lastRunMs === undefined || nowMs - lastRunMs >= intervalMs;
}

export function lastRun(repoDir: string, kind: MaintenanceKind): number | undefined {
  try {
    return fs.statSync(path.join(repoDir, MARKER[kind])).mtimeMs;
  } catch {
    return undefined;
  }
}

/** Record a run at `whenMs` (backdated on first clone to spread the fleet's schedule). */
export function recordRun(repoDir: string, kind: MaintenanceKind, whenMs: number): void {
  const file = path.join(repoDir, MARKER[kind]);
  fs.writeFileSync(file, "");
  const t = new Date(whenMs);
  fs.utimesSync(file, t, t);
}

/** recordRun without blocking the event loop (first clones of many repositories at once). */
export async function recordRunAsync(repoDir: string, kind: MaintenanceKind, whenMs: number): Promise<void> {
  const file = path.join(repoDir, MARKER[kind]);
  await fs.promises.writeFile(file, "");
  const t = new Date(whenMs);
  await fs.promises.utimes(file, t, t);
}

/**
 * A maintenance task: the two scheduled ones, or "index": a big first clone's multi-pack-index
 * bitmap and commit-graph, put off while other syncs were waiting (an initial sync of many
 * repositories gets them all mirrored first) to the repository's next job.
 */
export type MaintenanceTask = MaintenanceKind | "index";

/** Marks a first clone whose bitmap and commit-graph are still to be written (see "index"). */
const INDEX_PENDING = "smart-mirror.index-pending";

/** The first clone's bitmap and commit-graph are owed (markIndexPending). */
export function indexPending(repoDir: string): boolean {
  return fs.existsSync(path.join(repoDir, INDEX_PENDING));
}

export async function markIndexPending(repoDir: string): Promise<void> {
  await fs.promises.writeFile(path.join(repoDir, INDEX_PENDING), "");
}

/** After the index was written, or a repack (which writes a bitmap and commit-graph of its own). */
export function clearIndexPending(repoDir: string): void {
  fs.rmSync(path.join(repoDir, INDEX_PENDING), { force: true });
}

/** Due tasks; "index" only when no repack is due (a repack writes a bitmap and commit-graph anyway). */
export function dueTasks(repoDir: string, o: { repackIntervalMs: number; fsckIntervalMs: number }, nowMs: number): MaintenanceTask[] {
  const due: MaintenanceTask[] = [];
  if (isDue(lastRun(repoDir, "repack"), o.repackIntervalMs, nowMs)) due.push("repack");
  else if (indexPending(repoDir)) due.push("index");
  if (isDue(lastRun(repoDir, "fsck"), o.fsckIntervalMs, nowMs)) due.push("fsck");
  return due;
}
