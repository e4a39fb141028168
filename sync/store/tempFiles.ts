/**
 * Temporary files git leaves in a repository when it dies mid-write (kill -9, ENOSPC, a
 * timeout): `objects/pack/tmp_pack_*` (the pack index-pack is receiving: the big one),
 * `tmp_idx_*`, `tmp_rev_*`, `tmp_mtimes_*`, repack's `.tmp-<pid>-pack-*`, and quarantine
 * directories `objects/tmp_objdir-*` / `objects/incoming-*`. Git never removes them by itself
 * except through `gc`'s prune, which the mirror does not run, so each killed fetch of a big
 * repository would keep its partial pack for good.
 *
 * Removed only when nothing is writing them: no process on this host has the file open (a
 * fetch orphaned by a kill -9 of the daemon may still be running; /proc tells), and it was
 * last modified at least `minAgeMs` ago (a file git has just created, and a writer /proc does
 * not show, e.g. in another PID namespace).
 */
import * as fs from "node:fs";
import * as path from "node:path";

const PACK_TEMP = /^(tmp_(pack|idx|rev|mtimes|bitmap)_|\.tmp-\d+-pack)/;
const OBJECTS_TEMP = /^(tmp_objdir-|incoming-)/;

export interface SweptFile {
  path: string;
  bytes: number;
}

/** Candidate temp files of a bare repository (no filtering by age or use). */
export function listTempFiles(repoDir: string): string[] {
  const out: string[] = [];
  const objects = path.join(repoDir, "objects");
  for (const name of readdirOrEmpty(path.join(objects, "pack"))) if (PACK_TEMP.test(name)) out.push(path.join(objects, "pack", name));
  for (const name of readdirOrEmpty(objects)) if (OBJECTS_TEMP.test(name)) out.push(path.join(objects, name));
  return out;
}

/** Every path some process on this host has open (read from /proc/<pid>/fd). */
export function openPaths(): Set<string> {
  const open = new Set<string>();
  for (const pid of readdirOrEmpty("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    for (const fd of readdirOrEmpty(`/proc/${pid}/fd`)) {
      try {
        open.add(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      } catch {
        /* closed meanwhile, or the process is gone */
      }
    }
  }
  return open;
}

/**
 * Remove abandoned temp files of `repoDir`. `open` is computed lazily, once, and only when a
 * candidate exists (scanning /proc costs a few ms; most sweeps find nothing).
 */
export function sweepTempFiles(repoDir: string, o: { minAgeMs: number; now?: number; open?: () => Set<string> }): SweptFile[] {
  const candidates = listTempFiles(repoDir);
  if (candidates.length === 0) return [];
  const now = o.now ?? Date.now();
  let open: Set<string> | undefined;
  const removed: SweptFile[] = [];
  for (const p of candidates) {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      continue; // gone meanwhile (its writer finished and renamed it)
    }
    if (now - st.mtimeMs < o.minAgeMs) continue;
    open ??= (o.open ?? openPaths)();
    if (isOpen(p, st, open)) continue;
    const bytes = st.isDirectory() ? treeBytes(p) : st.size;
    fs.rmSync(p, { recursive: true, force: true });
    removed.push({ path: p, bytes });
  }
  return removed;
}

function isOpen(p: string, st: fs.Stats, open: Set<string>): boolean {
  if (!st.isDirectory()) return open.has(p);
  // A quarantine directory is in use while anything inside it is open (or it is a cwd).
  const prefix = p + path.sep;
  for (const q of open) if (q === p || q.startsWith(prefix)) return true;
  return false;
}

function treeBytes(dir: string): number {
  let n = 0;
  for (const e of readdirEntries(dir)) {
    const p = path.join(dir, e.name);
    try {
      n += e.isDirectory() ? treeBytes(p) : fs.lstatSync(p).size;
    } catch {
      /* gone */
    }
  }
  return n;
}

/** The names in `dir`, or none when it cannot be read (missing, gone, not a directory). */
export function readdirOrEmpty(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

function readdirEntries(dir: string): fs.Dirent[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}
