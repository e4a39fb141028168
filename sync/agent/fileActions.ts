/**
 * What to do to the files and directories of a plan, decided from what is on disk: pure, so
 * every case (new, same, mode, owner, content, conflict, rollback) is a table test. The I/O
 * shell (fsOps.ts) observes, then carries the actions out one by one.
 */

export interface Meta {
  /** Permission bits only (mode & 07777). */
  mode: number;
  uid: number;
  gid: number;
}

export type Observed =
  | { kind: "missing" }
  | ({ kind: "file"; sha256: string } & Meta)
  | ({ kind: "dir" } & Meta)
  /** A symlink where a file belongs, a socket, a device...: never replaced silently. */
  | { kind: "other"; type: string };

/** A desired owner id is null when its account does not exist yet (a dry run before useradd). */
export interface DesiredBase {
  path: string;
  mode: number;
  uid: number | null;
  gid: number | null;
}

export interface DesiredDir extends DesiredBase {
  kind: "dir";
  /** A user's home: created if missing, never modified. */
  createOnly?: boolean;
}

export interface DesiredFile extends DesiredBase {
  kind: "file";
  sha256: string;
  secret: boolean;
}

export type Desired = DesiredDir | DesiredFile;

/** Why a path is touched; the summary reports them (never the content). */
export type Reason = "new" | "content" | "mode" | "owner" | "group";

export type FileAction =
  | { kind: "mkdir"; path: string; mode: number; uid: number | null; gid: number | null }
  | { kind: "write"; path: string; mode: number; uid: number | null; gid: number | null; sha256: string; secret: boolean; previous?: Meta & { sha256: string }; reasons: Reason[] }
  | { kind: "chmod-chown"; path: string; target: "file" | "dir"; mode: number; uid: number | null; gid: number | null; previous: Meta; reasons: Reason[] };

export interface FileDecision {
  actions: FileAction[];
  unchanged: string[];
  /** Paths that cannot be applied as planned, each with what to do about it. */
  conflicts: string[];
}

function metaReasons(want: DesiredBase, have: Meta): Reason[] {
  const r: Reason[] = [];
  if (want.mode !== have.mode) r.push("mode");
  if (want.uid !== have.uid) r.push("owner");
  if (want.gid !== have.gid) r.push("group");
  return r;
}

const depth = (p: string) => p.split("/").length;

/**
 * Dirs first, parents before children (so a child is created inside its planned parent), then
 * files in plan order. `observe` answers for one path.
 */
export function decideFileActions(desired: Desired[], observe: (path: string) => Observed): FileDecision {
  const dirs = desired.filter((d): d is DesiredDir => d.kind === "dir").sort((a, b) => depth(a.path) - depth(b.path));
  const files = desired.filter((d): d is DesiredFile => d.kind === "file");
  const out: FileDecision = { actions: [], unchanged: [], conflicts: [] };

  for (const d of dirs) {
    const have = observe(d.path);
    if (have.kind === "missing") {
      out.actions.push({ kind: "mkdir", path: d.path, mode: d.mode, uid: d.uid, gid: d.gid });
    } else if (have.kind !== "dir") {
      out.conflicts.push(`${d.path} should be a directory but is a ${have.kind === "other" ? have.type : have.kind}; move it away or change the plan`);
    } else {
      const reasons = d.createOnly ? [] : metaReasons(d, have);
      if (reasons.length === 0) out.unchanged.push(d.path);
      else out.actions.push({ kind: "chmod-chown", path: d.path, target: "dir", mode: d.mode, uid: d.uid, gid: d.gid, previous: { mode: have.mode, uid: have.uid, gid: have.gid }, reasons });
    }
  }

  for (const f of files) {
    const have = observe(f.path);
    const base = { path: f.path, mode: f.mode, uid: f.uid, gid: f.gid };
    if (have.kind === "missing") {
      out.actions.push({ kind: "write", ...base, sha256: f.sha256, secret: f.secret, reasons: ["new"] });
    } else if (have.kind !== "file") {
      out.conflicts.push(`${f.path} should be a regular file but is a ${have.kind === "other" ? have.type : "directory"}; remove it or change the plan`);
    } else {
      const meta = metaReasons(f, have);
      const previous = { mode: have.mode, uid: have.uid, gid: have.gid };
      if (have.sha256 !== f.sha256) out.actions.push({ kind: "write", ...base, sha256: f.sha256, secret: f.secret, previous: { ...previous, sha256: have.sha256 }, reasons: ["content", ...meta] });
      else if (meta.length > 0) out.actions.push({ kind: "chmod-chown", ...base, target: "file", previous, reasons: meta });
      else out.unchanged.push(f.path);
    }
  }
  return out;
}

/** The undo of applied actions, last first: what a failed validation runs. */
export type Undo =
  /** Put the previous file (kept as a hard-linked backup) back in place. */
  | { kind: "restore-backup"; path: string }
  /** The file did not exist before. */
  | { kind: "remove"; path: string }
  | { kind: "chmod-chown"; path: string; mode: number; uid: number; gid: number }
  /** The directory did not exist before (empty again once the files inside are undone). */
  | { kind: "rmdir"; path: string };

export function rollbackActions(applied: FileAction[]): Undo[] {
  return [...applied].reverse().map((a): Undo => {
    switch (a.kind) {
      case "mkdir":
        return { kind: "rmdir", path: a.path };
      case "write":
        return a.previous ? { kind: "restore-backup", path: a.path } : { kind: "remove", path: a.path };
      case "chmod-chown":
        return { kind: "chmod-chown", path: a.path, ...a.previous };
    }
  });
}

/** Plan paths an action touched, in action order. */
export function changedPaths(actions: FileAction[]): string[] {
  return actions.map((a) => a.path);
}
