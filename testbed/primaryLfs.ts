/**
 * The primary's Git LFS server for the testbed: a small real implementation of the LFS Batch
 * API and the basic transfer adapter, mounted into the Bitbucket double (bitbucketDouble.ts
 * `mounts`), so it is served over the double's real HTTPS with its Basic/Bearer auth and
 * per-repository read rule, at the URL git-lfs derives from a Bitbucket clone URL.
 *
 *     POST {url}/scm/PROJECT/repo.git/info/lfs/objects/batch        the Batch API
 *     GET  {url}/rest/git-lfs/storage/PROJECT/repo/<oid>            basic download (action href)
 *     PUT  {url}/rest/git-lfs/storage/PROJECT/repo/<oid>            basic upload (action href)
 *     POST {url}/rest/git-lfs/storage/PROJECT/repo/<oid>/verify     verify action
 *     GET  {url}/scm/PROJECT/repo.git/info/lfs/locks                locking API: list (empty)
 *     POST {url}/scm/PROJECT/repo.git/info/lfs/locks/verify         locking API: verify (no locks)
 *
 * Shapes, headers and status codes follow git-lfs's docs/api/batch.md, basic-transfers.md and
 * locking.md: `application/vnd.git-lfs+json` both ways (406 for another Accept), 401 with
 * `LFS-Authenticate: Basic realm="Git LFS"`, 404 for a repository the user may not read,
 * per-object errors (404 object missing, 422 validation) inside a 200, no `actions` for an
 * upload the server already has, download/upload actions carrying the caller's Authorization
 * in `header` (as the basic-transfers examples do). Uploads need read permission only: the
 * double has no write permission model.
 *
 * Action hrefs use the Host the client sent (else baseUrl). Objects live in a directory per repository (DIR/PROJECT/slug/<oid>), written through a temp
 * file and renamed only after their SHA-256 and size check out. Switches for tests: `setDown`
 * (every LFS endpoint answers 503), `setCorrupt(oid)` (that object is served with its first
 * byte flipped, same size); `downloads(oid)` counts GETs of an object.
 */
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import * as path from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { text } from "node:stream/consumers";
import { z } from "zod";
import type { DoubleAccess, DoubleMount } from "./bitbucketDouble";

export const LFS_MEDIA_TYPE = "application/vnd.git-lfs+json";
const OID_RE = /^[0-9a-f]{64}$/;
const NAME = "[A-Za-z0-9_~][A-Za-z0-9._~-]*";
// The slug is matched lazily so "repo.git" yields "repo".
const BATCH_RE = new RegExp(`^/scm/(${NAME})/(${NAME}?)(?:\\.git)?/info/lfs/(objects/batch|locks|locks/verify)$`);
const STORAGE_RE = new RegExp(`^/rest/git-lfs/storage/(${NAME})/(${NAME})/([0-9a-f]{64})(/verify)?$`);
const MAX_JSON = 1024 * 1024;

export interface PrimaryLfsOptions {
  /** Object storage root (a directory per repository below it). */
  dir: string;
  /** The double's base URL (action hrefs are built on it), known once it listens. */
  baseUrl: () => string;
  /** Public repositories (Bitbucket's "public access"): anyone may download their objects. */
  publicRead?: (projectKey: string, slug: string) => boolean;
}

export interface LfsObject {
  oid: string;
  size: number;
}

export interface PrimaryLfs {
  /** Hand to startBitbucketDouble({ mounts: [lfs.mount] }) or double.mount(lfs.mount). */
  readonly mount: DoubleMount;
  /** Store content as an object of PROJECT/slug (what a push with git-lfs would leave). */
  addObject(project: string, slug: string, content: Buffer): LfsObject;
  /** Store a file's content (streamed: bench objects are large). */
  addObjectFile(project: string, slug: string, file: string): Promise<LfsObject>;
  has(project: string, slug: string, oid: string): boolean;
  /** GETs of the object's download href so far (any repository). */
  downloads(oid: string): number;
  /** Batch API requests so far, by operation. */
  readonly batches: { download: number; upload: number };
  /** true: every LFS endpoint answers 503 (the REST API and the rest of the double stay up). */
  setDown(down: boolean): void;
  /** Serve this object corrupted (first byte flipped); undefined: serve every object intact. */
  setCorrupt(oid: string | undefined): void;
}

/** The object's SHA-256 (its LFS oid). */
export function lfsOid(content: Buffer): string {
  return createHash("sha256").update(content).digest("hex");
}

/** The pointer file git-lfs commits in place of the content (spec.md: version, oid, size). */
export function lfsPointer(o: LfsObject): string {
  return `version https://git-lfs.github.com/spec/v1\noid sha256:${o.oid}\nsize ${o.size}\n`;
}

function sendLfs(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": LFS_MEDIA_TYPE, "Content-Length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** The request body as JSON (bodies here are a few KB; the double is a test server). */
async function readJson(req: IncomingMessage): Promise<unknown> {
  const t = await text(req);
  if (t.length > MAX_JSON) throw new Error("request body too large");
  try {
    return JSON.parse(t);
  } catch {
    throw new Error("the request body is not valid JSON");
  }
}

/** A batch request (batch.md "Requests"): what the server reads of it. */
const BatchRequest = z.object({
  operation: z.enum(["download", "upload"]),
  transfers: z.array(z.string()).refine((t) => t.includes("basic"), "only the basic transfer adapter is supported").optional(),
  objects: z.array(z.object({ oid: z.string(), size: z.number().int().nonnegative() })),
});

/** The request's objects if the body is a well-formed batch request, else what is wrong. */
export function parseBatchRequest(body: unknown): { operation: "download" | "upload"; objects: LfsObject[] } | string {
  const r = BatchRequest.safeParse(body);
  return r.success ? { operation: r.data.operation, objects: r.data.objects } : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
}

export function startPrimaryLfs(o: PrimaryLfsOptions): PrimaryLfs {
  const tmp = path.join(o.dir, ".tmp");
  fs.mkdirSync(tmp, { recursive: true });
  const counts = new Map<string, number>();
  const batches = { download: 0, upload: 0 };
  let down = false;
  let corrupt: string | undefined;

  const objectPath = (p: string, s: string, oid: string) => path.join(o.dir, p, s, oid);
  const sizeOf = (p: string, s: string, oid: string): number | undefined => {
    try {
      return fs.statSync(objectPath(p, s, oid)).size;
    } catch {
      return undefined;
    }
  };
  // Hrefs on the name and port the client used (as servers behind a proxy do), so a client
  // that reached the double through the WAN proxy downloads through it too.
  const base = (req: IncomingMessage) => {
    const host = req.headers.host;
    return typeof host === "string" && /^[A-Za-z0-9.-]+(?::\d{1,5})?$/.test(host) ? `https://${host}` : o.baseUrl();
  };
  const storageHref = (req: IncomingMessage, p: string, s: string, oid: string) => `${base(req)}/rest/git-lfs/storage/${p}/${s}/${oid}`;

  /** Answers 401 (no credentials: anonymous reads nothing) or 404 (not readable, or missing) and returns true. */
  function refusal(res: ServerResponse, access: DoubleAccess, p: string, s: string, write: boolean): boolean {
    const open = !write && access.exists(p, s) && o.publicRead?.(p, s) === true;
    if (open) return false;
    if (access.user === undefined) {
      sendLfs(res, 401, { message: "Credentials needed" }, { "LFS-Authenticate": 'Basic realm="Git LFS"' });
      return true;
    }
    if (!access.exists(p, s) || !access.canRead(p, s)) {
      sendLfs(res, 404, { message: `Repository ${p}/${s} does not exist or you may not read it` });
      return true;
    }
    return false;
  }

  async function batch(req: IncomingMessage, res: ServerResponse, p: string, s: string): Promise<void> {
    const accept = req.headers.accept ?? "";
    if (!accept.includes(LFS_MEDIA_TYPE)) return sendLfs(res, 406, { message: `Accept must be ${LFS_MEDIA_TYPE}` });
    let parsed: ReturnType<typeof parseBatchRequest>;
    try {
      parsed = parseBatchRequest(await readJson(req));
    } catch (e) {
      return sendLfs(res, 400, { message: (e as Error).message });
    }
    if (typeof parsed === "string") return sendLfs(res, 422, { message: parsed });
    batches[parsed.operation]++;
    const header = req.headers.authorization ? { Authorization: req.headers.authorization } : undefined;
    const action = (href: string) => ({ href, ...(header ? { header } : {}), expires_in: 3600 });
    const objects = parsed.objects.map(({ oid, size }) => {
      if (!OID_RE.test(oid)) return { oid, size, error: { code: 422, message: "oid must be 64 lowercase hex digits (SHA-256)" } };
      const have = sizeOf(p, s, oid);
      if (parsed.operation === "download") {
        if (have === undefined) return { oid, size, error: { code: 404, message: "Object does not exist" } };
        return { oid, size: have, authenticated: true, actions: { download: action(storageHref(req, p, s, oid)) } };
      }
      if (have !== undefined) return { oid, size: have }; // already stored: no actions (batch.md)
      return { oid, size, authenticated: true, actions: { upload: action(storageHref(req, p, s, oid)), verify: action(`${storageHref(req, p, s, oid)}/verify`) } };
    });
    sendLfs(res, 200, { transfer: "basic", objects, hash_algo: "sha256" });
  }

  function download(res: ServerResponse, p: string, s: string, oid: string): void {
    const file = objectPath(p, s, oid);
    const size = sizeOf(p, s, oid);
    if (size === undefined) return sendLfs(res, 404, { message: "Object does not exist" });
    counts.set(oid, (counts.get(oid) ?? 0) + 1);
    res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": size });
    const body = fs.createReadStream(file);
    if (oid === corrupt) {
      let first = true;
      body.on("data", (c: string | Buffer) => {
        if (first && Buffer.isBuffer(c) && c.length > 0) c[0] ^= 0xff;
        first = false;
      });
    }
    body.pipe(res);
    body.on("error", () => res.destroy());
  }

  /** Hash into a temp file; rename into place only when the oid (and size, if known) match. */
  async function store(input: Readable, p: string, s: string, size: number | undefined): Promise<LfsObject> {
    const t = path.join(tmp, randomBytes(8).toString("hex"));
    const hash = createHash("sha256");
    let n = 0;
    try {
      await pipeline(
        input,
        async function* (src: AsyncIterable<Buffer>) {
          for await (const c of src) {
            hash.update(c);
            n += c.length;
            yield c;
          }
        },
        fs.createWriteStream(t),
      );
      const oid = hash.digest("hex");
      if (size !== undefined && n !== size) throw new Error(`expected ${size} bytes, got ${n}`);
      fs.mkdirSync(path.join(o.dir, p, s), { recursive: true });
      fs.renameSync(t, objectPath(p, s, oid));
      return { oid, size: n };
    } finally {
      fs.rmSync(t, { force: true });
    }
  }

  async function upload(req: IncomingMessage, res: ServerResponse, p: string, s: string, oid: string): Promise<void> {
    const length = req.headers["content-length"] === undefined ? undefined : Number(req.headers["content-length"]);
    try {
      const got = await store(req, p, s, length);
      if (got.oid !== oid) {
        fs.rmSync(objectPath(p, s, got.oid), { force: true });
        return sendLfs(res, 422, { message: `content hashes to ${got.oid}, not ${oid}` });
      }
      res.writeHead(200).end();
    } catch (e) {
      sendLfs(res, 422, { message: (e as Error).message });
    }
  }

  async function verify(req: IncomingMessage, res: ServerResponse, p: string, s: string, oid: string): Promise<void> {
    let body: { oid?: unknown; size?: unknown };
    try {
      body = (await readJson(req)) as typeof body;
    } catch (e) {
      return sendLfs(res, 400, { message: (e as Error).message });
    }
    const have = sizeOf(p, s, oid);
    if (body.oid !== oid || have === undefined || have !== body.size) return sendLfs(res, 404, { message: "Object does not exist" });
    sendLfs(res, 200, {});
  }

  const mount: DoubleMount = async (req, res, access) => {
    const target = (req.url ?? "/").split("?")[0];
    const method = (req.method ?? "GET").toUpperCase();
    const b = BATCH_RE.exec(target);
    const st = b ? undefined : STORAGE_RE.exec(target);
    if (!b && !st) return false;
    if (down) {
      sendLfs(res, 503, { message: "Git LFS is unavailable (simulated outage)" }, { "Retry-After": "1" });
      return true;
    }
    const [, p, s] = (b ?? st) as RegExpExecArray;
    // Public repositories are open to anonymous reads (batch, GET); uploads (PUT, verify) and locks need a user.
    const write = method === "PUT" || st?.[4] !== undefined || (b !== null && b[3] !== "objects/batch");
    if (refusal(res, access, p, s, write)) return true;
    if (b) {
      const what = b[3];
      if (what === "objects/batch" && method === "POST") await batch(req, res, p, s);
      else if (what === "locks" && method === "GET") sendLfs(res, 200, { locks: [] });
      else if (what === "locks/verify" && method === "POST") sendLfs(res, 200, { ours: [], theirs: [] });
      else sendLfs(res, 405, { message: `${method} is not supported on ${what}` });
      return true;
    }
    const [, , , oid, isVerify] = st as RegExpExecArray;
    if (isVerify && method === "POST") await verify(req, res, p, s, oid);
    else if (!isVerify && method === "GET") download(res, p, s, oid);
    else if (!isVerify && method === "PUT") await upload(req, res, p, s, oid);
    else sendLfs(res, 405, { message: `${method} is not supported here` });
    return true;
  };

  return {
    mount,
    batches,
    addObject(p, s, content) {
      const oid = lfsOid(content);
      fs.mkdirSync(path.join(o.dir, p, s), { recursive: true });
      fs.writeFileSync(objectPath(p, s, oid), content);
      return { oid, size: content.length };
    },
    addObjectFile: (p, s, file) => store(fs.createReadStream(file), p, s, undefined),
    has: (p, s, oid) => sizeOf(p, s, oid) !== undefined,
    downloads: (oid) => counts.get(oid) ?? 0,
    setDown(d) {
      down = d;
    },
    setCorrupt(oid) {
      corrupt = oid;
    },
  };
}
