/**
 * What the mirror relays to the primary with the client's own credentials (auth=primary only;
 * in other modes the client's credentials are not the primary's, and the mirror never writes
 * with its own): object uploads (PUT, streamed, never held), their verify calls, and the
 * locking API (git-lfs asks /locks/verify before every push). The primary's answer - status,
 * and for JSON its bounded body - goes back as is, so git-lfs sees the primary's decisions.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { ActionCache } from "./actionCache";
import { LfsAdmitted, LfsDeps, lfsError, readClientBody } from "./lfsContext";
import { LFS_MEDIA_TYPE } from "./lfsPath";
import { readSmall, upstreamLfsUrl } from "./upstreamLfs";

const MAX_JSON = 1024 * 1024;

function refuseWrites(d: LfsDeps, res: ServerResponse, requestId: string): boolean {
  if (d.relayWrites) return false;
  lfsError(res, requestId, 403, `this mirror relays LFS writes only with mirror.serve.auth=primary: push LFS objects to the primary (${d.primaryUrl})`);
  return true;
}

/** Relay the primary's answer: status, content type, and the body (bounded; streamed as read). */
async function answer(d: LfsDeps, res: ServerResponse, kind: "upload" | "verify" | "locks", up: IncomingMessage): Promise<void> {
  const status = up.statusCode ?? 502;
  d.metrics.relay(kind, status);
  const body = await readSmall(up, MAX_JSON);
  const headers: Record<string, string | number> = { "Content-Length": body.length, "Cache-Control": "no-store" };
  const type = up.headers["content-type"];
  if (typeof type === "string") headers["Content-Type"] = type;
  const lfsAuth = up.headers["lfs-authenticate"];
  if (status === 401 && typeof lfsAuth === "string") headers["LFS-Authenticate"] = lfsAuth;
  res.writeHead(status, headers);
  res.end(body);
}

function unreachable(res: ServerResponse, requestId: string, e: unknown): void {
  lfsError(res, requestId, 502, `cannot reach the primary's LFS endpoint (${(e as Error).message}); try again later`);
}

/** PUT .../objects/<oid>: the bytes streamed to the primary's upload href. */
export async function relayUpload(d: LfsDeps, cache: ActionCache, req: IncomingMessage, res: ServerResponse, requestId: string, a: LfsAdmitted, oid: string): Promise<void> {
  if (refuseWrites(d, res, requestId)) return;
  const length = Number(req.headers["content-length"]);
  if (!Number.isSafeInteger(length) || length < 0) return lfsError(res, requestId, 411, "an LFS upload needs a Content-Length");
  try {
    let u = cache.get(a.creds, a.repo, "upload", oid);
    if (!u) {
      // No batch through the mirror before (or it expired): ask the primary for this object now.
      const r = await d.upstream.batch(a.repo, "upload", [{ oid, size: length }], a.creds);
      if (!r.ok) return lfsError(res, requestId, r.status, r.message);
      u = r.objects.find((o) => o.oid === oid);
    }
    const action = u?.actions?.upload;
    if (!action) {
      req.resume(); // the primary has it already (batch.md: no actions)
      d.metrics.relay("upload", 200);
      return void res.writeHead(200, { "Content-Length": 0 }).end();
    }
    const up = await d.upstream.request("PUT", action.href, { ...d.upstream.actionHeaders(action, a.creds), "Content-Type": "application/octet-stream", "Content-Length": length }, req);
    await answer(d, res, "upload", up);
  } catch (e) {
    unreachable(res, requestId, e);
  }
}

/** POST .../objects/<oid>/verify: the primary's verify action, or (none remembered) a batch that shows it has the object. */
export async function relayVerify(d: LfsDeps, cache: ActionCache, req: IncomingMessage, res: ServerResponse, requestId: string, a: LfsAdmitted, oid: string): Promise<void> {
  if (refuseWrites(d, res, requestId)) return;
  const body = await readClientBody(d, req, res, requestId, MAX_JSON);
  if (!body) return;
  let size: number;
  try {
    size = (JSON.parse(body.toString("utf8")) as { size: number }).size;
  } catch {
    return lfsError(res, requestId, 400, "the verify request is not valid JSON");
  }
  try {
    const action = cache.get(a.creds, a.repo, "upload", oid)?.actions?.verify;
    if (action) {
      const up = await d.upstream.request("POST", action.href, { ...d.upstream.actionHeaders(action, a.creds), Accept: LFS_MEDIA_TYPE, "Content-Type": LFS_MEDIA_TYPE, "Content-Length": body.length }, body);
      return await answer(d, res, "verify", up);
    }
    const r = await d.upstream.batch(a.repo, "upload", [{ oid, size: Number.isSafeInteger(size) ? size : 0 }], a.creds);
    if (!r.ok) return lfsError(res, requestId, r.status, r.message);
    const has = r.objects.some((o) => o.oid === oid && !o.actions && !o.error);
    d.metrics.relay("verify", has ? 200 : 404);
    return has ? void res.writeHead(200, { "Content-Length": 0 }).end() : lfsError(res, requestId, 404, "the primary does not have the object");
  } catch (e) {
    unreachable(res, requestId, e);
  }
}

/** .../info/lfs/locks[/...]: the locking API, relayed (locks live on the primary, never on a mirror). */
export async function relayLocks(d: LfsDeps, req: IncomingMessage, res: ServerResponse, requestId: string, a: LfsAdmitted, rest: string, query: string): Promise<void> {
  if (refuseWrites(d, res, requestId)) return;
  if (!/^locks(?:\/verify|\/[A-Za-z0-9._-]{1,128}\/unlock)?$/.test(rest)) return lfsError(res, requestId, 404, "not a Git LFS locking endpoint");
  const method = (req.method ?? "GET").toUpperCase();
  if (!["GET", "POST"].includes(method)) return lfsError(res, requestId, 405, `${method} is not allowed here`, { Allow: "GET, POST" });
  let body: Buffer | undefined;
  if (method === "POST") {
    body = await readClientBody(d, req, res, requestId, MAX_JSON);
    if (!body) return;
  }
  try {
    const headers: Record<string, string | number> = { Accept: LFS_MEDIA_TYPE };
    if (body) Object.assign(headers, { "Content-Type": LFS_MEDIA_TYPE, "Content-Length": body.length });
    const creds = d.upstream.actionHeaders({ href: upstreamLfsUrl(d.primaryUrl, a.repo, rest) }, a.creds);
    const q = query ? `?${query}` : "";
    const up = await d.upstream.request(method, upstreamLfsUrl(d.primaryUrl, a.repo, rest) + q, { ...headers, ...creds }, body);
    await answer(d, res, "locks", up);
  } catch (e) {
    unreachable(res, requestId, e);
  }
}
