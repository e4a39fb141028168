/**
 * The `smart-mirror` command: run the daemon, check a configuration. Bundled by esbuild into
 * dist/smart-mirror.js, which runs with plain `node` on the mirror host.
 */
import { Command } from "commander";
import * as fs from "node:fs";
import * as path from "node:path";
import pino from "pino";
import { runApplyCli } from "./agent/cli";
import { runDrainCli } from "./drainCli";
import { HOME_LAYOUT, homePath } from "./homeLayout";
import { applySetup, formatListen, formatProblems, formatWarnings, loadConfig, runCheck } from "./config";
import { Daemon } from "./daemon/daemon";
import { boardObserver } from "./daemon/observer";
import { HomeLockedError } from "./daemon/lock";
import { catalogResolver, gitServeOptionsFromConfig, mountGitRoutes } from "./serve/git";
import { listen } from "./serve/listen";
import { Router } from "./serve/router";
import { createServer } from "./serve/server";
import { readinessDocument } from "./serve/statusDocument";
import { BodyBudget } from "./serve/bodyBudget";
import { RequestDrain } from "./serve/drain";
import { addDrainRoute } from "./serve/drainRoute";
import { StatusBoard } from "./state/statusBoard";
import { registerCertificateExpiry } from "./state/certificateExpiry";
import { runtimeOptions } from "./runtimeOptions";
import { runVerify } from "./verify/verify";
import { repoHashes } from "./consistency/repoHashes";
import { addMirroringRoutes } from "./serve/mirroringRoutes";
import { readLocalRefs } from "./store/localGit";
import { parseRepoKey, repoKey } from "./types";
import { makeRefFilter } from "./upstream/refFilter";
import { startSyncedEvents } from "./events/syncedEvents";
import { CommitWaiters } from "./wait/commitWaiters";
import { waitHandler } from "./serve/waitHandler";
import { WAIT_MAX_WAITERS, WAIT_PREFIX } from "./serve/waitRequest";
import { mountLfsRoutes } from "./serve/lfs";
import { diskState } from "./store/diskSpace";
import { addAnnounceRoute, Farm, farmDaemonHooks, recordFirstClones, withFarmToken } from "./farm";

const VERSION = "0.1.0";

async function run(home: string): Promise<number> {
  home = path.resolve(home);
  const loaded = loadConfig(home);
  if (loaded.warnings.length > 0) process.stderr.write(formatWarnings(loaded.warnings) + "\n");
  if (!loaded.ok) {
    process.stderr.write(`smart-mirror: cannot start, ${loaded.problems.length} problem(s) in ${homePath(home, "properties")}:\n${formatProblems(loaded.problems)}\n`);
    return 1;
  }
  const config = loaded.config;
  const setup = applySetup(config);
  if (!setup.ok) {
    process.stderr.write(`smart-mirror: cannot start:\n${formatProblems(setup.problems)}\n`);
    return 1;
  }
  if (setup.warnings.length > 0) process.stderr.write(formatWarnings(setup.warnings) + "\n");

  const options = runtimeOptions(config);
  const log = pino({ level: options.log.level, base: { svc: "smart-mirror" }, timestamp: pino.stdTimeFunctions.isoTime });
  const board = new StatusBoard({ info: { displayName: config.setup.displayName, baseUrl: config.setup.baseUrl, upstreamUrl: config.upstream.url, version: VERSION }, delayedAfterMs: options.status.delayedAfterMs });
  // Farm mode (mirror.farm.*): peers told before new refs are served, first clones from peers.
  const farmSettings = options.farm;
  const farm: Farm | undefined = farmSettings && new Farm(farmSettings, { link: { syncNow: (key, moves) => daemon.syncNow(key, moves?.map((m) => ({ refId: m.ref, fromHash: m.old, toHash: m.new }))) }, registry: board.metrics.registry, log });
  const daemon: Daemon = new Daemon(options.daemon, boardObserver(board, log), farm && farmSettings ? farmDaemonHooks(farm, farmSettings, () => readinessDocument(board.snapshot()).body) : undefined);
  // The served certificate's expiry for the certificate-expiry alert (read at each scrape).
  if (options.metrics.tlsCertificateFile) registerCertificateExpiry(board.metrics.registry, options.metrics.tlsCertificateFile, log);
  const secret = options.webhookSecret;
  // Clones: /scm/PROJECT/repo.git, only for repositories in the catalog and on disk.
  const router = new Router({ log });
  // One budget for request bodies held in memory, shared by the Git routes and the webhook.
  const { bodyBudgetBytes, packCache, freshness, push, ...serve } = options.serve;
  const bodyBudget = new BodyBudget(bodyBudgetBytes, board.metrics.registry);
  const bodyIdleMs = serve.bodyIdleMs;
  const resolve = catalogResolver((key) => (daemon.isServed(key) ? daemon.repoDir(key) : undefined));
  const fromConfig = gitServeOptionsFromConfig(options.auth, {
    resolve,
    registry: board.metrics.registry,
    log,
  });
  const gitRoutes = mountGitRoutes(router, {
    ...serve,
    ...fromConfig,
    // The farm token reads every repository (a peer seeding its first clones).
    authorizer: farmSettings ? withFarmToken(fromConfig.authorizer, farmSettings.token) : fromConfig.authorizer,
    // Off while the disk is low: a full disk must not fail clones on a cache write.
    packCache: packCache && { ...packCache, diskOk: () => daemon.diskOk() },
    bodyBudget,
    // Fresh by construction: wants the mirror lacks and stale advertisements go to the daemon.
    freshness: {
      ...freshness,
      link: {
        syncNow: (repo) => daemon.syncNow(repoKey(repo)),
        refsBehind: (repo, signal) => daemon.refsBehind(repoKey(repo), signal),
        catchUp: farm && ((repo, waitMs) => farm.catchUp(repoKey(repo), waitMs)),
      },
    },
    // Pushes forwarded to the primary; answered once the daemon fetched them (read-your-writes).
    push: push && { ...push, syncNow: (repo, changes) => daemon.syncNow(repoKey(repo), changes) },
  });
  // Git LFS at /scm/PROJECT/repo.git/info/lfs, with the clones' access rules (mirror.lfs.enabled).
  const lfs = options.lfs;
  const lfsRoutes = lfs
    ? mountLfsRoutes(router, {
        ...lfs,
        resolve,
        authorizer: gitRoutes.authorizer,
        // The same rule as syncs (mirror.disk.minFreeMb), counting the object about to be stored.
        diskRoom: (bytes) => {
          const st = fs.statfsSync(lfs.storeDir);
          return diskState(st.bavail * st.bsize - bytes, lfs.minFreeBytes) === "ok";
        },
        registry: board.metrics.registry,
        log,
        // Client bodies (batch, verify, locks) share the Git routes' and the webhook's budget.
        bodyBudget,
        bodyIdleMs,
      })
    : undefined;
  // mirror.lfs.prefetch: the LFS objects of what each sync brought, fetched ahead of requests.
  const prefetcher = lfsRoutes?.prefetcher;
  if (prefetcher) daemon.onSynced((n) => n.outcome.refChanges && prefetcher.enqueue(n.id, daemon.repoDir(n.key), n.outcome.refChanges));
  // The repo-hashes API and the resync trigger `smart-mirror verify` uses (internal only).
  const keep = makeRefFilter(options.daemon.excludeRefs);
  addMirroringRoutes(router, {
    servedKeys: () => daemon.catalogKeys().filter((k) => daemon.isServed(k)).sort(),
    hashes: async (key) => {
      if (!daemon.isServed(key)) return undefined;
      // Purged (or recloned) between the check and the read: not served, for this answer.
      return readLocalRefs(daemon.repoDir(key), process.env).then((r) => repoHashes(parseRepoKey(key), r, keep), () => undefined);
    },
    resync: (key) => daemon.resync(key),
  });
  // The synced event out, and the status API's long-poll, both fed by the daemon's sync completions.
  const events = options.events ? startSyncedEvents(daemon, options.events, { registry: board.metrics.registry, log }) : undefined;
  const waiters = new CommitWaiters({ maxWaiters: WAIT_MAX_WAITERS, registry: board.metrics.registry, log });
  daemon.onSynced((n) => waiters.notify(n.key));
  router.mount(WAIT_PREFIX, waitHandler({ resolve, authorizer: gitRoutes.authorizer, waiters, log }));
  // Draining (SIGTERM, `smart-mirror drain`): readiness 503, serve what still arrives, wait for in-flight.
  const drain = new RequestDrain({ ...options.drain, registry: board.metrics.registry });
  drain.onChange((d) => board.setDraining(d));
  let stopping = false;
  addDrainRoute(router, drain, log, () => stopping);
  if (farm && farmSettings) {
    addAnnounceRoute(router, { nodeId: farm.nodeId, instance: farm.instance, token: farmSettings.token, receive: (a) => farm.receive(a), bodyBudget, bodyIdleMs, log });
    daemon.onSynced(recordFirstClones(farm));
  }
  const server = createServer({
    drain,
    board,
    log,
    router,
    bodyBudget,
    bodyIdleMs,
    detailSections: farm && (() => ({ farm: farm.status() })),
    webhook: secret
      ? {
          secret,
          onRefsChanged: (key, info) => {
            daemon.refsChanged(key, info.changes);
          },
          onCatalogChanged: () => {
            daemon.refreshSoon();
          },
        }
      : undefined,
  });
  // Know which peers are ready before the first clones start (they seed from one); bounded by the probe timeout.
  await farm?.probe();
  try {
    await daemon.start();
  } catch (e) {
    if (e instanceof HomeLockedError) {
      process.stderr.write(`smart-mirror: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  // The parsed address itself: no second round through a string (the reason `[::1]:7990` once failed here).
  const listenSpec = formatListen(options.listen);
  const addr = await listen(server, options.listen);
  farm?.start();
  log.info({ listen: listenSpec, addr, repos: daemon.catalogKeys().length, version: VERSION }, "smart-mirror started");

  return new Promise<number>((resolve) => {
    const shutDown = () => {
      // A ref'd deadline: keeps the event loop alive while stopping (every other timer of the
      // daemon is unref'd) and bounds a stop that hangs. The drain before it has its own bound.
      setTimeout(() => {
        log.error("stop did not finish in 30 s; exiting");
        process.exit(1);
      }, STOP_DEADLINE_MS);
      try {
        waiters.close();
        farm?.close();
        server.close();
        gitRoutes.close();
        lfsRoutes?.close();
        server.closeAllConnections?.();
      } catch (e) {
        log.warn({ error: String(e) }, "closing the HTTP server failed");
      }
      log.info("stopping: draining running syncs");
      daemon
        .stop(15000)
        .then(() => events?.close(2000))
        .then(() => {
          if (addr.kind === "unix") fs.rmSync(addr.path, { force: true });
          log.info("stopped");
          resolve(0);
        })
        .catch((e) => {
          log.error({ error: String(e) }, "unclean stop");
          resolve(1);
        });
    };
    const stop = (signal: string) => {
      if (stopping) {
        // A second signal (Ctrl-C twice, an impatient operator): stop now, cutting what runs.
        log.warn({ signal, inFlight: drain.requestsInFlight }, "second stop signal: ending the drain now");
        drain.skip();
        return;
      }
      stopping = true;
      const { quietPeriodMs, timeoutMs } = options.drain;
      log.info({ signal, inFlight: drain.requestsInFlight, quietPeriodMs, timeoutMs }, "draining before the stop: readiness 503, serving what arrives until quiet and in-flight requests finished (mirror.drain.*)");
      void drain.drain().then(async (r) => {
        // No new connections from here on.
        server.close();
        if (r.remaining > 0) {
          const cut = await drain.cut();
          log.warn({ durationMs: r.durationMs, cut }, r.skipped ? `drain ended by a second signal; cut ${cut} request(s) still running` : `drain timed out (mirror.drain.timeout); cut ${cut} request(s) still running`);
        } else log.info({ durationMs: r.durationMs, cut: 0 }, "drained");
        // One that came in on a kept-alive connection since: cut the same way (a hand-off's git
        // must not outlive its connection, see RequestDrain.cut).
        const late = await drain.cut();
        if (late > 0) log.warn({ cut: late }, `cut ${late} request(s) that arrived as the drain ended`);
        shutDown();
      });
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
  });
}

/** The stop after the drain: syncs (15 s), the reconcile (5 s), events; then the process exits anyway. */
export const STOP_DEADLINE_MS = 30_000;

export function buildCli(): Command {
  const program = new Command();
  program
    .name("smart-mirror")
    .description("Read-only Git mirror of a Bitbucket Data Center (or any SSH Git) primary.\nConfiguration: DIR/shared/bitbucket.properties; see the README's config reference.")
    .version(VERSION);
  program
    .command("run")
    .description("run the sync daemon and its HTTP endpoints (/status, /metrics, /webhook)")
    .requiredOption("--home <dir>", `mirror home (holds ${HOME_LAYOUT.properties.rel}, ${HOME_LAYOUT.repos.rel}/, ${HOME_LAYOUT.dataDir.rel}/, ${HOME_LAYOUT.runDir.rel}/)`)
    .action(async (o: { home: string }) => {
      process.exitCode = await run(o.home);
      // pino writes synchronously to stdout; nothing is left to flush.
      process.exit(process.exitCode);
    });
  program
    .command("check")
    .description("validate the configuration; prints every problem with its fix; exit 1 if any")
    .requiredOption("--home <dir>", "mirror home")
    .action((o: { home: string }) => {
      const r = runCheck(path.resolve(o.home));
      (r.exitCode === 0 ? process.stdout : process.stderr).write(r.text.endsWith("\n") ? r.text : r.text + "\n");
      process.exitCode = r.exitCode;
    });
  program
    .command("apply")
    .description("lay down a deploy plan (users, dirs, files, units) and restart what changed; idempotent; JSON summary on stdout")
    .option("--plan <file>", "the plan (JSON, from the Pulumi deploy or `npm start`); delete it afterwards, it may hold secrets")
    .option("--plan-url <url>", "fetch the plan instead: https://HOST/PATH (TLS verified, no redirects) or s3://BUCKET/KEY (`aws s3 cp`); needs --plan-sha256")
    .option("--plan-sha256 <hex>", "the plan's SHA-256: checked before anything is parsed or applied (required with --plan-url)")
    .option("--plan-ca <file>", "PEM CA bundle to verify the --plan-url https server (default: the system's)")
    .option("--wait-ready <seconds>", "after applying, wait until the daemon answers GET /status/ready 200; exit 1 if not in time", (v) => Number(v))
    .option("--status-url <url>", "where --wait-ready asks: http(s)://HOST[:PORT]/status/ready or unix:/path/http.sock (default: the daemon's mirror.serve.listen from the plan)")
    .option("--root <dir>", "apply under this directory instead of / (tests, npm start); users and groups stay the host's")
    .option("--services <manager>", "systemctl (default without --root) | exec (run units' commands directly; default with --root)")
    .option("--dry-run", "decide and report, change nothing")
    .action(async (o: { plan?: string; planUrl?: string; planSha256?: string; planCa?: string; waitReady?: number; statusUrl?: string; root?: string; services?: string; dryRun?: boolean }) => {
      process.exitCode = await runApplyCli(o);
    });
  program
    .command("drain")
    .description(
      "make the running daemon drain (readiness 503 at once, serve what still arrives until mirror.drain.quietPeriod passes without a new request, wait for the requests in flight) and wait until it has; the daemon stays up and not ready until stopped (then it stops at once) or --cancel; exit 0 drained, 1 not",
    )
    .requiredOption("--home <dir>", "mirror home")
    .option("--timeout <seconds>", "bound on this drain (default mirror.drain.timeout)", (v) => Number(v))
    .option("--cancel", "end draining: ready again when the mirror is")
    .action(async (o: { home: string; timeout?: number; cancel?: boolean }) => {
      process.exitCode = await runDrainCli(o);
    });
  program
    .command("verify")
    .description(
      "compare every repository's refs on the mirror with the primary's (after mirror.sync.excludeRefs) and print the ones out of sync; exit 0 all equal, 1 some differ, 2 errors",
    )
    .requiredOption("--home <dir>", "mirror home")
    .option("--repo <PROJECT/slug...>", "verify only these repositories (repeatable)")
    .option("--resync", "sync the out-of-sync ones (by the running daemon, else here) and verify them again")
    .option("--json", "one JSON object per line: a line per repository, then a summary")
    .option("--parallel <n>", "repositories compared at once (SSH channels; 8 per connection)", (v) => Number(v))
    .action(async (o: { home: string; repo?: string[]; resync?: boolean; json?: boolean; parallel?: number }) => {
      process.exitCode = await runVerify({ home: o.home, repos: o.repo, resync: o.resync, json: o.json, parallel: o.parallel });
    });
  return program;
}

if (require.main === module) {
  buildCli()
    .parseAsync(process.argv)
    .catch((e: unknown) => {
      process.stderr.write(`smart-mirror: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    });
}
