/**
 * The file-system shell of apply: observe a path, write a file atomically with its mode and
 * owner, keep the previous version for a rollback. Every write is temp file (created 0600, so
 * a secret is never readable by others, not even for a moment) + fchown + fchmod + fsync +
 * rename + fsync of the directory: a crash leaves the old file or the new one, never half.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { pipeline } from "node:stream/promises";
import { FileAction, Meta, Observed, Undo } from "./fileActions";
import { DIR_FLAGS, FILE_FLAGS, openVerified, resolveBelow, resolveExisting, UnsafePathError } from "./safePath";

/** Where plan path `p` lives when applying under `root` ("/" in production). */
export function hostPath(root: string, p: string): string {
  return root === "/" ? p : path.join(root, p);
}

/** Names of our temp and backup files next to a target; the prefix lets a later apply sweep crash leftovers. */
const sidePrefix = (base: string) => `.${base}.smart-mirror-`;
const tempName = (full: string) => path.join(path.dirname(full), `${sidePrefix(path.basename(full))}tmp-${process.pid}`);
export const backupName = (full: string) => path.join(path.dirname(full), `${sidePrefix(path.basename(full))}prev`);

export async function sha256OfFile(file: string): Promise<string> {
  const h = createHash("sha256");
  await pipeline(fs.createReadStream(file), h);
  return h.digest("hex");
}

export function sha256OfBuffer(b: Buffer): string {
  return createHash("sha256").update(b).digest("hex");
}

const metaOf = (st: fs.Stats): Meta => ({ mode: st.mode & 0o7777, uid: st.uid, gid: st.gid });

function typeName(st: fs.Stats): string {
  if (st.isSymbolicLink()) return "symlink";
  if (st.isSocket()) return "socket";
  if (st.isFIFO()) return "fifo";
  if (st.isBlockDevice() || st.isCharacterDevice()) return "device";
  return "special file";
}

/**
 * A file is looked at without following symlinks (a symlink is never overwritten silently);
 * a directory through them only where root alone could have made the link (an admin may point
 * /var/lib/smart-mirror at a data volume; safePath.ts). A link the service account could have
 * made on the way throws UnsafePathError: apply refuses before it changes anything.
 */
export async function observe(root: string, planPath: string, want: "file" | "dir"): Promise<Observed> {
  const r = await resolveBelow(root, want === "dir" ? planPath : path.dirname(planPath));
  if (r.missing.length > 0) return { kind: "missing" };
  const full = want === "dir" ? r.existing : path.join(r.existing, path.basename(planPath));
  let st: fs.Stats;
  try {
    st = await fsp.lstat(full);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return { kind: "missing" };
    throw e;
  }
  if (st.isDirectory()) return { kind: "dir", ...metaOf(st) };
  if (st.isFile()) return { kind: "file", sha256: want === "file" ? await sha256OfPath(full) : "", ...metaOf(st) };
  return { kind: "other", type: typeName(st) };
}

async function sha256OfPath(real: string): Promise<string> {
  const fh = await openVerified(real, FILE_FLAGS);
  const h = createHash("sha256");
  await pipeline(fh.createReadStream(), h); // closes fh
  return h.digest("hex");
}

export type Content = { kind: "inline"; data: Buffer } | { kind: "source"; path: string };

interface Owned {
  mode: number;
  uid: number;
  gid: number;
}

async function fsyncDir(realDir: string): Promise<void> {
  const fh = await openVerified(realDir, DIR_FLAGS);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** chown then chmod (chown clears setuid/setgid bits), on a descriptor. */
async function ownAndMode(fh: fsp.FileHandle, o: Owned): Promise<void> {
  await fh.chown(o.uid, o.gid);
  await fh.chmod(o.mode);
}

/** Remove temp/backup files a crashed apply left next to `base` in `realDir` (apply holds its lock). */
async function sweepSideFiles(realDir: string, base: string): Promise<void> {
  const prefix = sidePrefix(base);
  for (const name of await fsp.readdir(realDir)) if (name.startsWith(prefix)) await fsp.rm(path.join(realDir, name), { force: true });
}

/**
 * mkdir -p of plan directory `planDir` below `root`, mode 0755 for each directory it creates
 * whatever the umask (a deploy runs apply under umask 077; parents the service user cannot
 * traverse would lock it out). Returns the directory's real path.
 */
export async function makeParents(root: string, planDir: string): Promise<string> {
  const r = await resolveBelow(root, planDir);
  let cur = r.existing;
  for (const name of r.missing) {
    cur = path.join(cur, name);
    await fsp.mkdir(cur).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== "EEXIST") throw e;
    });
    const fh = await openVerified(cur, DIR_FLAGS);
    try {
      await fh.chmod(0o755);
    } finally {
      await fh.close();
    }
  }
  return cur;
}

/**
 * Atomically replace (or create) plan file `planPath`. With `keepBackup`, the previous file
 * stays hard-linked as backupName(full) (same inode: content, mode and owner exactly as they
 * were) until commit() or rollback. Everything happens in the directory's resolved real path;
 * the temp file is created O_EXCL|O_NOFOLLOW and checked to be where it should be before a
 * byte is written; rename() replaces a link at the target, never writes through it.
 */
export async function writeAtomic(root: string, planPath: string, content: Content, o: Owned, keepBackup: boolean): Promise<void> {
  const dir = await makeParents(root, path.dirname(planPath));
  const base = path.basename(planPath);
  const full = path.join(dir, base);
  await sweepSideFiles(dir, base);
  const tmp = path.join(dir, path.basename(tempName(full)));
  const fh = await openVerified(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
  try {
    if (content.kind === "inline") await fh.writeFile(content.data);
    else for await (const chunk of fs.createReadStream(content.path)) await fh.write(chunk as Buffer);
    await ownAndMode(fh, o);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  if (keepBackup) {
    if ((await fsp.lstat(full)).isSymbolicLink()) throw new UnsafePathError(`${full} was replaced by a symlink while apply ran; remove it and apply again`);
    await fsp.link(full, path.join(dir, path.basename(backupName(full))));
  }
  await fsp.rename(tmp, full);
  await fsyncDir(dir);
}

/** chown + chmod an existing plan path through a verified descriptor (never through a link). */
export async function setMeta(root: string, planPath: string, o: Owned, target: "file" | "dir"): Promise<void> {
  const real = await resolveExisting(root, planPath, target === "file" ? "refuse" : "follow-trusted");
  const fh = await openVerified(real, target === "dir" ? DIR_FLAGS : FILE_FLAGS);
  try {
    await ownAndMode(fh, o);
  } finally {
    await fh.close();
  }
}

export async function makeDir(root: string, planPath: string, o: Owned): Promise<void> {
  const parent = await makeParents(root, path.dirname(planPath));
  const full = path.join(parent, path.basename(planPath));
  await fsp.mkdir(full, { mode: 0o700 });
  const fh = await openVerified(full, DIR_FLAGS);
  try {
    await ownAndMode(fh, o);
  } finally {
    await fh.close();
  }
}

const need = (what: string, id: number | null, p: string): number => {
  if (id === null) throw new Error(`the ${what} of ${p} does not exist (it should have been created from plan.users / plan.groups)`);
  return id;
};

/** Carry out one decided action under `root`. */
export async function perform(root: string, a: FileAction, content: (p: string) => Content): Promise<void> {
  const o = { mode: a.mode, uid: need("owner", a.uid, a.path), gid: need("group", a.gid, a.path) };
  switch (a.kind) {
    case "mkdir":
      return makeDir(root, a.path, o);
    case "write":
      return writeAtomic(root, a.path, content(a.path), o, a.previous !== undefined);
    case "chmod-chown":
      return setMeta(root, a.path, o, a.target);
  }
}

/** The real directory holding plan path `p` and its last component. */
async function parentOf(root: string, p: string): Promise<{ dir: string; full: string }> {
  const dir = await resolveExisting(root, path.dirname(p), "follow-trusted");
  return { dir, full: path.join(dir, path.basename(p)) };
}

/** Undo one applied action (rollbackActions decides which and in what order). */
export async function undo(root: string, u: Undo): Promise<void> {
  const { dir, full } = await parentOf(root, u.path);
  switch (u.kind) {
    case "restore-backup":
      await fsp.rename(backupName(full), full);
      return fsyncDir(dir);
    case "remove":
      await fsp.rm(full, { force: true });
      return fsyncDir(dir);
    case "chmod-chown": {
      // A planned directory may be an admin's link (followed like everywhere else); a file never is.
      const real = await resolveExisting(root, u.path, "follow-trusted");
      return setMeta(root, u.path, u, (await fsp.lstat(real)).isDirectory() ? "dir" : "file");
    }
    case "rmdir":
      // Only if empty: something else may have been put there meanwhile. rmdir never follows a link.
      await fsp.rmdir(full).catch(() => undefined);
  }
}

/** After a successful apply, drop the backups. */
export async function commit(root: string, applied: FileAction[]): Promise<void> {
  for (const a of applied) {
    if (a.kind === "write" && a.previous) await fsp.rm(backupName((await parentOf(root, a.path)).full), { force: true });
  }
}
