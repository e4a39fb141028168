/**
 * Git LFS through the mirror (issue 16): `mountLfsRoutes(router, opts)` takes
 * /scm/PROJECT/repo.git/info/lfs/... from the Git routes (the URL git-lfs derives from a clone
 * URL), with the clones' authorizer.
 *
 *   batch     batch.ts    downloads point at the mirror; misses asked of the primary
 *   objects   objects.ts  GET from the store, or fetched once from the primary (single flight)
 *   uploads   relay.ts    PUT/verify/locks relayed to the primary with the client's credentials
 *   prefetch  prefetch.ts objects of newly synced commits fetched ahead (mirror.lfs.prefetch)
 *
 * Every request passes the same admission as a clone (lfsContext.ts admitLfs) before anything
 * else is done; the only client input that reaches a file name is a validated oid.
 */
import { Registry } from "prom-client";
import type { BodyBudget } from "../bodyBudget";
import type { Authorizer } from "../../auth/authorizer";
import type { Credentials } from "../../auth/credentials";
import type { RepoResolver } from "../git/resolver";
import { Handler, Log, silentLog } from "../http";
import type { Router } from "../router";
import { ActionCache } from "./actionCache";
import { handleBatch } from "./batch";
import { admitLfs, LfsDeps, lfsError } from "./lfsContext";
import { LfsMetrics } from "./lfsMetrics";
import { isLfsTarget, parseLfsRequest } from "./lfsPath";
import { LfsStore } from "./lfsStore";
import { ObjectFetches } from "./objects";
import { LfsPrefetcher } from "./prefetch";
import { relayLocks, relayUpload, relayVerify } from "./relay";
import { UpstreamLfs } from "./upstreamLfs";

export { LFS_METRIC_NAMES } from "./lfsMetrics";

export interface LfsServeOptions {
  resolve: RepoResolver;
  authorizer: Authorizer;
  /** The primary's https base URL and its CA (mirror.upstream.caFile's content). */
  primaryUrl: string;
  caPem?: string;
  /** setup.baseUrl: hrefs use it when no proxy headers name the mirror. */
  baseUrl: string;
  /** The store (homeLayout lfsObjects) and its temp directory (lfsIncoming), on one file system. */
  storeDir: string;
  incomingDir: string;
  /** 0 = no limit. */
  maxObjectBytes: number;
  diskRoom(bytes: number): boolean;
  /** Used upstream when the client's credentials are not the primary's (auth tokens/anonymous), and for prefetches. */
  serviceToken?: string;
  /** mirror.lfs.prefetch: fetch the LFS objects of newly synced commits ahead of requests. */
  prefetch?: boolean;
  /** The daemon-wide budget for request bodies held in memory, and their idle timeout (mirror.serve.bodyBudgetMb, bodyTimeout). */
  bodyBudget?: BodyBudget;
  bodyIdleMs?: number;
  registry?: Registry;
  log?: Log;
}

export interface LfsRoutes {
  readonly store: LfsStore;
  readonly metrics: LfsMetrics;
  /** With prefetch on: hand it each sync's ref moves (the daemon's onSynced). */
  readonly prefetcher?: LfsPrefetcher;
  close(): void;
}

export function lfsHandler(d: LfsDeps, cache: ActionCache, fetches: ObjectFetches): Handler {
  return async (ctx) => {
    const { req, res, requestId } = ctx;
    const method = (req.method ?? "GET").toUpperCase();
    const parsed = parseLfsRequest(method, req.url ?? "/");
    if (!parsed.ok) return lfsError(res, requestId, parsed.status, parsed.message, parsed.allow ? { Allow: parsed.allow } : {});
    const a = await admitLfs(d, req, res, requestId, parsed.repo);
    if (!a || res.destroyed) return;
    switch (parsed.kind) {
      case "batch":
        return handleBatch(d, cache, (oid) => fetches.fetching(oid), req, res, requestId, a);
      case "object":
        if (method === "PUT") return relayUpload(d, cache, req, res, requestId, a, parsed.oid);
        return fetches.serve(res, requestId, a, parsed.oid, method === "HEAD");
      case "verify":
        return relayVerify(d, cache, req, res, requestId, a, parsed.oid);
      case "locks":
        return relayLocks(d, req, res, requestId, a, parsed.rest, ctx.query.toString());
    }
  };
}

export function mountLfsRoutes(router: Router, o: LfsServeOptions): LfsRoutes {
  const store = new LfsStore(o.storeDir, o.incomingDir);
  const metrics = new LfsMetrics(o.registry ?? new Registry());
  const upstream = new UpstreamLfs({ baseUrl: o.primaryUrl, caPem: o.caPem });
  const primaryMode = o.authorizer.mode === "primary";
  const service: Credentials | undefined = o.serviceToken ? { scheme: "bearer", token: o.serviceToken } : undefined;
  const d: LfsDeps = {
    resolve: o.resolve,
    authorizer: o.authorizer,
    store,
    upstream,
    metrics,
    log: o.log ?? silentLog,
    primaryUrl: o.primaryUrl,
    baseUrl: o.baseUrl,
    maxObjectBytes: o.maxObjectBytes,
    diskRoom: o.diskRoom,
    upstreamCredentials: (client) => (primaryMode ? client : service),
    serviceCredentials: service,
    relayWrites: primaryMode,
    bodyBudget: o.bodyBudget,
    bodyIdleMs: o.bodyIdleMs,
  };
  const cache = new ActionCache();
  const fetches = new ObjectFetches(d, cache);
  router.mount("/scm/", lfsHandler(d, cache, fetches), isLfsTarget);
  const prefetcher = o.prefetch ? new LfsPrefetcher(fetches, metrics, d.log) : undefined;
  return { store, metrics, prefetcher, close: () => upstream.close() };
}
