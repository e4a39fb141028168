/**
 * `smart-mirror verify`: compare every selected repository's refs on the mirror with the
 * primary's, after the mirror's ref filter, and print the ones out of sync as results arrive.
 * The primary's refs are read the way the daemon's reconcile reads them: ref advertisements
 * over one pinned, kept ssh2 connection (upstreamPool.ts), many channels on it, so verifying
 * thousands of repositories costs one SSH handshake. The mirror's refs are read from disk
 * (git for-each-ref; safe beside a running daemon: git updates refs atomically).
 *
 * --resync: the running daemon (it holds the home's lock) is asked to sync each out-of-sync
 * repository, fetching even when its fingerprints agree; without a daemon, verify takes the lock
 * itself (so no daemon starts meanwhile) and fetches the same way the daemon would (SyncEngine,
 * over the home's ControlMaster). Either way each repaired repository is verified again.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { listRepos } from "../catalog/bitbucketRest";
import { selectRepos } from "../catalog/select";
import { formatProblems, loadConfig } from "../config";
import { diffRefs } from "../consistency/refDiff";
import { SyncEngine } from "../daemon/engine";
import { forEachLimit } from "../daemon/forEachLimit";
import { acquireHomeLock, HomeLockedError, runningDaemonPid } from "../daemon/lock";
import { DaemonSettings } from "../daemon/settings";
import { homePath } from "../homeLayout";
import { partitionRepoIds } from "../repoName";
import { runtimeOptions } from "../runtimeOptions";
import { RepoStore } from "../store/repoStore";
import { RepoId, repoKey, RepoKey } from "../types";
import { closeControlMaster, isPrimaryUnreachable, removeFallbackControlDir, upstreamGitEnv } from "../upstream/openssh";
import { makeRefFilter } from "../upstream/refFilter";
import { upstreamPath, UpstreamPool } from "../upstream/upstreamPool";
import { requestResync } from "./daemonClient";
import { exitCode, RepoVerdict, Summary, summaryJson, summaryText, verdictJson, verdictText } from "./report";

export interface VerifyOptions {
  home: string;
  /** PROJECT/slug names to verify (default: every repository the mirror carries). */
  repos?: string[];
  resync?: boolean;
  json?: boolean;
  /** Repositories compared at once (channels on the SSH connection); default 8. */
  parallel?: number;
  out?: (line: string) => void;
  err?: (line: string) => void;
}

export const DEFAULT_VERIFY_PARALLEL = 8;
/** OpenSSH's MaxSessions default is 10: stay under it per connection. */
const CHANNELS_PER_CONNECTION = 8;

/** A failure that needs a person, with the message that names the fix. */
class VerifyError extends Error {}

export async function runVerify(o: VerifyOptions): Promise<number> {
  const out = o.out ?? ((l: string) => process.stdout.write(l + "\n"));
  const err = o.err ?? ((l: string) => process.stderr.write(l + "\n"));
  try {
    return await verify({ ...o, home: path.resolve(o.home) }, out, err);
  } catch (e) {
    err(`smart-mirror verify: ${e instanceof VerifyError ? e.message : `unexpected failure: ${(e as Error).message}`}`);
    return 2;
  }
}

async function verify(o: VerifyOptions, out: (l: string) => void, err: (l: string) => void): Promise<number> {
  const t0 = Date.now();
  const loaded = loadConfig(o.home);
  if (!loaded.ok) throw new VerifyError(`cannot read the configuration, ${loaded.problems.length} problem(s) in ${homePath(o.home, "properties")}:\n${formatProblems(loaded.problems)}\n(smart-mirror check --home ${o.home} lists them all)`);
  const options = runtimeOptions(loaded.config);
  const s = options.daemon;
  const parallel = o.parallel ?? DEFAULT_VERIFY_PARALLEL;
  if (!Number.isInteger(parallel) || parallel < 1 || parallel > 64) throw new VerifyError(`--parallel must be an integer from 1 to 64, got ${o.parallel}`);
  const ids = pick(await catalog(s), o.repos);
  const keep = makeRefFilter(s.excludeRefs);
  const store = new RepoStore(s.home, s.excludeRefs, { firstCloneStepBytes: s.firstCloneStepBytes });
  const connections = Math.ceil(parallel / CHANNELS_PER_CONNECTION);
  const pool = new UpstreamPool(
    { host: s.upstream.host, port: s.upstream.port, user: s.upstream.user, privateKey: readKey(s.upstream.keyFile), pinned: s.upstream.pinned },
    { connections, channelsPerConnection: Math.min(parallel, CHANNELS_PER_CONNECTION), connectTimeoutMs: 15000, scanTimeoutMs: 60000 },
  );
  const emit = (v: RepoVerdict, phase: "verify" | "after-resync" = "verify") => {
    if (o.json) out(verdictJson(v, phase));
    else for (const l of verdictText(v, phase === "after-resync" ? "resync: " : "")) out(l);
  };
  const check = async (id: RepoId): Promise<RepoVerdict> => {
    const repository = repoKey(id);
    try {
      const primary = await pool.scan(upstreamPath(id.project, id.slug));
      const mirror = store.exists(id) ? await store.localRefs(id, process.env) : undefined;
      const diff = diffRefs(primary, mirror, keep);
      return diff.equal ? { repository, status: "equal" } : { repository, status: "differs", diff };
    } catch (e) {
      if (isPrimaryUnreachable(e)) throw new VerifyError(`cannot reach the primary at ${s.upstream.user}@${s.upstream.host}:${s.upstream.port}: ${(e as Error).message}\n(check mirror.upstream.sshUrl and mirror.upstream.hostKeys, and that the mirror's public key ${s.upstream.keyFile}.pub is approved on the primary)`);
      return { repository, status: "error", error: (e as Error).message };
    }
  };
  try {
    const verdicts = new Map<RepoKey, RepoVerdict>();
    await forEachLimit(ids, parallel, async (id) => {
      const v = await check(id);
      verdicts.set(v.repository, v);
      emit(v);
    });
    const all = [...verdicts.values()];
    const summary: Summary = {
      repositories: all.length,
      equal: all.filter((v) => v.status === "equal").length,
      differs: all.filter((v) => v.status === "differs").length,
      errors: all.filter((v) => v.status === "error").length,
      durationMs: 0,
      sshConnections: connections,
    };
    const outOfSync = ids.filter((id) => verdicts.get(repoKey(id))?.status === "differs");
    if (o.resync && outOfSync.length > 0) {
      summary.resynced = await resync(o.home, options.listen, s, outOfSync, parallel, pool, check, (v) => emit(v, "after-resync"), err);
    }
    summary.durationMs = Date.now() - t0;
    out(o.json ? summaryJson(summary) : summaryText(summary));
    return exitCode(summary);
  } finally {
    pool.close();
  }
}

/** The repositories the mirror carries: the catalog, valid names, the project selection. */
async function catalog(s: DaemonSettings): Promise<RepoId[]> {
  const c = s.catalog;
  let listed: RepoId[];
  try {
    listed = c.kind === "static" ? c.repos : await listRepos({ baseUrl: c.baseUrl, token: c.token, ca: c.ca });
  } catch (e) {
    throw new VerifyError(`cannot list the primary's repositories: ${(e as Error).message}\n(check plugin.mirroring.upstream.url and mirror.upstream.tokenFile, or name them with --repo PROJECT/slug)`);
  }
  return selectRepos(partitionRepoIds(listed).valid, s.projects);
}

/** `--repo` narrows the catalog; a name it does not hold is an error, not a silent skip. */
function pick(all: RepoId[], wanted: string[] | undefined): RepoId[] {
  if (!wanted || wanted.length === 0) return all;
  const byKey = new Map(all.map((id) => [repoKey(id), id]));
  const unknown = wanted.filter((k) => !byKey.has(k));
  if (unknown.length > 0) throw new VerifyError(`not a repository this mirror carries: ${unknown.join(", ")}\n(give PROJECT/slug as in the clone URL /scm/PROJECT/slug.git; the mirror carries what mirror.catalog and mirror.projects select)`);
  return [...new Set(wanted)].map((k) => byKey.get(k)!);
}

function readKey(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new VerifyError(`cannot read the mirror's SSH key ${file}: ${(e as Error).message}\n(run smart-mirror verify as the user the daemon runs as, e.g. sudo -u smart-mirror)`);
  }
}

async function resync(
  home: string,
  listen: Parameters<typeof requestResync>[0],
  s: DaemonSettings,
  ids: RepoId[],
  parallel: number,
  pool: UpstreamPool,
  check: (id: RepoId) => Promise<RepoVerdict>,
  emit: (v: RepoVerdict) => void,
  err: (l: string) => void,
): Promise<NonNullable<Summary["resynced"]>> {
  const r = { repaired: 0, stillDiffering: 0, failed: 0 };
  const after = async (id: RepoId, outcome: { ok: boolean; error?: string }) => {
    if (!outcome.ok) {
      r.failed++;
      emit({ repository: repoKey(id), status: "error", error: `resync failed: ${outcome.error ?? "unknown error"}` });
      return;
    }
    const v = await check(id);
    if (v.status === "equal") r.repaired++;
    else if (v.status === "differs") r.stillDiffering++;
    else r.failed++;
    emit(v);
  };
  if (runningDaemonPid(home) !== undefined) {
    // Each request answers when its sync ended; the daemon's scheduler bounds its own concurrency.
    await forEachLimit(ids, parallel, async (id) => after(id, await requestResync(listen, repoKey(id), s.timeoutMs + 60_000)));
    return { ...r, via: "daemon" };
  }
  let release: () => void;
  try {
    release = acquireHomeLock(home);
  } catch (e) {
    if (e instanceof HomeLockedError) throw new VerifyError(`${e.message} (a daemon started while verify ran: run verify --resync again)`);
    throw e;
  }
  const { env, controlPath } = upstreamGitEnv(home, s.upstream.keyFile);
  const engine = new SyncEngine({
    store: new RepoStore(home, s.excludeRefs, { firstCloneStepBytes: s.firstCloneStepBytes }),
    scanner: pool,
    keep: makeRefFilter(s.excludeRefs),
    env,
    sshBase: `ssh://${s.upstream.user}@${s.upstream.host}:${s.upstream.port}`,
    maintenance: s.maintenance,
  });
  try {
    err("no daemon is running: fetching here (the home's lock is held meanwhile)");
    await forEachLimit(ids, Math.min(parallel, s.concurrency), async (id) => {
      const signal = AbortSignal.timeout(s.timeoutMs);
      const outcome = await engine.sync(id, "manual", signal).then(
        () => ({ ok: true }),
        (e: Error) => ({ ok: false, error: e.message }),
      );
      await after(id, outcome);
    });
  } finally {
    // The ControlMaster this run started must not outlive it (the daemon closes its own at stop).
    await closeControlMaster(controlPath, env);
    removeFallbackControlDir(controlPath);
    release();
  }
  return { ...r, via: "local" };
}
