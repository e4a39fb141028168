/**
 * Git smart HTTP for the daemon's router: `mountGitRoutes(router, opts)` takes /scm/.
 *
 *     const router = new Router({ log });
 *     const git = mountGitRoutes(router, gitServeOptionsFromConfig(config, {
 *       resolve: catalogResolver((key) => (daemon.isServed(key) ? daemon.repoDir(key) : undefined)),
 *       registry: board.metrics.registry,
 *       log,
 *     }));
 *     const server = createServer({ board, log, router, webhook });
 *     ...
 *     git.close();   // on stop
 */
import * as os from "node:os";
import { Registry } from "prom-client";
import type { Authorizer } from "../../auth/authorizer";
import { AuthConfig, authorizerFromConfig } from "../../auth/fromConfig";
import type { PackCacheScope } from "../../config/schema";
import { Log, silentLog } from "../http";
import type { Router } from "../router";
import { gitHandler } from "./gitHandler";
import { Freshness, FreshnessMode, PrimaryLink } from "./freshness";
import { GitMetrics } from "./gitMetrics";
import { GIT_PREFIX } from "./gitPath";
import { PackCache } from "./packCache";
import type { RepoResolver } from "./resolver";
import { Slots } from "./slots";
import { DEFAULT_TRANSFER_LIMITS, TransferLimits } from "./transferGuard";
import { BodyBudget, DEFAULT_BODY_BUDGET_BYTES, DEFAULT_BODY_IDLE_MS } from "../bodyBudget";
import { PushProxy, PushProxyOptions } from "../push/pushProxy";

export { catalogResolver } from "./resolver";
export type { RepoResolver, ServedRepo } from "./resolver";
export { GIT_METRIC_NAMES } from "./gitMetrics";
export type { FreshnessMode, PrimaryLink } from "./freshness";

export interface GitServeOptions {
  /** (project, slug) -> the served repository, or undefined (not in the catalog, or not on disk yet). */
  resolve: RepoResolver;
  /**
   * Who may clone. A function is handed the routes' GitMetrics, so the authorizer's primary
   * checks are counted by the one metrics instance of the routes (gitServeOptionsFromConfig).
   */
  authorizer: Authorizer | ((metrics: GitMetrics) => Authorizer);
  /** The primary's https base URL: push refusals tell users to push there. */
  primaryUrl: string;
  /** Where the metrics go (board.metrics.registry); default: a registry of their own. */
  registry?: Registry;
  log?: Log;
  /** Concurrent git upload-pack processes (default max(4, 2 × CPUs): with bitmaps, serving is mostly I/O). */
  maxConcurrent?: number;
  /**
   * Requests that may wait for a slot (default 512), each at most queueWaitMs (default 120 s),
   * in the spirit of Bitbucket's hosting tickets (which queue clones for up to 5 minutes): a
   * burst of CI clones waits its turn instead of failing. A proxy in front must wait at least as
   * long for the first byte (nginx proxy_read_timeout).
   */
  maxQueue?: number;
  queueWaitMs?: number;
  /** Largest upload-pack request body after gzip decoding (default 64 MiB: wants/haves of huge repos). */
  maxRequestBytes?: number;
  /** Cut a transfer whose socket was idle this long (default 10 min; git sends keepalives meanwhile). */
  idleTimeoutMs?: number;
  gitBinary?: string;
  /** Base environment for git (default process.env); GIT_* variables are always removed. */
  gitEnv?: NodeJS.ProcessEnv;
  /**
   * Share one upload-pack run between identical requests (packCache.ts): responses are kept in
   * `dir` (emptied at start), at most maxBytes, each for at most maxAgeMs; scope "clones"
   * (default) keeps ref advertisements, ls-refs and clones, "all" incremental fetches too.
   * Default: off.
   */
  packCache?: { dir: string; maxBytes: number; maxAgeMs?: number; scope?: PackCacheScope; diskOk?: () => boolean };
  /** The daemon-wide request-body budget (share one with createServer); default a 64 MiB one of its own. */
  bodyBudget?: BodyBudget;
  /** A request body idle this long is answered 408 (default 30 s). */
  bodyIdleMs?: number;
  /** Upload-pack slots one client address may hold (default: all but a quarter, see slots.ts). */
  maxPerClient?: number;
  /** Minimum transfer rate while others wait, and total time, of a transfer holding a slot (default DEFAULT_TRANSFER_LIMITS). */
  transferLimits?: TransferLimits;
  /**
   * Fresh by construction (freshness.ts): with a link to the daemon, wants the mirror lacks
   * are fetched on demand, and (advertisement "always") advertisements wait until the refs
   * are the primary's; each request waits at most waitMs (0: off). Default: off (a server
   * without a daemon, as in tests of serving alone).
   */
  freshness?: { link: PrimaryLink; waitMs: number; advertisement: FreshnessMode };
  /**
   * mirror.push=proxy: pushes are forwarded to the primary (push/pushProxy.ts) and answered once
   * the mirror fetched them (bounded by waitMs). Undefined: pushes are refused with the primary's URL.
   */
  push?: Omit<PushProxyOptions, "resolve" | "registry">;
}

/** How long a finished response is served from the pack cache (GitLab's default max_age). */
export const PACK_CACHE_MAX_AGE_MS = 5 * 60_000;

export interface GitRoutes {
  readonly slots: Slots;
  readonly metrics: GitMetrics;
  readonly packCache?: PackCache;
  /** Who may read what: shared with routes that must answer exactly as clones do (the long-poll). */
  readonly authorizer: Authorizer;
  /** Release the authorizer's connections to the primary; stop the pack cache's git runs. */
  close(): void;
}

export const DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024;

export function mountGitRoutes(router: Router, o: GitServeOptions): GitRoutes {
  const maxConcurrent = o.maxConcurrent ?? Math.max(4, 2 * os.cpus().length);
  const slots = new Slots({ max: maxConcurrent, maxQueue: o.maxQueue ?? 512, maxWaitMs: o.queueWaitMs ?? 120_000, maxPerClient: o.maxPerClient });
  const registry = o.registry ?? new Registry();
  const metrics = new GitMetrics(registry, () => ({ running: slots.running, waiting: slots.waiting, slots: slots.max }));
  const log = o.log ?? silentLog;
  const authorizer = typeof o.authorizer === "function" ? o.authorizer(metrics) : o.authorizer;
  const packCache = o.packCache ? new PackCache({ dir: o.packCache.dir, maxBytes: o.packCache.maxBytes, maxAgeMs: o.packCache.maxAgeMs ?? PACK_CACHE_MAX_AGE_MS, diskOk: o.packCache.diskOk, registry, log }) : undefined;
  const gitBinary = o.gitBinary ?? "git";
  // A plain copy, taken once: every read of process.env goes through a native interceptor,
  // and copying it per request cost ~0.8 ms of the event loop (a CPU profile's 4th entry).
  const gitEnv = { ...(o.gitEnv ?? process.env) };
  const f = o.freshness;
  const freshness = f && f.waitMs > 0 ? new Freshness({ link: f.link, waitMs: f.waitMs, advertisement: f.advertisement, primaryUrl: o.primaryUrl, check: { gitBinary, gitEnv }, registry, log }) : undefined;
  const push = o.push ? new PushProxy({ ...o.push, resolve: o.resolve, registry, idleTimeoutMs: o.push.idleTimeoutMs ?? o.idleTimeoutMs }) : undefined;
  router.mount(
    GIT_PREFIX,
    gitHandler({
      resolve: o.resolve,
      authorizer,
      primaryUrl: o.primaryUrl,
      slots,
      metrics,
      log,
      maxRequestBytes: o.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES,
      idleTimeoutMs: o.idleTimeoutMs ?? 10 * 60_000,
      gitBinary,
      gitEnv,
      freshness,
      push,
      packCache,
      packCacheScope: o.packCache?.scope ?? "clones",
      bodyBudget: o.bodyBudget ?? new BodyBudget(DEFAULT_BODY_BUDGET_BYTES, registry),
      bodyIdleMs: o.bodyIdleMs ?? DEFAULT_BODY_IDLE_MS,
      transferLimits: o.transferLimits ?? DEFAULT_TRANSFER_LIMITS,
    }),
  );
  return {
    slots,
    metrics,
    packCache,
    authorizer,
    close: () => {
      authorizer.close();
      packCache?.close();
      push?.close();
    },
  };
}

export interface FromConfigDeps {
  resolve: RepoResolver;
  registry?: Registry;
  log?: Log;
}

/** Options from the validated configuration (auth mode, tokens file, primary URL and CA). */
export function gitServeOptionsFromConfig(config: AuthConfig, deps: FromConfigDeps): GitServeOptions {
  const log = deps.log ?? silentLog;
  const authorizer = (metrics: GitMetrics) =>
    authorizerFromConfig(config, {
      warn: (message) => log.warn({}, message),
      onPrimaryCheck: (r, repo, principal) => {
        metrics.primaryCheck(r.verdict);
        if (r.verdict === "unavailable") log.warn({ repo: `${repo.project}/${repo.slug}`, principal, status: r.status, error: r.error }, "cannot check access with the primary");
      },
    });
  return { resolve: deps.resolve, authorizer, primaryUrl: config.upstream.url, registry: deps.registry, log };
}
