/**
 * Where `smart-mirror apply` gets a plan that is not a local file (a mirror farm's nodes pull it):
 *
 *   --plan-url https://host/path   node's https, TLS verified (the system store, or --plan-ca);
 *                                  redirects are refused, not followed (a redirect could lead
 *                                  to plain http or to another host than the one verified)
 *   --plan-url s3://bucket/key     `aws s3 cp s3://bucket/key -` (the instance role's
 *                                  credentials, KMS decryption by S3), its stdout streamed
 *
 * The plan is streamed into a 0600 file in a fresh 0700 directory, hashed as it arrives, capped
 * in size and time, and its sha256 compared with --plan-sha256 (the digest the deploy recorded)
 * BEFORE anything parses or applies it: a mismatch deletes the file and fails naming both
 * digests. The caller removes the directory after apply (the plan may hold secrets).
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as https from "node:https";
import * as os from "node:os";
import * as path from "node:path";
import { Transform, TransformCallback, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";

/** A plan holds configuration, keys and certificates (the bundle travels beside it): far below this. */
export const PLAN_MAX_BYTES = 64 * 1024 * 1024;
/** Download and `aws s3 cp` together. */
export const PLAN_FETCH_TIMEOUT_MS = 120_000;

export type PlanUrl = { kind: "https"; url: URL } | { kind: "s3"; bucket: string; key: string; uri: string };

/** A failure with the message that names the fix; nothing was applied. */
export class PlanSourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PlanSourceError";
  }
}

// S3 bucket names: 3-63 of a-z 0-9 . - (AWS "Bucket naming rules").
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** What --plan-url names, or a PlanSourceError saying what is wrong with it. */
export function parsePlanUrl(text: string): PlanUrl {
  const s3 = /^s3:\/\/([^/]+)\/(.+)$/.exec(text);
  if (text.startsWith("s3://")) {
    if (!s3 || !BUCKET.test(s3[1])) throw new PlanSourceError(`--plan-url ${JSON.stringify(text)} is not s3://BUCKET/KEY (a bucket name of 3-63 lower-case letters, digits, dots and hyphens, then the object's key)`);
    if (/[\0\r\n]/.test(s3[2])) throw new PlanSourceError("--plan-url: the S3 key must not contain control characters");
    return { kind: "s3", bucket: s3[1], key: s3[2], uri: text };
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new PlanSourceError(`--plan-url ${JSON.stringify(text)} is not a URL; give https://HOST/PATH or s3://BUCKET/KEY`);
  }
  if (url.protocol !== "https:") throw new PlanSourceError(`--plan-url must be https:// or s3:// (got ${url.protocol}//): the plan holds secrets and is fetched only over verified TLS`);
  if (url.username || url.password) throw new PlanSourceError("--plan-url must not carry a user name or password (they would show in process listings); serve the plan to the node's network or use s3://");
  return { kind: "https", url };
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** --plan-sha256 as lower-case hex, or a PlanSourceError. */
export function parseSha256(text: string): string {
  const t = text.trim().toLowerCase();
  if (!SHA256_HEX.test(t)) throw new PlanSourceError(`--plan-sha256 must be the plan's SHA-256 as 64 hex digits (sha256sum plan.json), got ${JSON.stringify(text.slice(0, 80))}`);
  return t;
}

export interface FetchedPlan {
  /** The verified plan (0600). */
  file: string;
  bytes: number;
  /** Remove the file and its directory. */
  remove(): void;
}

export interface FetchPlanOptions {
  url: PlanUrl;
  sha256: string;
  /** PEM bundle to verify the https server with (instead of the system store). */
  caFile?: string;
  maxBytes?: number;
  timeoutMs?: number;
  /** Where the 0700 directory is made (default the system temp dir). */
  tmpDir?: string;
  /** The aws CLI (default "aws" on PATH). */
  aws?: string;
}

/** Counts and hashes what passes; fails the stream past `max` bytes. */
class Meter extends Transform {
  bytes = 0;
  private readonly hash = createHash("sha256");
  constructor(private readonly max: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.max) return cb(new PlanSourceError(`the plan is larger than ${this.max} bytes; refusing it (is --plan-url the plan, not the daemon bundle?)`));
    this.hash.update(chunk);
    cb(null, chunk);
  }
  digest(): string {
    return this.hash.digest("hex");
  }
}

/** Fetch, store (0600), verify. Throws PlanSourceError; nothing is left on disk then. */
export async function fetchPlan(o: FetchPlanOptions): Promise<FetchedPlan> {
  const want = parseSha256(o.sha256);
  const ca = o.caFile !== undefined ? readCa(o.caFile) : undefined;
  const dir = fs.mkdtempSync(path.join(o.tmpDir ?? os.tmpdir(), "smart-mirror-plan-"));
  fs.chmodSync(dir, 0o700);
  const file = path.join(dir, "plan.json");
  const remove = () => fs.rmSync(dir, { recursive: true, force: true });
  const meter = new Meter(o.maxBytes ?? PLAN_MAX_BYTES);
  const timeoutMs = o.timeoutMs ?? PLAN_FETCH_TIMEOUT_MS;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new PlanSourceError(`fetching the plan took longer than ${Math.round(timeoutMs / 1000)} s; nothing was applied`)), timeoutMs);
  // Opened here, not lazily by the stream: a failure below must find the file to remove.
  const out = fs.createWriteStream(file, { fd: fs.openSync(file, "wx", 0o600) });
  try {
    if (o.url.kind === "https") await fromHttps(o.url.url, ca, meter, out, abort.signal);
    else await fromS3(o.url, o.aws ?? "aws", meter, out, abort.signal);
  } catch (e) {
    out.destroy();
    remove();
    const reason = abort.signal.aborted && abort.signal.reason instanceof PlanSourceError ? abort.signal.reason : e;
    if (reason instanceof PlanSourceError) throw reason;
    throw new PlanSourceError(`cannot fetch the plan from ${describe(o.url)}: ${(reason as Error).message}; nothing was applied`);
  } finally {
    clearTimeout(timer);
  }
  const got = meter.digest();
  if (got !== want) {
    remove();
    throw new PlanSourceError(`the plan from ${describe(o.url)} does not match --plan-sha256: expected ${want}, got ${got} (${meter.bytes} bytes); nothing was applied. A plan changed after the deploy recorded its digest, or the wrong object: re-run the deploy, or pass the digest it recorded`);
  }
  return { file, bytes: meter.bytes, remove };
}

function describe(u: PlanUrl): string {
  return u.kind === "s3" ? u.uri : `${u.url.origin}${u.url.pathname}`;
}

function readCa(file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new PlanSourceError(`--plan-ca ${file}: ${(e as Error).message}`);
  }
  if (!text.includes("-----BEGIN CERTIFICATE-----")) throw new PlanSourceError(`--plan-ca ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  return text;
}

function fromHttps(url: URL, ca: string | undefined, meter: Meter, out: Writable, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    // agent: false, so `ca` replaces the system store for this one connection only.
    const req = https.get(url, { ca, agent: false, signal, headers: { Accept: "application/json" } }, (res) => {
      const status = res.statusCode ?? 0;
      if (status !== 200) {
        res.resume();
        const where = res.headers.location ? ` (to ${res.headers.location.slice(0, 200)})` : "";
        reject(
          new PlanSourceError(
            status >= 300 && status < 400
              ? `the plan server answered a redirect ${status}${where}; redirects are not followed: give --plan-url the final https URL`
              : `the plan server answered ${status} ${res.statusMessage ?? ""} for ${url.origin}${url.pathname}; nothing was applied`,
          ),
        );
        return;
      }
      pipeline(res, meter, out).then(resolve, reject);
    });
    req.on("error", reject);
  });
}

function fromS3(u: Extract<PlanUrl, { kind: "s3" }>, aws: string, meter: Meter, out: Writable, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    // argv, never a shell line; --only-show-errors keeps progress off stderr.
    const child = spawn(aws, ["s3", "cp", "--only-show-errors", u.uri, "-"], { stdio: ["ignore", "pipe", "pipe"], env: process.env, signal, killSignal: "SIGKILL" });
    let stderr = "";
    child.stderr.on("data", (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
    const copied = pipeline(child.stdout, meter, out);
    let failed = false;
    copied.catch((e: unknown) => {
      failed = true;
      child.kill("SIGKILL");
      reject(e);
    });
    child.on("error", (e: NodeJS.ErrnoException) => {
      failed = true;
      reject(e.code === "ENOENT" ? new PlanSourceError(`cannot run ${aws}: not found on PATH; install the AWS CLI (Debian: apt-get install awscli) to apply an s3:// plan`) : e);
    });
    child.on("close", (code) => {
      if (failed) return;
      if (code !== 0) return reject(new PlanSourceError(`\`aws s3 cp ${u.uri} -\` failed (exit ${code}): ${stderr.trim().slice(-1000) || "no message"}; nothing was applied`));
      copied.then(resolve, reject);
    });
  });
}
