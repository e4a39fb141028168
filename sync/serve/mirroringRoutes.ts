/**
 * The consistency API, shaped like Bitbucket mirroring's REST resources:
 *
 *   GET  /rest/mirroring/latest/repo-hashes[?start=&limit=]   a page of {projectKey, slug,
 *        contentHash, metadataHash, ...} in key order, Bitbucket's paging fields around it
 *   GET  /rest/mirroring/latest/repo-hashes/PROJECT/slug      one repository's hashes
 *   POST /rest/mirroring/latest/repos/PROJECT/slug/synchronization
 *        sync it now, fetching even if the fingerprints agree; answers when that sync ended
 *
 * Internal only (internalOnly.ts; nginx does not proxy /rest/): a content hash tells whoever
 * reads it when a repository changed and that it exists, for private repositories too, and
 * the mirror has no per-repository permission check cheap enough for a page of thousands.
 * The consumers are on the host: `smart-mirror verify`, the operator, host monitoring.
 * Hashes are read from the copies on disk at request time (git for-each-ref), so they say
 * what is served now, not what the last sync recorded.
 */
import type { RepoHashes } from "../consistency/repoHashes";
import { forEachLimit } from "../daemon/forEachLimit";
import type { ResyncResult } from "../daemon/daemon";
import type { RepoKey } from "../types";
import type { RequestContext } from "./http";
import { cameThroughProxy } from "./internalOnly";
import { sendError, sendJson } from "./respond";
import type { Router } from "./router";
import { page, parsePage } from "./statusDocument";

export const REPO_HASHES_PATH = "/rest/mirroring/latest/repo-hashes";
export const REPOS_PATH = "/rest/mirroring/latest/repos";
/** Bitbucket's default page size; a page of the maximum costs one `git for-each-ref` per repository. */
export const DEFAULT_HASH_PAGE = 25;
export const MAX_HASH_PAGE = 1000;
/** Repositories read at once for a page (each read is one short git process). */
const READ_PARALLELISM = 4;

export interface MirroringSource {
  /** The repositories served now (in the catalog and on disk), in key order. */
  servedKeys(): RepoKey[];
  /** One served repository's hashes, undefined when it is not served. */
  hashes(key: RepoKey): Promise<RepoHashes | undefined>;
  /** See Daemon.resync; undefined when the repository is not in the catalog. */
  resync(key: RepoKey): Promise<ResyncResult> | undefined;
}

/** "PROJECT/slug" from the rest of a path, or undefined when it is not two plain segments. */
export function repoKeyFromPath(rest: string): RepoKey | undefined {
  const parts = rest.split("/");
  if (parts.length !== 2) return undefined;
  try {
    const [project, slug] = parts.map((p) => decodeURIComponent(p));
    return project !== "" && slug !== "" && !/[/\0]/.test(project + slug) ? `${project}/${slug}` : undefined;
  } catch {
    return undefined;
  }
}

function notFound(ctx: RequestContext): void {
  sendError(ctx, 404, "not_found", `no such resource: ${ctx.path}`);
}

export function addMirroringRoutes(router: Router, src: MirroringSource): Router {
  router.route(REPO_HASHES_PATH, {
    GET: async (ctx) => {
      if (cameThroughProxy(ctx.req)) return notFound(ctx);
      const q = parsePage(ctx.query, DEFAULT_HASH_PAGE, MAX_HASH_PAGE);
      if ("error" in q) return sendError(ctx, 400, "bad_request", q.error);
      const keys = src.servedKeys();
      const slice = keys.slice(q.start, q.start + q.limit);
      const values: Array<RepoHashes | undefined> = new Array(slice.length);
      await forEachLimit(
        slice.map((k, i) => [k, i] as const),
        READ_PARALLELISM,
        async ([k, i]) => {
          values[i] = await src.hashes(k);
        },
      );
      // A repository removed between listing and reading is left out of this page.
      sendJson(ctx, 200, page(values.filter((v): v is RepoHashes => v !== undefined), keys.length, q.start, q.limit));
    },
  });
  router.mount(`${REPO_HASHES_PATH}/`, async (ctx) => {
    if (cameThroughProxy(ctx.req)) return notFound(ctx);
    if ((ctx.req.method ?? "GET") !== "GET" && ctx.req.method !== "HEAD") return sendError(ctx, 405, "method_not_allowed", `${ctx.req.method} is not allowed on ${ctx.path}`, { Allow: "GET, HEAD" });
    const key = repoKeyFromPath(ctx.path.slice(REPO_HASHES_PATH.length + 1));
    const h = key === undefined ? undefined : await src.hashes(key);
    if (!h) return notFound(ctx);
    sendJson(ctx, 200, h);
  });
  router.mount(`${REPOS_PATH}/`, async (ctx) => {
    if (cameThroughProxy(ctx.req)) return notFound(ctx);
    const m = /^(.*)\/synchronization$/.exec(ctx.path.slice(REPOS_PATH.length + 1));
    const key = m ? repoKeyFromPath(m[1]) : undefined;
    if (key === undefined) return notFound(ctx);
    if (ctx.req.method !== "POST") return sendError(ctx, 405, "method_not_allowed", `${ctx.req.method} is not allowed on ${ctx.path}`, { Allow: "POST" });
    const done = src.resync(key);
    if (!done) return notFound(ctx);
    const r = await done;
    sendJson(ctx, r.ok ? 200 : 502, { repository: key, synced: r.ok, ...(r.error !== undefined ? { error: r.error } : {}) });
  });
  return router;
}
