/**
 * Path resolution for `smart-mirror apply`, which runs as root and works in directories the
 * service account owns (its home, shared/, shared/secrets). A symlink the service account made
 * there must never be followed: `shared/secrets -> /etc` would have root chown /etc to the
 * service user and write secrets into it.
 *
 * The rule (the "unsafe path transition" rule of systemd-tmpfiles): walking from the apply
 * root component by component, a symlink is followed only when the directory holding it can
 * be written by root alone (owned by root, not group- or world-writable): only root could have
 * made it, e.g. an admin pointing /var/lib/smart-mirror at a data volume. Any other symlink is
 * refused with the path, its target and who could have made it.
 *
 * Checking a path and then using it leaves a window in which the service account can swap a
 * checked directory for a symlink. So the I/O shell (fsOps.ts) opens the final directory or
 * file with O_NOFOLLOW, asks the kernel where the descriptor really is (/proc/self/fd), and
 * acts on the descriptor (fchown, fchmod, write) only when that is the resolved path.
 */
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";

export class UnsafePathError extends Error {
  override name = "UnsafePathError";
}

/** Who could have made an entry in a directory, or undefined when only root could. */
export function untrustedWriter(st: { uid: number; mode: number }): string | undefined {
  if (st.uid !== 0) return `its owner (uid ${st.uid})`;
  if (st.mode & 0o002) return "everyone (it is world-writable)";
  if (st.mode & 0o020) return "its group (it is group-writable)";
  return undefined;
}

export interface Resolved {
  /** The real path of the longest existing prefix of the asked path. */
  existing: string;
  /** Components below `existing` that do not exist yet (to be created in it), in order. */
  missing: string[];
}

/**
 * Resolve `rel` (a plan path) below `root` without following a symlink an account other than
 * root could have made. `finalSymlink: "refuse"` also refuses a last component that is a
 * symlink at all (a file is never written or chowned through a link).
 */
export async function resolveBelow(root: string, rel: string, o: { finalSymlink: "follow-trusted" | "refuse" } = { finalSymlink: "follow-trusted" }): Promise<Resolved> {
  const parts = rel.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) throw new UnsafePathError(`${rel}: ".." is not allowed in a plan path`);
  let cur = await fsp.realpath(root); // the root itself is the caller's choice
  for (let i = 0; i < parts.length; i++) {
    const next = path.join(cur, parts[i]);
    let st: fs.Stats;
    try {
      st = await fsp.lstat(next);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return { existing: cur, missing: parts.slice(i) };
      throw e;
    }
    const last = i === parts.length - 1;
    if (st.isSymbolicLink()) {
      const target = await fsp.readlink(next).catch(() => "?");
      if (last && o.finalSymlink === "refuse") throw new UnsafePathError(`${next} is a symlink (-> ${target}); apply never writes or chowns through a link: remove it and apply again`);
      const writer = untrustedWriter(await fsp.stat(cur));
      if (writer !== undefined) {
        throw new UnsafePathError(`refusing to follow the symlink ${next} -> ${target}: ${cur} can be written by ${writer}, so it may point anywhere; remove the link (or, for a data volume, link from a root-owned directory) and apply again`);
      }
      cur = await fsp.realpath(next);
      st = await fsp.stat(cur);
    } else {
      cur = next;
    }
    if (!last && !st.isDirectory()) throw new UnsafePathError(`${cur} is not a directory, but ${rel} goes through it`);
  }
  return { existing: cur, missing: [] };
}

/** The real path of `rel` below `root` (every component must exist). */
export async function resolveExisting(root: string, rel: string, finalSymlink: "follow-trusted" | "refuse"): Promise<string> {
  const r = await resolveBelow(root, rel, { finalSymlink });
  if (r.missing.length > 0) {
    const e = new Error(`${path.join(r.existing, ...r.missing)} does not exist`) as NodeJS.ErrnoException;
    e.code = "ENOENT";
    throw e;
  }
  return r.existing;
}

/**
 * Open `real` without following a last-component symlink, and make sure the descriptor is
 * at `real` (no directory on the way was swapped for a link since it was resolved).
 */
export async function openVerified(real: string, flags: number, mode?: number): Promise<fsp.FileHandle> {
  const fh = await fsp.open(real, flags | fs.constants.O_NOFOLLOW, mode);
  try {
    const at = await fsp.readlink(`/proc/self/fd/${fh.fd}`);
    if (at !== real) throw new UnsafePathError(`${real} moved while apply was working on it (it is now at ${at}): a directory on the way was replaced; nothing was changed there`);
    return fh;
  } catch (e) {
    await fh.close();
    throw e;
  }
}

export const DIR_FLAGS = fs.constants.O_RDONLY | fs.constants.O_DIRECTORY;
/** O_NONBLOCK: a FIFO swapped in for a file must not hang apply. */
export const FILE_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NONBLOCK;
