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
 * a directory through them (an admin may point /var/lib/smart-mirror at a data volume).
 */
export async function observe(full: string, want: "file" | "dir"): Promise<Observed> {
  let st: fs.Stats;
  try {
    st = want === "dir" ? await fsp.stat(full) : await fsp.lstat(full);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return { kind: "missing" };
    throw e;
  }
  if (st.isDirectory()) return { kind: "dir", ...metaOf(st) };
  if (st.isFile()) return { kind: "file", sha256: want === "file" ? await sha256OfFile(full) : "", ...metaOf(st) };
  return { kind: "other", type: typeName(st) };
}

export type Content = { kind: "inline"; data: Buffer } | { kind: "source"; path: string };

interface Owned {
  mode: number;
  uid: number;
  gid: number;
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Remove temp/backup files a crashed apply left next to `full` (apply holds its lock). */
async function sweepSideFiles(full: string): Promise<void> {
  const dir = path.dirname(full);
  const prefix = sidePrefix(path.basename(full));
  for (const name of await fsp.readdir(dir)) if (name.startsWith(prefix)) await fsp.rm(path.join(dir, name), { force: true });
}

/**
 * mkdir -p with mode 0755 for each directory it creates, whatever the umask (a deploy runs
 * apply under umask 077; parents the service user cannot traverse would lock it out).
 */
export async function makeParents(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let d = dir; !fs.existsSync(d); d = path.dirname(d)) missing.unshift(d);
  for (const d of missing) {
    await fsp.mkdir(d).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== "EEXIST") throw e;
    });
    await fsp.chmod(d, 0o755);
  }
}

/**
 * Atomically replace (or create) `full`. With `keepBackup`, the previous file stays
 * hard-linked as backupName(full) (same inode: content, mode and owner exactly as they were)
 * until commit() or rollback.
 */
export async function writeAtomic(full: string, content: Content, o: Owned, keepBackup: boolean): Promise<void> {
  await makeParents(path.dirname(full));
  await sweepSideFiles(full);
  const tmp = tempName(full);
  const fh = await fsp.open(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
  try {
    if (content.kind === "inline") await fh.writeFile(content.data);
    else for await (const chunk of fs.createReadStream(content.path)) await fh.write(chunk as Buffer);
    // chown before chmod: chown clears setuid/setgid bits.
    await fh.chown(o.uid, o.gid);
    await fh.chmod(o.mode);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  if (keepBackup) await fsp.link(full, backupName(full));
  await fsp.rename(tmp, full);
  await fsyncDir(path.dirname(full));
}

export async function setMeta(full: string, o: Owned): Promise<void> {
  await fsp.chown(full, o.uid, o.gid);
  await fsp.chmod(full, o.mode);
}

export async function makeDir(full: string, o: Owned): Promise<void> {
  await makeParents(path.dirname(full));
  await fsp.mkdir(full, { mode: 0o700 });
  await setMeta(full, o);
}

const need = (what: string, id: number | null, p: string): number => {
  if (id === null) throw new Error(`the ${what} of ${p} does not exist (it should have been created from plan.users / plan.groups)`);
  return id;
};

/** Carry out one decided action under `root`. */
export async function perform(root: string, a: FileAction, content: (p: string) => Content): Promise<void> {
  const full = hostPath(root, a.path);
  const o = { mode: a.mode, uid: need("owner", a.uid, a.path), gid: need("group", a.gid, a.path) };
  switch (a.kind) {
    case "mkdir":
      return makeDir(full, o);
    case "write":
      return writeAtomic(full, content(a.path), o, a.previous !== undefined);
    case "chmod-chown":
      return setMeta(full, o);
  }
}

/** Undo one applied action (rollbackActions decides which and in what order). */
export async function undo(root: string, u: Undo): Promise<void> {
  const full = hostPath(root, u.path);
  switch (u.kind) {
    case "restore-backup":
      await fsp.rename(backupName(full), full);
      return fsyncDir(path.dirname(full));
    case "remove":
      await fsp.rm(full, { force: true });
      return fsyncDir(path.dirname(full));
    case "chmod-chown":
      return setMeta(full, u);
    case "rmdir":
      // Only if empty: something else may have been put there meanwhile.
      await fsp.rmdir(full).catch(() => undefined);
  }
}

/** After a successful apply, drop the backups. */
export async function commit(root: string, applied: FileAction[]): Promise<void> {
  for (const a of applied) if (a.kind === "write" && a.previous) await fsp.rm(backupName(hostPath(root, a.path)), { force: true });
}
