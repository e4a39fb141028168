/**
 * A whole mirror in this process, wired as sync/main.ts wires it: the daemon syncing from a
 * bench primary over SSH (optionally through a WAN latency proxy) and the Git routes serving
 * its copies with the freshness link to it (on-demand fetches, fresh advertisements), on a
 * loopback port, optionally behind the real nginx site. The link is counted, so tests can see
 * how often the primary was asked.
 *
 *     const m = await startFreshMirror(primary, [{ project: "PROJ", slug: "app" }], { nginx: true });
 *     await git(["clone", m.url("PROJ", "app"), dest], { env: m.gitEnv() });
 */
import * as path from "node:path";
import { anonymousAuthorizer } from "../sync/auth/authorizer";
import { catalogResolver, FreshnessMode, GitRoutes, mountGitRoutes, PrimaryLink } from "../sync/serve/git";
import { listen } from "../sync/serve/listen";
import { Router } from "../sync/serve/router";
import { createServer } from "../sync/serve/server";
import { RepoId, repoKey } from "../sync/types";
import { parsePinnedKeys } from "../sync/upstream/hostKeys";
import { collectingLog, LogLine } from "./gitServer";
import { InProcessMirror, startInProcessMirror } from "./inProcessMirror";
import { startTlsFront, mirrorCertificate } from "./mirrorBehindNginx";
import { makeMirrorHome } from "./mirrorHome";
import type { Primary } from "./primary";
import { GitEnv, isolatedGitEnv } from "./repos";
import { onCleanup, tempDir } from "./resources";

export interface FreshMirrorOptions {
  /** The primary's SSH as the mirror reaches it (a latency proxy); default the primary itself. */
  upstream?: { host: string; port: number };
  /** mirror.serve.onDemandWait in ms (default 5000; 0 = off). */
  waitMs?: number;
  /** mirror.serve.freshness (default "always"). */
  freshness?: FreshnessMode;
  /** Pack cache on (as in production) with this budget; default on, 64 MiB. 0 = off. */
  packCacheBytes?: number;
  /** Serve through the real nginx site with TLS (default: plain HTTP on loopback). */
  nginx?: boolean;
}

export interface LinkCounts {
  syncNow: number;
  refsBehind: number;
}

export interface FreshMirror {
  m: InProcessMirror;
  routes: GitRoutes;
  /** Times the serving side asked the daemon for a sync, and for a ref comparison. */
  counts: LinkCounts;
  logs: LogLine[];
  /** `<base>/scm/PROJECT/slug.git` */
  url(project: string, slug: string): string;
  /** Environment for git clients (TLS trust and name resolution when behind nginx). */
  gitEnv(extra?: GitEnv): GitEnv;
  repoDir(id: RepoId): string;
}

export async function startFreshMirror(primary: Primary, repos: RepoId[], o: FreshMirrorOptions = {}): Promise<FreshMirror> {
  const mh = await makeMirrorHome(primary);
  const m = await startInProcessMirror(
    primary,
    repos,
    o.upstream ? { upstream: { host: o.upstream.host, port: o.upstream.port, user: primary.user, keyFile: mh.keyFile, pinned: parsePinnedKeys(primary.hostKeyLine) } } : {},
    mh,
  );
  await m.daemon.idle();
  const counts: LinkCounts = { syncNow: 0, refsBehind: 0 };
  const link: PrimaryLink = {
    syncNow: (repo) => {
      counts.syncNow++;
      return m.daemon.syncNow(repoKey(repo));
    },
    refsBehind: (repo, signal) => {
      counts.refsBehind++;
      return m.daemon.refsBehind(repoKey(repo), signal);
    },
  };
  const logs: LogLine[] = [];
  const log = collectingLog(logs);
  const router = new Router({ log });
  const cacheBytes = o.packCacheBytes ?? 64 << 20;
  const routes = mountGitRoutes(router, {
    resolve: catalogResolver((key) => (m.daemon.isServed(key) ? m.daemon.repoDir(key) : undefined)),
    authorizer: anonymousAuthorizer(),
    primaryUrl: "https://primary.test",
    gitEnv: isolatedGitEnv() as NodeJS.ProcessEnv,
    registry: m.board.metrics.registry,
    log,
    packCache: cacheBytes > 0 ? { dir: path.join(tempDir("pack-cache"), "packs"), maxBytes: cacheBytes } : undefined,
    freshness: { link, waitMs: o.waitMs ?? 5000, advertisement: o.freshness ?? "always" },
  });
  const server = createServer({ board: m.board, router, log });
  const addr = await listen(server, "127.0.0.1:0");
  if (addr.kind !== "tcp") throw new Error("startFreshMirror: expected a TCP address");
  onCleanup(async () => {
    routes.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  let base = `http://127.0.0.1:${addr.port}`;
  let gitEnv = (extra: GitEnv = {}) => isolatedGitEnv(extra);
  if (o.nginx) {
    const front = await startTlsFront(await mirrorCertificate(), { host: "127.0.0.1", port: addr.port });
    base = front.base;
    gitEnv = front.gitEnv;
  }
  return {
    m,
    routes,
    counts,
    logs,
    url: (project, slug) => `${base}/scm/${project}/${slug}.git`,
    gitEnv,
    repoDir: (id) => m.daemon.repoDir(repoKey(id)),
  };
}
