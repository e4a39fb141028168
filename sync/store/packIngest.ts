/**
 * Taking a pack that arrives over a protocol v2 session (upstream/protocolV2.ts) into a
 * repository, with the same guarantees `git fetch` gives: `git index-pack --stdin` checks and
 * indexes it as it streams in (the pack becomes visible only complete, with a .keep until the
 * refs name its objects, like fetch-pack), its objects are checked to be connected, and the
 * refs are written only after that.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { GitError } from "./runGit";

export interface PackIndexer {
  /** Feed pack bytes; resolves when index-pack can take more. */
  write(chunk: Buffer): Promise<void>;
  /** End of the pack: resolves with the new pack's name (pack-<hash>) once indexed. */
  finish(): Promise<string>;
  /** Stop: kill index-pack and wait until it is gone (so its temp pack can be swept). */
  abort(): Promise<void>;
  /** Bytes fed so far. */
  readonly bytes: number;
}

export interface IndexPackOptions {
  /** The pack may be thin (we sent haves): complete it from the repository. */
  fixThin: boolean;
  /**
   * A full clone's pack: index-pack checks it is self-contained and connected (what git clone
   * asks of it), so no `rev-list` connectivity walk is needed afterwards.
   */
  selfContained: boolean;
  /**
   * Check every object the pack's objects link to exists, in the pack or the repository (and
   * fsck each object): the connectivity check for a pack on top of a connected repository,
   * without the `rev-list --objects` walk git fetch runs as another process.
   */
  strict?: boolean;
}

/** `git index-pack --stdin` in `dir`, in its own process group; an abort kills it. */
export function startIndexPack(dir: string, env: NodeJS.ProcessEnv, signal: AbortSignal, o: IndexPackOptions): PackIndexer {
  const args = ["-c", "core.fsync=committed", "index-pack", "--stdin", `--keep=smart-mirror ${process.pid}`];
  if (o.fixThin) args.push("--fix-thin");
  if (o.selfContained) args.push("--check-self-contained-and-connected");
  else if (o.strict) args.push("--strict");
  const child = spawn("git", args, { cwd: dir, env, stdio: ["pipe", "pipe", "pipe"], detached: true });
  let stdout = "";
  let stderr = "";
  let bytes = 0;
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString("utf8")));
  child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString("utf8")).slice(-4096)));
  const kill = () => {
    try {
      if (child.pid) process.kill(-child.pid, "SIGKILL");
    } catch {
      /* gone */
    }
  };
  signal.addEventListener("abort", kill, { once: true });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on("error", (e) => reject(new Error(`cannot run git: ${e.message} (is the git package installed?)`)));
    child.on("close", (code) => {
      signal.removeEventListener("abort", kill);
      resolve(code);
    });
  });
  exited.catch(() => undefined);
  // A write after index-pack died (bad pack) fails with EPIPE: the exit code tells why.
  child.stdin!.on("error", () => undefined);
  const failure = (code: number | null) => new GitError(`git index-pack failed: ${signal.aborted ? `aborted (${String(signal.reason ?? "")})` : stderr.trim() || `exit ${code}`}`, { code, signal: null, stderrTail: stderr.trim() });
  return {
    get bytes() {
      return bytes;
    },
    write(chunk) {
      bytes += chunk.length;
      if (child.stdin!.write(chunk)) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const done = () => {
          child.stdin!.off("drain", done);
          child.off("close", done);
          resolve();
        };
        child.stdin!.once("drain", done);
        child.once("close", done);
      });
    },
    async abort() {
      kill();
      await exited.catch(() => undefined);
    },
    async finish() {
      child.stdin!.end();
      const code = await exited;
      if (code !== 0) throw failure(code);
      const m = /^(?:pack|keep)\t([0-9a-f]{40,64})$/m.exec(stdout);
      if (!m) throw failure(code);
      return `pack-${m[1]}`;
    },
  };
}

/** Which of `oids` the pack index `idxFile` (version 2) lists. Reads the index only. */
export async function packContains(idxFile: string, oids: readonly string[]): Promise<Set<string>> {
  const idx = await fs.promises.readFile(idxFile);
  if (idx.readUInt32BE(0) !== 0xff744f63 || idx.readUInt32BE(4) !== 2) throw new Error(`${idxFile}: not a version 2 pack index`);
  const fanout = (i: number) => (i < 0 ? 0 : idx.readUInt32BE(8 + i * 4));
  const total = fanout(255);
  const hashLen = (oids[0]?.length ?? 40) / 2;
  const names = 8 + 256 * 4;
  const found = new Set<string>();
  for (const oid of oids) {
    const want = Buffer.from(oid, "hex");
    let lo = fanout(want[0] - 1);
    let hi = fanout(want[0]);
    while (lo < hi && hi <= total) {
      const mid = (lo + hi) >>> 1;
      const c = Buffer.compare(idx.subarray(names + mid * hashLen, names + (mid + 1) * hashLen), want);
      if (c === 0) {
        found.add(oid);
        break;
      }
      if (c < 0) lo = mid + 1;
      else hi = mid;
    }
  }
  return found;
}

/** The .keep index-pack left (it protects the pack until refs name it): removed once they do. */
export async function releasePack(dir: string, pack: string): Promise<void> {
  await fs.promises.rm(path.join(dir, "objects", "pack", `${pack}.keep`), { force: true });
}

/**
 * A bare repository's skeleton, as `git init --bare` makes it minus samples, description and
 * empty directories git makes when needed: what git needs to recognize the repository
 * (HEAD, objects/, refs/) and index a pack into it. Written directly, without blocking the
 * event loop: no process and no synchronous file system work per first clone.
 */
export async function writeBareSkeleton(dir: string, headTarget: string): Promise<void> {
  await fs.promises.mkdir(path.join(dir, "objects", "pack"), { recursive: true });
  await fs.promises.mkdir(path.join(dir, "refs"));
  await fs.promises.writeFile(path.join(dir, "config"), "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n");
  // HEAD last: the store takes a directory with HEAD for a repository (or a clone to resume).
  await fs.promises.writeFile(path.join(dir, "HEAD"), `ref: ${headTarget}\n`);
}

/** packed-refs holding `refs` (sorted by name, as git requires), written atomically. */
export async function writePackedRefs(dir: string, refs: ReadonlyMap<string, string>): Promise<void> {
  const names = [...refs.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const body = "# pack-refs with: sorted \n" + names.map((n) => `${refs.get(n)} ${n}\n`).join("");
  const file = path.join(dir, "packed-refs");
  await fs.promises.writeFile(`${file}.tmp`, body);
  await fs.promises.rename(`${file}.tmp`, file);
}
