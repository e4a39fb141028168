/**
 * The validated configuration -> what the daemon, the Git routes and access control run with:
 * the one place where config becomes runtime options. Pure except for reading the secret
 * files the config points at (injectable; their contents never reach a log). main.ts wires
 * the result; nothing else reads MirrorConfig for these parts.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import type { MirrorConfig } from "./config";
import type { AuthConfig } from "./auth/fromConfig";
import { DaemonSettings, DEFAULT_SCAN, RETRY_BASE_MS } from "./daemon/settings";
import type { GitServeOptions } from "./serve/git";
import type { ListenAddress } from "./listenAddress";
import { homePath } from "./homeLayout";

/** The Git routes' options that come from the configuration (access control and the primary's URL: `auth`; the rest is wiring). */
export type ServeSettings = Pick<GitServeOptions, "bodyIdleMs" | "maxPerClient" | "transferLimits"> & {
  /** One budget for request bodies held in memory, shared by the Git routes and the webhook. */
  bodyBudgetBytes: number;
  /** The pack cache without its disk check (main.ts adds the daemon's diskOk); undefined = off. */
  packCache?: Omit<NonNullable<GitServeOptions["packCache"]>, "diskOk">;
  /** On-demand fetches and fresh advertisements, without the link to the daemon (main.ts adds it). */
  freshness: Omit<NonNullable<GitServeOptions["freshness"]>, "link">;
  /** mirror.push=proxy: where pushes go, trusted how, waited for how long (main.ts adds the daemon's sync); undefined = refuse. */
  push?: Omit<NonNullable<GitServeOptions["push"]>, "syncNow">;
};

export interface RuntimeOptions {
  log: { level: MirrorConfig["log"]["level"] };
  daemon: DaemonSettings;
  serve: ServeSettings;
  auth: AuthConfig;
  /** The webhook's HMAC secret; undefined = the endpoint is disabled. */
  webhookSecret?: string;
  /** The parsed address, handed to listen() as is (no second parse of a string). */
  listen: ListenAddress;
  /** The status board: when a repository behind the primary joins the delayed-sync list. */
  status: { delayedAfterMs: number };
  /** Draining before a stop (serve/drain.ts). */
  drain: { timeoutMs: number; quietPeriodMs: number };
  /** The synced event out (sync/events); undefined = none. */
  events?: EventsSettings;
  /** /metrics extras: the served certificate whose expiry is exported; undefined = none. */
  metrics: { tlsCertificateFile?: string };
  /** Git LFS through the mirror; undefined = off (mirror.lfs.enabled=false). */
  lfs?: LfsSettings;
  /** Farm mode (sync/farm); undefined = a single node. */
  farm?: FarmSettings;
}

/** Farm mode from mirror.farm.*: the token and CA read from their files (never logged). */
export interface FarmSettings {
  peersFile: string;
  token: string;
  serverName: string;
  /** The CA bundle (mirror.farm.caCertificatesFile): its text for the daemon's requests, its path for git's. */
  caPem?: string;
  caFile?: string;
  nodeId: string;
  /** mirror.serve.onDemandWait: the bound on an advertisement's catch-up (0 = no wait). */
  catchUpWaitMs: number;
}

export function farmSettings(c: MirrorConfig, read: ReadFile = readUtf8, hostname: () => string = os.hostname): FarmSettings | undefined {
  const f = c.farm;
  if (!f) return undefined;
  return {
    peersFile: f.peersFile,
    token: read(f.tokenFile).trim(),
    serverName: f.serverName,
    caPem: f.caFile ? read(f.caFile) : undefined,
    caFile: f.caFile,
    nodeId: f.nodeId ?? hostname(),
    catchUpWaitMs: c.serve.onDemandWaitMs,
  };
}

/** The LFS routes' options from the configuration (main.ts adds the resolver and authorizer). */
export interface LfsSettings {
  storeDir: string;
  incomingDir: string;
  /** 0 = no limit. */
  maxObjectBytes: number;
  /** mirror.disk.minFreeMb: new objects are refused below it. */
  minFreeBytes: number;
  baseUrl: string;
  primaryUrl: string;
  caPem?: string;
  /** The catalog token: the mirror's own upstream credentials when clients' are not the primary's. */
  serviceToken?: string;
  /** mirror.lfs.prefetch. */
  prefetch: boolean;
}

/** The synced event's receivers and delivery bounds, the secret read from its file. */
export interface EventsSettings {
  urls: string[];
  secret: string;
  queueSize: number;
  maxAttempts: number;
  timeoutMs: number;
  /** Who sends: mirrorServer {id, name} in the payload, and the clone URL base. */
  mirror: { id: string; name: string; baseUrl: string };
}

export type ReadFile = (file: string) => string;
const readUtf8: ReadFile = (f) => fs.readFileSync(f, "utf8");

export function runtimeOptions(c: MirrorConfig, read: ReadFile = readUtf8): RuntimeOptions {
  return {
    log: { level: c.log.level },
    daemon: daemonSettings(c, read),
    serve: serveSettings(c, read),
    auth: { serve: c.serve, upstream: c.upstream },
    webhookSecret: c.webhook.secretFile ? read(c.webhook.secretFile).trim() : undefined,
    listen: c.serve.listen,
    status: { delayedAfterMs: c.status.delayedSyncToleranceMs },
    drain: { ...c.drain },
    events: eventsSettings(c, read),
    metrics: { tlsCertificateFile: c.metrics.tlsCertificateFile },
    lfs: lfsSettings(c, read),
    farm: farmSettings(c, read),
  };
}

export function lfsSettings(c: MirrorConfig, read: ReadFile = readUtf8): LfsSettings | undefined {
  if (!c.lfs.enabled) return undefined;
  return {
    storeDir: homePath(c.home, "lfsObjects"),
    incomingDir: homePath(c.home, "lfsIncoming"),
    maxObjectBytes: c.lfs.maxObjectBytes,
    minFreeBytes: c.disk.minFreeBytes,
    baseUrl: c.setup.baseUrl,
    primaryUrl: c.upstream.url,
    caPem: c.upstream.caFile ? read(c.upstream.caFile) : undefined,
    serviceToken: c.upstream.tokenFile ? read(c.upstream.tokenFile).trim() : undefined,
    prefetch: c.lfs.prefetch,
  };
}

export function eventsSettings(c: MirrorConfig, read: ReadFile = readUtf8): EventsSettings | undefined {
  const e = c.events;
  if (!e) return undefined;
  return {
    urls: e.urls,
    secret: read(e.secretFile).trim(),
    queueSize: e.queueSize,
    maxAttempts: e.maxAttempts,
    timeoutMs: e.timeoutMs,
    // Bitbucket's mirrorServer id is the mirror's server id; ours is its host name (stable, and readable).
    mirror: { id: new URL(c.setup.baseUrl).host, name: c.setup.displayName, baseUrl: c.setup.baseUrl },
  };
}

export function daemonSettings(c: MirrorConfig, read: ReadFile = readUtf8): DaemonSettings {
  return {
    home: c.home,
    upstream: {
      host: c.upstream.ssh.host,
      port: c.upstream.ssh.port,
      user: c.upstream.ssh.user,
      keyFile: c.upstream.keyFile,
      pinned: c.upstream.hostKeys.map((k) => ({ type: k.type, base64: k.base64 })),
    },
    catalog:
      c.catalog.kind === "static"
        ? { kind: "static", repos: c.catalog.repos }
        : {
            kind: "rest",
            baseUrl: c.upstream.url,
            token: c.upstream.tokenFile ? read(c.upstream.tokenFile).trim() : undefined,
            ca: c.upstream.caFile ? read(c.upstream.caFile) : undefined,
          },
    projects: c.projects,
    intervalMs: c.sync.reconcileIntervalMs,
    concurrency: c.sync.concurrency,
    timeoutMs: c.sync.timeoutMs,
    firstCloneStepBytes: c.sync.firstCloneStepBytes,
    excludeRefs: c.sync.excludeRefs,
    backoff: { baseMs: RETRY_BASE_MS, maxMs: c.sync.retryMaxMs },
    purge: c.purge,
    maintenance: c.maintenance,
    scanBudget: c.sync.scan,
    scanParallelism: DEFAULT_SCAN.parallelism,
    scanConnections: DEFAULT_SCAN.connections,
    disk: c.disk,
    // The synced event and the LFS prefetch read each fetch's ref changes; without them nobody pays for them.
    trackRefChanges: c.events !== undefined || (c.lfs.enabled && c.lfs.prefetch),
  };
}

export function serveSettings(c: MirrorConfig, read: ReadFile = readUtf8): ServeSettings {
  const s = c.serve;
  return {
    bodyBudgetBytes: s.bodyBudgetBytes,
    bodyIdleMs: s.bodyTimeoutMs,
    // Identical requests share one upload-pack run (mirror.serve.packCacheMb, packCacheScope).
    packCache: s.packCacheBytes > 0 ? { dir: homePath(c.home, "packCache"), maxBytes: s.packCacheBytes, scope: s.packCacheScope } : undefined,
    // 0 = auto: slots.ts keeps a quarter of the slots away from any one client.
    maxPerClient: s.uploadPacksPerClient > 0 ? s.uploadPacksPerClient : undefined,
    transferLimits: { minBytesPerSec: s.minTransferBytesPerSec, windowMs: s.lowSpeedTimeMs, maxTransferMs: s.maxTransferMs },
    freshness: { waitMs: s.onDemandWaitMs, advertisement: s.freshness },
    // Read-your-writes waits as long as a clone may wait for the primary (mirror.serve.onDemandWait).
    push: s.push === "proxy" ? { upstreamUrl: c.upstream.url, caPem: c.upstream.caFile ? read(c.upstream.caFile) : undefined, waitMs: s.onDemandWaitMs } : undefined,
  };
}
