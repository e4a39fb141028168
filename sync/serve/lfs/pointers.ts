/**
 * The LFS pointers a sync brought: blobs that are LFS pointer files (git-lfs docs/spec.md:
 * "version https://git-lfs.github.com/spec/v1", "oid sha256:<64 hex>", "size <n>", at most
 * 1024 bytes), reachable from the new tips and not from the old ones. Three git runs over the
 * local bare repository: rev-list (objects, blobs over 1 KiB filtered out by git itself),
 * cat-file --batch-check (keep the small blobs), cat-file --batch (read them).
 */
import { spawn } from "node:child_process";

const POINTER_RE = /^version https:\/\/git-lfs\.github\.com\/spec\/v1\noid sha256:([0-9a-f]{64})\nsize (\d{1,15})\n(?:[a-z0-9.-]+ [^\n]*\n)*$/;
/** The spec's limit on a pointer file. */
const MAX_POINTER = 1024;
/** Beyond this many new objects (a first clone of a huge repository) the scan is skipped. */
export const MAX_SCANNED_OBJECTS = 2_000_000;

export interface PointerRef {
  oid: string;
  size: number;
}

/** A pointer file's oid and size, or undefined (pure). */
export function parsePointer(text: string): PointerRef | undefined {
  const m = POINTER_RE.exec(text);
  return m ? { oid: m[1], size: Number(m[2]) } : undefined;
}

/** git's stdout for `args` (with `input` on stdin), bounded; rejects on a non-zero exit. */
function gitOut(dir: string, args: string[], input: string | undefined, maxBytes: number, env: NodeJS.ProcessEnv): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn("git", ["-C", dir, ...args], { env, stdio: ["pipe", "pipe", "pipe"] });
    const chunks: Buffer[] = [];
    let n = 0;
    let err = "";
    child.stdout.on("data", (c: Buffer) => {
      n += c.length;
      if (n > maxBytes) child.kill("SIGKILL");
      else chunks.push(c);
    });
    child.stderr.on("data", (c: Buffer) => (err = (err + c.toString()).slice(-2000)));
    child.stdin.on("error", () => undefined);
    child.stdin.end(input ?? "");
    child.on("error", reject);
    child.on("close", (code) => {
      if (n > maxBytes) reject(new Error(`git ${args[0]}: more than ${maxBytes} bytes of output; skipped`));
      else if (code !== 0) reject(new Error(`git ${args[0]} failed (${code}): ${err.trim()}`));
      else resolve(Buffer.concat(chunks));
    });
  });
}

/** LFS pointers reachable from `tips` and not from `exclude` in the bare repository `dir`. */
export async function newPointers(dir: string, tips: string[], exclude: string[], env: NodeJS.ProcessEnv = process.env): Promise<PointerRef[]> {
  if (tips.length === 0) return [];
  // "^rev" excludes (git 2.39 takes no options such as --not on rev-list's stdin). Revisions are object ids from the sync.
  const revs = [...tips, ...exclude.map((x) => `^${x}`)].join("\n") + "\n";
  const listed = await gitOut(dir, ["rev-list", "--objects", "--no-object-names", `--filter=blob:limit=${MAX_POINTER + 1}`, "--stdin"], revs, MAX_SCANNED_OBJECTS * 41, env);
  const checked = await gitOut(dir, ["cat-file", "--batch-check=%(objecttype) %(objectsize) %(objectname)"], listed.toString("utf8"), MAX_SCANNED_OBJECTS * 80, env);
  const small = checked
    .toString("utf8")
    .split("\n")
    .map((l) => l.split(" "))
    .filter(([type, size]) => type === "blob" && Number(size) >= 40 && Number(size) <= MAX_POINTER)
    .map(([, , id]) => id);
  if (small.length === 0) return [];
  const out = await gitOut(dir, ["cat-file", "--batch"], small.join("\n") + "\n", small.length * (MAX_POINTER + 100), env);
  const found = new Map<string, PointerRef>();
  let at = 0;
  while (at < out.length) {
    const nl = out.indexOf(10, at);
    if (nl < 0) break;
    const [, , size] = out.subarray(at, nl).toString("utf8").split(" ");
    const len = Number(size);
    const p = parsePointer(out.subarray(nl + 1, nl + 1 + len).toString("utf8"));
    if (p) found.set(p.oid, p);
    at = nl + 1 + len + 1;
  }
  return [...found.values()];
}
