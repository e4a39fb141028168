/**
 * scale: the built daemon (dist/smart-mirror.js run, production defaults) mirroring a primary
 * with 100,000 repositories, in steady state.
 *
 * The 100,000 repositories are hard-linked copies (cp -al) of one seed on the primary and of the
 * daemon's own synced mirror of it on the mirror side, kept on disk under SCALE_CACHE and reused
 * by later runs (making them costs minutes; a stamp file says what is there). Bind mounts put
 * them under this run's primary and mirror home.
 *
 * Steady state: a daemon that has been running for a while has compared each repository with
 * the primary at some time within its target (scheduler/scanPlan.ts). The bench writes that
 * state as the daemon's own scan ledger (data/scan-ledger.json) before the start: 1% of the
 * repositories active (changed an hour ago; last compared within the last round), the rest
 * idle (last compared at a uniformly spread time within their target). Then:
 *
 * - startup: spawn to SYNCHRONIZED (the first round done, nothing left uncompared);
 * - steady window, one reconcile round with no change: the primary's CPU (the sshd tree,
 *   scans only), /status and /status/detail answer times (sampled across the window);
 * - missed webhooks: commits put straight into 20 active repositories on the primary at random
 *   times within a round (no webhook), and the time until the mirror holds each;
 * - RSS after all of it, and its peak.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { getJson } from "../testbed/daemonProcess";
import { MirrorHome } from "../testbed/mirrorHome";
import { Primary, startPrimary } from "../testbed/primary";
import { freePort, onCleanup, spawnTracked, TrackedProcess, waitFor } from "../testbed/resources";
import { KEYS } from "../sync/config/keys";
import { parseDuration } from "../sync/config/duration";
import { homePath } from "../sync/homeLayout";
import { scanTargets } from "../sync/scheduler/scanPlan";
import { RepoId, repoKey } from "../sync/types";
import { BenchContext, BenchOutcome, Benchmark } from "./benchmark";
import { BUNDLE, benchProperties, memoryOf } from "./daemonRss";
import { accountOf, copyRepos, makeSeedRepo, repoIds } from "./fixtures";
import { sshdPid, treeCpuMs } from "./profile";
import { scaled } from "./scale";
import { quantile, round } from "./stats";
import { benchMirrorHome, syncedTemplate } from "./syncedMirror";
import { initialSyncSample } from "./scaleInitialSync";

const FULL_REPOS = 100_000;
const ACTIVE_SHARE = 0.01;
const MISSED_PUSHES = 20;
/** Repositories copied afresh for the initial-sync rate (scaleInitialSync.ts). */
const SYNC_SAMPLE = 2000;
/** Where the repositories are kept between runs (on disk: a reboot keeps them). */
export const SCALE_CACHE = process.env.SMART_MIRROR_SCALE_CACHE ?? "/var/tmp/smart-mirror-bench-scale";
const CACHE_VERSION = 1;

/** The production defaults the daemon runs with (from the key table). */
function defaults() {
  const ms = (v: string | undefined) => {
    const d = v === undefined ? undefined : parseDuration(v);
    if (d === undefined) throw new Error(`unexpected default duration ${v}`);
    return d;
  };
  return {
    roundMs: ms(KEYS.syncInterval.default),
    maxPerSecond: Number(KEYS.scanMaxPerSecond.default),
    idleBoundMs: ms(KEYS.scanIdleBound.default),
    activeWindowMs: ms(KEYS.scanActiveWindow.default),
  };
}

/** Make (or find) n repositories on each side under SCALE_CACHE; returns the two roots. */
async function cachedTrees(ctx: BenchContext, primary: Primary, n: number): Promise<{ primaryRoot: string; mirrorRoot: string; ids: RepoId[] }> {
  const base = path.join(SCALE_CACHE, `n${n}`);
  const stampFile = path.join(base, "stamp.json");
  const owner = accountOf(primary);
  const stamp = JSON.stringify({ version: CACHE_VERSION, n, owner });
  const primaryRoot = path.join(base, "primary");
  const mirrorRoot = path.join(base, "mirror");
  const ids = repoIds(n);
  if (fs.existsSync(stampFile) && fs.readFileSync(stampFile, "utf8") === stamp) {
    ctx.log(`reusing ${n} repositories per side from ${base}`);
    return { primaryRoot, mirrorRoot, ids };
  }
  ctx.log(`making ${n} repositories per side under ${base} (hard links; reused by later runs)`);
  fs.rmSync(base, { recursive: true, force: true });
  fs.mkdirSync(base, { recursive: true });
  const seed = await makeSeedRepo();
  await copyRepos(seed, primaryRoot, n, { owner, link: true });
  fs.chownSync(primaryRoot, owner.uid, owner.gid);
  // The mirror's copy: the daemon's own sync of one of them, copied the same way.
  await bindMount(primaryRoot, primary.reposRoot);
  const template = await syncedTemplate(primary, ids[0]);
  await copyRepos(template, mirrorRoot, n, { link: true });
  fs.writeFileSync(stampFile, stamp);
  return { primaryRoot, mirrorRoot, ids };
}

async function bindMount(from: string, onto: string): Promise<void> {
  if (isMountPoint(onto)) return;
  execFileSync("mount", ["--bind", from, onto]);
  onCleanup(async () => {
    execFileSync("umount", ["-l", onto]);
  });
}

function isMountPoint(dir: string): boolean {
  return fs.readFileSync("/proc/self/mountinfo", "utf8").split("\n").some((l) => l.split(" ")[4] === dir);
}

/** The scan ledger of a daemon that has been running in steady state (see the header). */
export function steadyLedger(keys: string[], activeCount: number, now: number, p: ReturnType<typeof defaults>, random: () => number = Math.random): string {
  const t = scanTargets({ ...p }, activeCount, keys.length - activeCount);
  const repos: Record<string, [number, number]> = {};
  keys.forEach((k, i) => {
    const active = i < activeCount;
    const every = active ? t.activeEveryMs : t.idleEveryMs;
    repos[k] = [Math.round(now - random() * every), active ? now - 3_600_000 : 0];
  });
  return JSON.stringify({ version: 1, savedAt: now, repos });
}

function alive(p: TrackedProcess): void {
  if (p.child.exitCode !== null || p.child.signalCode !== null) throw new Error(`the daemon exited (${p.child.exitCode ?? p.child.signalCode}): ${p.output().trim().slice(-2000)}`);
}

interface Status {
  state?: string;
  lastReconcile?: { at: string; result: string; durationMs: number; checked: number; changed: number; unasked?: number } | null;
  scan?: { activeRepos: number; idleRepos: number; scansPerSecond: number; activeEverySeconds: number; idleEverySeconds: number; overBudget: boolean; worstCaseNoticeSeconds: { active: number; idle: number } } | null;
}

/** A commit on main made on the primary itself, as a push would leave it (no webhook). */
function commitOnPrimary(repoDir: string, n: number): string {
  const g = (...args: string[]) => execFileSync("git", ["--git-dir", repoDir, ...args], { encoding: "utf8", env: { ...process.env, GIT_AUTHOR_NAME: "bench", GIT_AUTHOR_EMAIL: "bench@example.com", GIT_COMMITTER_NAME: "bench", GIT_COMMITTER_EMAIL: "bench@example.com" } }).trim();
  const commit = g("commit-tree", "refs/heads/main^{tree}", "-p", "refs/heads/main", "-m", `missed webhook ${n} ${Date.now()}`);
  g("update-ref", "refs/heads/main", commit);
  return commit;
}

function mirrorHead(repoDir: string): string | undefined {
  try {
    return execFileSync("git", ["--git-dir", repoDir, "rev-parse", "--verify", "-q", "refs/heads/main"], { encoding: "utf8" }).trim();
  } catch {
    return undefined;
  }
}

async function run(ctx: BenchContext): Promise<BenchOutcome> {
  if (!fs.existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run \`npm run build\` first (npm run bench does)`);
  const n = scaled(FULL_REPOS, ctx.scale, 1000);
  const activeCount = Math.max(MISSED_PUSHES, Math.round(n * ACTIVE_SHARE));
  const p = defaults();
  const primary = await startPrimary({ label: "bench-primary" });
  const { primaryRoot, mirrorRoot, ids } = await cachedTrees(ctx, primary, n);
  await bindMount(primaryRoot, primary.reposRoot);
  const mh: MirrorHome = await benchMirrorHome(primary);
  const repos = homePath(mh.home, "repos");
  fs.mkdirSync(repos, { recursive: true });
  await bindMount(mirrorRoot, repos);

  const port = await freePort();
  fs.writeFileSync(homePath(mh.home, "properties"), benchProperties(primary, ids, port));
  const keys = ids.map((id) => repoKey(id));
  fs.mkdirSync(homePath(mh.home, "dataDir"), { recursive: true });
  fs.writeFileSync(homePath(mh.home, "scanLedger"), steadyLedger(keys, activeCount, Date.now(), p), { mode: 0o600 });

  ctx.log(`starting the built daemon with ${n} repositories (${activeCount} active), production defaults`);
  const t0 = performance.now();
  const daemon = spawnTracked(process.execPath, [BUNDLE, "run", "--home", mh.home]);
  const pid = daemon.child.pid as number;
  const status = async (detail = true) => (await getJson(port, detail ? "/status/detail" : "/status", 30_000)).body as Status;
  await waitFor(
    "the daemon to serve with the whole catalog",
    async () => {
      alive(daemon);
      const s = (await status(false).catch(() => undefined)) as (Status & { totalRepos?: number }) | undefined;
      return s?.totalRepos === n;
    },
    30 * 60_000,
    100,
  );
  const servingS = (performance.now() - t0) / 1000;
  const started = await waitFor(
    "SYNCHRONIZED after the start",
    async () => {
      alive(daemon);
      const s = await status().catch(() => undefined);
      return s?.state === "SYNCHRONIZED" ? s : undefined;
    },
    30 * 60_000,
    250,
  );
  const startupS = (performance.now() - t0) / 1000;
  const rssAtStart = memoryOf(pid).rssMb;
  ctx.log(`serving ${round(servingS)} s after the spawn; SYNCHRONIZED ${round(startupS)} s after it (first round asked ${started.lastReconcile?.checked}); RSS ${round(rssAtStart)} MiB`);

  // Steady window: one round, no changes. The primary's CPU is its sshd tree (scans only).
  const sshd = sshdPid(primary.dir);
  const cpu0 = treeCpuMs(sshd);
  const w0 = performance.now();
  const statusMs: number[] = [];
  const detailMs: number[] = [];
  while (performance.now() - w0 < p.roundMs) {
    alive(daemon);
    const a = performance.now();
    await status(false);
    statusMs.push(performance.now() - a);
    const b = performance.now();
    await status(true);
    detailMs.push(performance.now() - b);
    await new Promise((r) => setTimeout(r, 1000));
  }
  const windowMs = performance.now() - w0;
  const primaryCpuPct = ((treeCpuMs(sshd) - cpu0) / windowMs) * 100;
  const steady = await status();
  ctx.log(`steady round: primary CPU ${round(primaryCpuPct)}% of a core; /status p99 ${round(quantile(statusMs, 0.99))} ms`);

  // Missed webhooks: commits straight into active repositories at random times within a round.
  ctx.log(`${MISSED_PUSHES} commits into active repositories with no webhook, spread over a round`);
  const pushes: Array<{ key: string; dir: string; commit: string; at: number; seenMs?: number }> = [];
  const offsets = Array.from({ length: MISSED_PUSHES }, () => Math.random() * p.roundMs).sort((a, b) => a - b);
  const d0 = performance.now();
  const detectDeadline = d0 + 3 * p.roundMs;
  let next = 0;
  while (performance.now() < detectDeadline) {
    alive(daemon);
    const now = performance.now();
    while (next < offsets.length && now - d0 >= offsets[next]) {
      const id = ids[next]; // the first activeCount repositories are the active ones
      const dir = path.join(primary.reposRoot, id.project, `${id.slug}.git`);
      pushes.push({ key: repoKey(id), dir: path.join(repos, id.project, `${id.slug}.git`), commit: commitOnPrimary(dir, next), at: performance.now() });
      next++;
    }
    for (const x of pushes) if (x.seenMs === undefined && mirrorHead(x.dir) === x.commit) x.seenMs = performance.now() - x.at;
    if (next === offsets.length && pushes.every((x) => x.seenMs !== undefined)) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const missed = pushes.filter((x) => x.seenMs === undefined);
  if (missed.length > 0) throw new Error(`${missed.length} commits not noticed within three rounds: ${missed.map((x) => x.key).join(", ")}`);
  const detectS = pushes.map((x) => (x.seenMs as number) / 1000);

  await new Promise((r) => setTimeout(r, 3000));
  const mem = memoryOf(pid);
  await daemon.stop();

  const sample = await initialSyncSample(ctx, primary, ids.slice(0, Math.min(n, scaled(SYNC_SAMPLE, ctx.scale, 100))), n);

  const sc = steady.scan;
  const results = {
    "scale.repos": n,
    "scale.active_repos": activeCount,
    "scale.daemon_rss_mb": round(mem.rssMb),
    "scale.daemon_peak_rss_mb": round(mem.hwmMb),
    "scale.daemon_rss_mb_at_start": round(rssAtStart),
    "scale.primary_cpu_pct_of_core": round(primaryCpuPct),
    "scale.scans_per_second": sc?.scansPerSecond ?? -1,
    "scale.missed_webhook_detect_s_p50": round(quantile(detectS, 0.5)),
    "scale.missed_webhook_detect_s_p99": round(quantile(detectS, 0.99)),
    "scale.missed_webhook_bound_s_active": sc?.worstCaseNoticeSeconds.active ?? -1,
    "scale.missed_webhook_bound_s_idle": sc?.worstCaseNoticeSeconds.idle ?? -1,
    "scale.idle_every_s": sc?.idleEverySeconds ?? -1,
    "scale.status_ms_p99": round(quantile(statusMs, 0.99)),
    "scale.status_detail_ms_p99": round(quantile(detailMs, 0.99)),
    "scale.startup_s": round(servingS),
    "scale.startup_to_synchronized_s": round(startupS),
    ...sample.results,
  };
  const notes = [
    `The built bundle (node ${process.version} dist/smart-mirror.js run --home DIR) as a subprocess with production defaults (plugin.mirroring.synchronization.interval ${p.roundMs / 1000} s, mirror.scan.maxPerSecond ${p.maxPerSecond}, mirror.scan.idleBound ${p.idleBoundMs / 3_600_000} h, mirror.scan.activeWindow ${p.activeWindowMs / 3_600_000} h) and a static catalog of ${n} repositories, all present on the primary (real sshd, git-shell) and on the mirror: hard-linked copies of one small seed (6 commits, 3 branches, 2 tags) on each side, kept under ${SCALE_CACHE} between runs.`,
    `Steady state is written, not waited for: the daemon's scan ledger says ${activeCount} repositories (${ACTIVE_SHARE * 100}%) changed an hour ago and were compared within the last round, and the others were compared at uniformly spread times within their target (${sc?.idleEverySeconds ?? "?"} s). startup: spawn to serving (the daemon answers /status with the whole catalog and serves its copies); startup_to_synchronized: spawn to SYNCHRONIZED (the first round compared what was due, paced by the budget).`,
    `Change detection at steady state: ${sc?.scansPerSecond ?? "?"} scans/s (overBudget ${sc?.overBudget}); the primary's CPU is its sshd process tree (sessions, git-shell, upload-pack) over one round of ${round(windowMs / 1000)} s with no changes, as a share of one core. /status (public) and /status/detail were each asked ${statusMs.length} times during it, once a second.`,
    `Missed webhooks: ${MISSED_PUSHES} commits made on the primary itself (commit-tree + update-ref: what a push leaves, with no webhook) in active repositories at random times within one round; time until the mirror's ref showed each commit (polled every 250 ms). Worst case by design: active ${sc?.worstCaseNoticeSeconds.active ?? "?"} s, idle ${sc?.worstCaseNoticeSeconds.idle ?? "?"} s (/status/detail scan.worstCaseNoticeSeconds).`,
    `RSS: VmRSS 3 s after the last notice, and VmHWM (peak) over the run.`,
    sample.notes,
  ].join("\n\n");
  return {
    results,
    notes,
    goals: { "scale.daemon_rss_mb": "<= 300", "scale.primary_cpu_pct_of_core": "<= 10", "scale.status_ms_p99": "<= 100" },
  };
}

export const scaleBenchmark: Benchmark = {
  name: "scale",
  summary: "100,000 repositories: daemon RSS, the primary's CPU for change detection, missed-webhook notice, /status time, startup",
  run,
};
