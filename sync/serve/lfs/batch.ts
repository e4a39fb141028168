/**
 * POST .../info/lfs/objects/batch: the mirror's answer to git-lfs.
 *
 * download: objects in the store get a download action pointing at the mirror itself; the
 * others are asked of the primary in one batch request with the client's credentials: what the
 * primary can serve gets the mirror's href too (its action is remembered for the transfer,
 * actionCache.ts), what it cannot keeps the primary's per-object error. With the primary's LFS
 * endpoint unreachable, stored objects are still served and the others get a 502 object error
 * naming the cause. Objects over mirror.lfs.maxObjectSizeMb get a 422 object error, and new
 * objects while the data volume is below mirror.disk.minFreeMb a 507 one.
 *
 * upload: relayed to the primary with the client's credentials (auth=primary only); upload and
 * verify actions are rewritten to the mirror's hrefs, which relay the bytes (relay.ts), so a
 * client needs only the mirror's URL, certificate and credentials, as for the batch itself.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { authorizationHeader } from "../../auth/credentials";
import type { RepoId } from "../../types";
import { ActionCache } from "./actionCache";
import { isValidOid, LFS_MEDIA_TYPE } from "./lfsPath";
import { LfsAdmitted, LfsDeps, lfsError, publicBase, readClientBody, sendLfs } from "./lfsContext";
import { LfsAction, LfsObjectAnswer } from "./upstreamLfs";

const MAX_BATCH_BODY = 4 * 1024 * 1024;
/** git-lfs sends at most 100 objects a batch (lfs.transfer.batchSize); far above that is abuse. */
const MAX_BATCH_OBJECTS = 1000;
const HREF_TTL_SECONDS = 3600;

/** Why a new object cannot be stored now (batch object error and transfer 507 alike). */
export const DISK_FULL = (primaryUrl: string) =>
  `the mirror's data volume is nearly full (mirror.disk.minFreeMb): it cannot store new LFS objects now; objects it has are still served. Fetch this one from the primary (${primaryUrl}), or free space on the mirror`;

export interface BatchRequest {
  operation: "download" | "upload";
  objects: { oid: string; size: number }[];
  /** The ref the objects belong to (batch.md "Ref Property"): the primary's branch permissions may depend on it. */
  ref?: { name: string };
}

/** The request body, checked (batch.md "Requests"); a string says what is wrong (422/400). Pure. */
export function parseBatch(body: unknown): BatchRequest | string {
  if (typeof body !== "object" || body === null) return "the body must be a JSON object";
  const b = body as { operation?: unknown; objects?: unknown; transfers?: unknown; hash_algo?: unknown; ref?: { name?: unknown } | null };
  if (b.operation !== "download" && b.operation !== "upload") return 'operation must be "download" or "upload"';
  if (b.transfers !== undefined && (!Array.isArray(b.transfers) || !b.transfers.includes("basic"))) return "this mirror supports the basic transfer adapter only";
  if (b.hash_algo !== undefined && b.hash_algo !== "sha256") return "this mirror supports hash_algo sha256 only";
  if (!Array.isArray(b.objects)) return "objects must be an array";
  if (b.objects.length > MAX_BATCH_OBJECTS) return `at most ${MAX_BATCH_OBJECTS} objects per batch`;
  const objects: BatchRequest["objects"] = [];
  for (const o of b.objects as unknown[]) {
    const x = o as { oid?: unknown; size?: unknown } | null;
    if (typeof x?.oid !== "string" || typeof x.size !== "number" || !Number.isSafeInteger(x.size) || x.size < 0) return "each object needs a string oid and a non-negative integer size";
    objects.push({ oid: x.oid, size: x.size });
  }
  const ref = typeof b.ref?.name === "string" && b.ref.name.length <= 1024 ? { name: b.ref.name } : undefined;
  return { operation: b.operation, objects, ...(ref ? { ref } : {}) };
}

/** The mirror's href for an object (pure). */
export function objectHref(base: string, repo: RepoId, oid: string, verify = false): string {
  return `${base}/scm/${repo.project}/${repo.slug}.git/info/lfs/objects/${oid}${verify ? "/verify" : ""}`;
}

export async function handleBatch(d: LfsDeps, cache: ActionCache, fetching: (oid: string) => boolean, req: IncomingMessage, res: ServerResponse, requestId: string, a: LfsAdmitted): Promise<void> {
  const accept = req.headers.accept ?? "";
  if (!accept.includes(LFS_MEDIA_TYPE) && !accept.includes("application/json")) return lfsError(res, requestId, 406, `Accept must be ${LFS_MEDIA_TYPE}`);
  const raw = await readClientBody(d, req, res, requestId, MAX_BATCH_BODY);
  if (!raw) return;
  let parsed: BatchRequest | string;
  try {
    parsed = parseBatch(JSON.parse(raw.toString("utf8")));
  } catch {
    return lfsError(res, requestId, 400, "the batch request is not valid JSON");
  }
  if (typeof parsed === "string") return lfsError(res, requestId, 422, parsed);
  d.metrics.batch(parsed.operation);
  const base = publicBase(req.headers, d.baseUrl);
  const header = a.creds ? { Authorization: authorizationHeader(a.creds) } : undefined;
  const action = (href: string): LfsAction => ({ href, ...(header ? { header } : {}), expires_in: HREF_TTL_SECONDS });
  const objects = parsed.operation === "download" ? await downloads(d, cache, fetching, a, parsed.objects, base, action) : await uploads(d, cache, a, parsed.objects, base, action, parsed.ref);
  if (!Array.isArray(objects)) return lfsError(res, requestId, objects.status, objects.message, objects.status === 401 ? { "LFS-Authenticate": 'Basic realm="smart-mirror"' } : {});
  sendLfs(res, 200, { transfer: "basic", objects, hash_algo: "sha256" });
}

type MakeAction = (href: string) => LfsAction;

async function downloads(d: LfsDeps, cache: ActionCache, fetching: (oid: string) => boolean, a: LfsAdmitted, wanted: BatchRequest["objects"], base: string, action: MakeAction): Promise<LfsObjectAnswer[]> {
  const out = new Map<string, LfsObjectAnswer>();
  const misses: BatchRequest["objects"] = [];
  for (const { oid, size } of wanted) {
    if (!isValidOid(oid)) out.set(oid, { oid, size, error: { code: 422, message: "oid must be 64 lowercase hex digits (SHA-256)" } });
    else if (d.maxObjectBytes > 0 && size > d.maxObjectBytes) out.set(oid, { oid, size, error: { code: 422, message: `object larger than this mirror's limit (mirror.lfs.maxObjectSizeMb); fetch it from the primary (${d.primaryUrl})` } });
    else {
      const have = d.store.size(oid) ?? (fetching(oid) ? size : undefined);
      if (have !== undefined) out.set(oid, { oid, size: have, authenticated: true, actions: { download: action(objectHref(base, a.repo, oid)) } });
      else misses.push({ oid, size });
    }
  }
  if (misses.length > 0) {
    const upstreamCreds = d.upstreamCredentials(a.creds);
    const miss = (oid: string, size: number, code: number, message: string) => out.set(oid, { oid, size, error: { code, message } });
    try {
      const r = await d.upstream.batch(a.repo, "download", misses, upstreamCreds);
      if (!r.ok) {
        d.log.warn({ repo: `${a.repo.project}/${a.repo.slug}`, status: r.status, message: r.message }, "the primary's LFS batch failed");
        for (const m of misses) miss(m.oid, m.size, r.status === 404 || r.status === 401 || r.status === 403 ? 404 : 502, `the mirror does not have this object and the primary's LFS endpoint answered ${r.status}: ${r.message}`);
      } else {
        const byOid = new Map(r.objects.map((o) => [o.oid, o]));
        for (const m of misses) {
          const u = byOid.get(m.oid);
          if (u?.actions?.download && Number.isSafeInteger(u.size)) {
            if (d.maxObjectBytes > 0 && u.size > d.maxObjectBytes) miss(m.oid, m.size, 422, "object larger than this mirror's limit (mirror.lfs.maxObjectSizeMb)");
            else if (!d.diskRoom(u.size)) miss(m.oid, m.size, 507, DISK_FULL(d.primaryUrl));
            else {
              cache.remember(upstreamCreds, a.repo, "download", u);
              out.set(m.oid, { oid: m.oid, size: u.size, authenticated: true, actions: { download: action(objectHref(base, a.repo, m.oid)) } });
            }
          } else miss(m.oid, m.size, u?.error?.code ?? 404, u?.error?.message ?? "Object does not exist on the primary");
        }
      }
    } catch (e) {
      d.log.warn({ repo: `${a.repo.project}/${a.repo.slug}`, error: (e as Error).message }, "the primary's LFS endpoint is unreachable");
      for (const m of misses) miss(m.oid, m.size, 502, `the mirror does not have this object yet and cannot reach the primary's LFS endpoint (${(e as Error).message})`);
    }
  }
  return wanted.map((w) => out.get(w.oid) as LfsObjectAnswer);
}

async function uploads(
  d: LfsDeps,
  cache: ActionCache,
  a: LfsAdmitted,
  wanted: BatchRequest["objects"],
  base: string,
  action: MakeAction,
  ref: BatchRequest["ref"],
): Promise<LfsObjectAnswer[] | { status: number; message: string }> {
  if (!d.relayWrites) return { status: 403, message: `this mirror is read-only for LFS with mirror.serve.auth=${d.authorizer.mode}: push LFS objects to the primary (${d.primaryUrl})` };
  let r;
  try {
    r = await d.upstream.batch(a.repo, "upload", wanted, a.creds, ref);
  } catch (e) {
    return { status: 502, message: `cannot reach the primary's LFS endpoint (${(e as Error).message}); try again later` };
  }
  if (!r.ok) return { status: [401, 403, 404, 422, 429].includes(r.status) ? r.status : 502, message: r.message };
  return r.objects.map((u) => {
    if (!u.actions?.upload || !isValidOid(u.oid)) return u.actions ? { oid: u.oid, size: u.size, ...(u.error ? { error: u.error } : {}) } : u;
    cache.remember(a.creds, a.repo, "upload", u);
    return {
      oid: u.oid,
      size: u.size,
      authenticated: true,
      actions: { upload: action(objectHref(base, a.repo, u.oid)), ...(u.actions.verify ? { verify: action(objectHref(base, a.repo, u.oid, true)) } : {}) },
    };
  });
}
