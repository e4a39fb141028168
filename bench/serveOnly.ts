/**
 * The server's half of a clone alone: the protocol v2 fetch a `git clone --mirror` sends (every
 * ref wanted, no haves, done), POSTed with curl through the same TLS front, the answer read to
 * the end and thrown away. No index-pack at the other end, so this is what a mirror host sees
 * when its clients are other machines: how fast it gets a whole clone's answer out.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { performance } from "node:perf_hooks";
import { FLUSH_PKT, pktLine } from "../sync/serve/git/protocol";
import { git } from "../testbed/repos";
import type { CloneTarget } from "./servedClones";

/** The request body (pure): what git 2.39's fetch-pack sends for a clone of these objects. */
export function cloneFetchRequest(wants: readonly string[]): Buffer {
  if (wants.length === 0) throw new Error("cloneFetchRequest: nothing to want");
  return Buffer.concat([
    pktLine("command=fetch\n"),
    pktLine("agent=git/2.39.5\n"),
    pktLine("object-format=sha1\n"),
    Buffer.from("0001", "ascii"), // delimiter: capabilities end, arguments begin
    pktLine("thin-pack\n"),
    pktLine("no-progress\n"),
    pktLine("ofs-delta\n"),
    ...[...new Set(wants)].map((w) => pktLine(`want ${w}\n`)),
    pktLine("done\n"),
    FLUSH_PKT,
  ]);
}

/** Every ref's object in a repository: what a mirror clone wants. */
export async function allRefObjects(dir: string): Promise<string[]> {
  const out = await git(["--git-dir", dir, "for-each-ref", "--format=%(objectname)"]);
  return out.split("\n").filter((l) => l !== "");
}

export interface ServeRun {
  ms: number;
  bytes: number;
}

/** curl's arguments for one serve-only fetch of `t` (pure): the answer is discarded, "STATUS SIZE" printed. */
export function serveCurlArgs(t: CloneTarget, bodyFile: string): string[] {
  const url = new URL(`${t.url}/git-upload-pack`);
  const ca = t.env.GIT_SSL_CAINFO;
  if (!ca) throw new Error(`${t.name}: no CA in the target's git environment`);
  return [
    "--silent", "--show-error", "--output", "/dev/null",
    "--write-out", "%{http_code} %{size_download}",
    "--resolve", `${url.hostname}:${url.port}:127.0.0.1`,
    "--cacert", ca,
    "-H", "Git-Protocol: version=2",
    "-H", "Content-Type: application/x-git-upload-pack-request",
    "-H", "Accept: application/x-git-upload-pack-result",
    "--data-binary", `@${bodyFile}`,
    url.href,
  ];
}

/** What is wrong with one fetch's answer (curl's exit code and its "STATUS SIZE"), or undefined. Pure. */
export function answerProblem(exitCode: string | number | null, written: string, minBytes: number): string | undefined {
  const [status, size] = written.trim().split(" ");
  if (String(exitCode) === "0" && status === "200" && Number(size) >= minBytes) return undefined;
  return `curl exit ${exitCode}, HTTP ${status}, ${size} bytes (want >= ${minBytes})`;
}

/**
 * POST `body` to the target's git-upload-pack and read the answer to the end. Throws unless
 * the answer is a 200 of at least `minBytes` (a refusal or an error is a few bytes).
 */
export async function timedServe(t: CloneTarget, bodyFile: string, minBytes: number): Promise<ServeRun> {
  const args = serveCurlArgs(t, bodyFile);
  const t0 = performance.now();
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn("curl", args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString("utf8")));
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString("utf8")));
    child.on("error", reject);
    child.on("close", (c) => resolve({ code: c, stdout, stderr }));
  });
  const ms = performance.now() - t0;
  const problem = answerProblem(code, stdout, minBytes);
  if (problem) throw new Error(`${t.name}: serve-only fetch: ${problem}: ${stderr.trim()}`);
  return { ms, bytes: Number(stdout.trim().split(" ")[1]) };
}

/** Write the clone request for `dir` where curl can read it. */
export async function writeCloneRequest(dir: string, file: string): Promise<void> {
  await fs.promises.writeFile(file, cloneFetchRequest(await allRefObjects(dir)));
}

// Starts N curls (arguments after the first two) from one small shell, all at once (as
// concurrent.ts starts its clones), each recording its exit status and "STATUS SIZE".
const SERVE_BATCH_SCRIPT = `set -u
n=$1 dir=$2
shift 2
i=0
while [ "$i" -lt "$n" ]; do
  (
    out=$(curl "$@" 2>"$dir/s$i.err")
    echo "$? $out" > "$dir/s$i.res"
  ) &
  i=$((i + 1))
done
wait
`;

export interface ServeBatch {
  wallMs: number;
  /** Every answer was a 200 of at least minBytes. */
  allOk: boolean;
  failures: string[];
}

/** `n` serve-only fetches of one target started together; resolves when the last one ends. */
export async function serveBatch(t: CloneTarget, n: number, bodyFile: string, minBytes: number, parent: string): Promise<ServeBatch> {
  const curlArgs = serveCurlArgs(t, bodyFile);
  const dir = await fs.promises.mkdtemp(`${parent}/serve-${t.name}-`);
  const args = ["-c", SERVE_BATCH_SCRIPT, "serve-batch", String(n), dir, ...curlArgs];
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn("sh", args, { stdio: "ignore" });
    child.on("error", reject);
    child.on("close", () => resolve());
  });
  const wallMs = performance.now() - t0;
  const failures: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await fs.promises.readFile(`${dir}/s${i}.res`, "utf8").catch(() => "missing");
    const space = res.indexOf(" ");
    const problem = space < 0 ? `no result (${res.trim()})` : answerProblem(res.slice(0, space), res.slice(space + 1), minBytes);
    if (problem) {
      const err = await fs.promises.readFile(`${dir}/s${i}.err`, "utf8").catch(() => "");
      failures.push(`fetch ${i}: ${problem} ${err.trim().slice(-200)}`);
    }
  }
  await fs.promises.rm(dir, { recursive: true, force: true });
  return { wallMs, allOk: failures.length === 0, failures };
}
