/**
 * reconcile: how long a full no-change reconcile of 1,000 repositories takes (the safety net
 * that runs every few minutes behind webhooks), against what people run today: a loop of
 * `git fetch --prune` per repository, over new SSH connections or over one ControlMaster.
 *
 * Setup: 1,000 copies of a small seed repository on the bench primary; the daemon syncs them
 * all (its own initial sync, timed for information), then each scan configuration
 * (scanParallelism x scanConnections) gets a fresh daemon whose timed reconciles run over warm
 * pooled connections, as in production. The baselines run on an evenly spread sample and are
 * scaled to the full count (each repository costs the same: they are identical copies).
 *
 * Profile: CPU of the primary's sshd tree (every session it forked), of this process (the
 * daemon's ssh2 side), and of the whole machine, per reconcile; plus the per-exec cost of the
 * layers one primary session runs (git upload-pack, the bench's /bin/sh dispatcher, git-shell),
 * so the remainder is sshd's own per-session work.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { startInProcessMirror, InProcessMirror } from "../testbed/inProcessMirror";
import { MirrorHome } from "../testbed/mirrorHome";
import { startLatencyProxy } from "../testbed/latencyProxy";
import { GIT_SHELL, Primary, startPrimary } from "../testbed/primary";
import { tempDir } from "../testbed/resources";
import type { DaemonSettings } from "../sync/daemon/settings";
import type { RepoId } from "../sync/types";
import { parsePinnedKeys } from "../sync/upstream/hostKeys";
import { assertQuietReconcile, BenchContext, BenchOutcome, Benchmark } from "./benchmark";
import { fetchLoop, localMirrorClones, plainSshEnv, sshTarget, startControlMaster } from "./baselines";
import { makeSeedRepo, populatePrimary } from "./fixtures";
import { syncedMirrorHome, syncedTemplate } from "./syncedMirror";
import { CpuWindow, measureCpu, perExec, sshdPid } from "./profile";
import { scaled } from "./scale";
import { median, ratio, round } from "./stats";

const FULL_REPOS = 1000;
const BASELINE_SAMPLE = 100;
/** Configurations are compared on this many repositories (time is linear in the count), the
 * best and the default are then timed on all of them. */
const TUNING_REPOS = 100;
const RUNS = 3;
const WAN_DELAY_MS = 50;
const WAN_SAMPLE = 20;
/** Over a WAN, more scans in flight hide more latency: the default and a wide configuration. */
const WAN_CONFIGS: ScanConfig[] = [
  { scanParallelism: 16, scanConnections: 2 },
  { scanParallelism: 64, scanConnections: 8 },
];

interface ScanConfig {
  scanParallelism: number;
  scanConnections: number;
}

/** Configurations tried; the first is the production default (DEFAULT_SCAN, sync/daemon/settings.ts). */
const CONFIGS: ScanConfig[] = [
  { scanParallelism: 16, scanConnections: 2 },
  { scanParallelism: 16, scanConnections: 16 },
  { scanParallelism: 8, scanConnections: 1 },
  { scanParallelism: 32, scanConnections: 4 },
  { scanParallelism: 64, scanConnections: 8 },
];

interface ConfigResult extends ScanConfig {
  repos: number;
  runsMs: number[];
  medianMs: number;
  cpu: CpuWindow[];
}

/** Evenly spread sample of `k` ids (pure). */
export function spreadSample<T>(items: readonly T[], k: number): T[] {
  if (k >= items.length) return [...items];
  const step = items.length / k;
  return Array.from({ length: k }, (_, i) => items[Math.floor(i * step)]);
}

/**
 * RUNS reconciles with one scan configuration: the one start() runs (over fresh connections),
 * then RUNS-1 explicit daemon.reconcile() calls over the warm pool. Each must check every
 * repository and find nothing changed.
 */
async function timeConfig(ctx: BenchContext, primary: Primary, ids: RepoId[], mh: MirrorHome, cfg: ScanConfig, sshd: number, over: Partial<DaemonSettings> = {}): Promise<ConfigResult> {
  const runsMs: number[] = [];
  const cpu: CpuWindow[] = [];
  let m: InProcessMirror | undefined;
  try {
    const first = await measureCpu(sshd, async () => {
      m = await startInProcessMirror(primary, ids, { ...cfg, concurrency: 8, ...over }, mh);
      await m.daemon.idle();
    });
    const mirror = m as unknown as InProcessMirror;
    assertQuietReconcile(mirror, ids.length, "reconcile at start");
    runsMs.push(first.cpu.wall);
    cpu.push(first.cpu);
    for (let i = 1; i < RUNS; i++) {
      const r = await measureCpu(sshd, () => mirror.daemon.reconcile());
      assertQuietReconcile(mirror, ids.length, `reconcile ${i + 1}`);
      runsMs.push(r.cpu.wall);
      cpu.push(r.cpu);
    }
  } finally {
    await (m as InProcessMirror | undefined)?.stop();
  }
  ctx.log(`  ${ids.length} repos${over.upstream ? ` via ${over.upstream.host}:${over.upstream.port}` : ""}, scanParallelism=${cfg.scanParallelism} scanConnections=${cfg.scanConnections}: ${runsMs.map(Math.round).join(", ")} ms`);
  return { ...cfg, repos: ids.length, runsMs, medianMs: median(runsMs), cpu };
}

/** Per-exec CPU of the layers inside one primary session, run locally without ssh. */
async function sessionLayers(primary: Primary, id: RepoId): Promise<Record<string, number>> {
  const dir = tempDir("layers");
  const flush = path.join(dir, "flush");
  // "0000": the client wants nothing, so upload-pack advertises its refs and exits, as in a scan.
  fs.writeFileSync(flush, "0000");
  // The account's home holds git-shell-commands/ (where git-shell finds the dispatcher).
  const passwd = fs.readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.startsWith(`${primary.user}:`));
  const home = passwd?.split(":")[5];
  if (!home) throw new Error(`no /etc/passwd entry for ${primary.user}`);
  const env = {
    ...process.env,
    FLUSH: flush,
    REPO: primary.repoPath(id.project, id.slug),
    ROOT: primary.reposRoot,
    CFG: path.join(primary.dir, "gitconfig"),
    DISPATCH: path.join(home, "git-shell-commands", "bench-primary-dispatch"),
    GIT_SHELL,
    HOME: home,
    SSH_ORIGINAL_COMMAND: `git-upload-pack '/${id.project}/${id.slug}.git'`,
    GIT_CONFIG_NOSYSTEM: "1",
  };
  const n = 100;
  const uploadPack = await perExec(`GIT_CONFIG_GLOBAL="$CFG" git upload-pack "$REPO" <"$FLUSH" >/dev/null`, n, env);
  const dispatch = await perExec(`"$DISPATCH" "$ROOT" "$CFG" <"$FLUSH" >/dev/null`, n, env);
  const gitShell = await perExec(`"$GIT_SHELL" -c "bench-primary-dispatch $ROOT $CFG" <"$FLUSH" >/dev/null`, n, env);
  const trueExec = await perExec("/bin/true", n, env);
  return {
    "reconcile.profile.exec_true_cpu_ms": round(trueExec.cpuMs, 2),
    "reconcile.profile.upload_pack_cpu_ms_per_exec": round(uploadPack.cpuMs, 2),
    "reconcile.profile.dispatch_sh_cpu_ms_per_exec": round(dispatch.cpuMs - uploadPack.cpuMs, 2),
    "reconcile.profile.git_shell_cpu_ms_per_exec": round(gitShell.cpuMs - dispatch.cpuMs, 2),
    "reconcile.profile.session_commands_cpu_ms_per_exec": round(gitShell.cpuMs, 2),
  };
}

/**
 * The same comparison with 50 ms one-way latency between mirror and primary (a mirror in
 * another region, as deployed): the fetch loop pays several round trips per repository in
 * sequence (TCP, SSH handshake, git), while the daemon keeps many scans in flight on
 * established connections. On the tuning set, baselines on a sample of WAN_SAMPLE.
 */
async function reconcileOverWan(ctx: BenchContext, primary: Primary, ids: RepoId[], mh: MirrorHome, sshd: number): Promise<{ results: Record<string, number>; note: string }> {
  const proxy = await startLatencyProxy({ targetHost: primary.host, targetPort: primary.port, delayMs: WAN_DELAY_MS });
  ctx.log(`WAN (${WAN_DELAY_MS} ms each way): ${RUNS} no-change reconciles of ${ids.length} repositories per configuration`);
  const upstream = { host: proxy.host, port: proxy.port, user: primary.user, keyFile: mh.keyFile, pinned: parsePinnedKeys(primary.hostKeyLine) };
  const configs: ConfigResult[] = [];
  for (const cfg of WAN_CONFIGS) configs.push(await timeConfig(ctx, primary, ids, mh, cfg, sshd, { upstream }));
  const best = configs.reduce((a, b) => (b.medianMs < a.medianMs ? b : a));
  const sample = spreadSample(ids, Math.min(WAN_SAMPLE, ids.length));
  ctx.log(`WAN baselines on a sample of ${sample.length}`);
  const target = sshTarget(primary, mh.keyFile, proxy);
  const clones = await localMirrorClones(primary, target, sample);
  const plainMs = await fetchLoop(clones, plainSshEnv(target));
  const cm = await startControlMaster(target);
  let cmMs: number;
  try {
    cmMs = await fetchLoop(clones, cm.env);
  } finally {
    await cm.stop();
  }
  await proxy.stop();
  const k = ids.length / sample.length;
  const results = {
    "reconcile_wan50.repos": ids.length,
    "reconcile_wan50.ours_ms": Math.round(best.medianMs),
    "reconcile_wan50.fetch_loop_ms_scaled": Math.round(plainMs * k),
    "reconcile_wan50.controlmaster_loop_ms_scaled": Math.round(cmMs * k),
    "reconcile_wan50.speedup_vs_fetch_loop": ratio(plainMs * k, best.medianMs),
    "reconcile_wan50.speedup_vs_controlmaster_loop": ratio(cmMs * k, best.medianMs),
    "reconcile_wan50.best_scan_parallelism": best.scanParallelism,
    "reconcile_wan50.best_scan_connections": best.scanConnections,
    "reconcile_wan50.baseline_sample_repos": sample.length,
  };
  const note = `reconcile_wan50: the same with ${WAN_DELAY_MS} ms one-way latency (userspace proxy, TCP handshake charged) between mirror and primary, on ${ids.length} repositories: ours ${configs.map((c) => `p${c.scanParallelism}/c${c.scanConnections} ${Math.round(c.medianMs)} ms`).join(", ")} (median of ${RUNS}); the fetch loop ${round(plainMs / sample.length, 0)} ms and the ControlMaster loop ${round(cmMs / sample.length, 0)} ms per repository (sample of ${sample.length}, scaled x${round(k, 2)}). With a round trip per step, the loops wait on the network one repository at a time, while the daemon's scans overlap: this, not loopback, is a mirror's usual position.`;
  return { results, note };
}

async function run(ctx: BenchContext): Promise<BenchOutcome> {
  const n = scaled(FULL_REPOS, ctx.scale, 20);
  const tuneN = Math.min(n, TUNING_REPOS);
  const sampleSize = Math.min(BASELINE_SAMPLE, n);
  const primary = await startPrimary({ label: "bench-primary" });
  const sshd = sshdPid(primary.dir);
  ctx.log(`making ${n} repositories on the primary and a synced mirror of them`);
  const ids = await populatePrimary(primary, await makeSeedRepo(), n);
  const template = await syncedTemplate(primary, ids[0]);
  const mhTune = await syncedMirrorHome(primary, template, tuneN);
  const mh = tuneN === n ? mhTune : await syncedMirrorHome(primary, template, n);

  ctx.log(`tuning: ${RUNS} no-change reconciles of ${tuneN} repositories per scan configuration`);
  const tuning: ConfigResult[] = [];
  for (const cfg of CONFIGS) tuning.push(await timeConfig(ctx, primary, ids.slice(0, tuneN), mhTune, cfg, sshd));
  const bestCfg = tuning.reduce((a, b) => (b.medianMs < a.medianMs ? b : a));
  let best = bestCfg;
  if (tuneN !== n) {
    ctx.log(`${RUNS} no-change reconciles of all ${n} repositories with the best configuration`);
    best = await timeConfig(ctx, primary, ids, mh, bestCfg, sshd);
  }

  ctx.log(`baselines on a sample of ${sampleSize}`);
  const sample = spreadSample(ids, sampleSize);
  const target = sshTarget(primary, mh.keyFile);
  const clones = await localMirrorClones(primary, target, sample);
  // One untimed fetch over a new connection first: the same warm page cache for everyone.
  await fetchLoop(new Map([...clones].slice(0, 1)), plainSshEnv(target));
  const plain = await measureCpu(sshd, () => fetchLoop(clones, plainSshEnv(target)));
  const cm = await startControlMaster(target);
  let cmRun: { value: number; cpu: CpuWindow };
  try {
    cmRun = await measureCpu(sshd, () => fetchLoop(clones, cm.env));
  } finally {
    await cm.stop();
  }
  const scale = n / sampleSize;
  const fetchLoopMs = plain.value * scale;
  const cmLoopMs = cmRun.value * scale;

  const wan = await reconcileOverWan(ctx, primary, ids.slice(0, tuneN), mhTune, sshd);

  ctx.log("profiling the layers of one primary session");
  const layers = await sessionLayers(primary, ids[0]);

  const perRepo = (xs: CpuWindow[], pick: (c: CpuWindow) => number) => round(median(xs.map(pick)) / n, 2);
  const results: Record<string, number> = {
    "reconcile.repos": n,
    "reconcile.ours_ms": Math.round(best.medianMs),
    "reconcile.fetch_loop_ms_scaled": Math.round(fetchLoopMs),
    "reconcile.controlmaster_loop_ms_scaled": Math.round(cmLoopMs),
    "reconcile.speedup_vs_fetch_loop": ratio(fetchLoopMs, best.medianMs),
    "reconcile.speedup_vs_controlmaster_loop": ratio(cmLoopMs, best.medianMs),
    "reconcile.best_scan_parallelism": best.scanParallelism,
    "reconcile.best_scan_connections": best.scanConnections,
    "reconcile.baseline_sample_repos": sampleSize,
    "reconcile.ours_ms_per_repo": round(best.medianMs / n, 2),
    "reconcile.fetch_loop_ms_per_repo": round(plain.value / sampleSize, 1),
    "reconcile.controlmaster_loop_ms_per_repo": round(cmRun.value / sampleSize, 1),
    ...wan.results,
    "reconcile.profile.primary_cpu_ms_per_repo": perRepo(best.cpu, (c) => c.tree),
    "reconcile.profile.daemon_cpu_ms_per_repo": perRepo(best.cpu, (c) => c.self),
    "reconcile.profile.other_processes_cpu_ms_per_repo": perRepo(best.cpu, (c) => Math.max(0, c.machine - c.tree - c.self - c.children)),
    ...layers,
    "reconcile.profile.fetch_loop_primary_cpu_ms_per_repo": round(plain.cpu.tree / sampleSize, 2),
    "reconcile.profile.fetch_loop_client_cpu_ms_per_repo": round(plain.cpu.children / sampleSize, 2),
    "reconcile.profile.controlmaster_loop_primary_cpu_ms_per_repo": round(cmRun.cpu.tree / sampleSize, 2),
    "reconcile.profile.controlmaster_loop_client_cpu_ms_per_repo": round(cmRun.cpu.children / sampleSize, 2),
  };
  results["reconcile.profile.sshd_session_cpu_ms_per_repo"] = round(results["reconcile.profile.primary_cpu_ms_per_repo"] - layers["reconcile.profile.session_commands_cpu_ms_per_exec"], 2);
  for (const c of tuning) results[`reconcile.tune${tuneN}.p${c.scanParallelism}_c${c.scanConnections}_ms`] = Math.round(c.medianMs);

  const cores = os.cpus().length;
  const r = results;
  const cpuBound = (r["reconcile.profile.primary_cpu_ms_per_repo"] + r["reconcile.profile.daemon_cpu_ms_per_repo"]) / cores;
  const cpuBoundSpeedup = r["reconcile.fetch_loop_ms_per_repo"] / cpuBound;
  const notes = [
    `${n} identical small repositories (6 commits, 3 branches, 2 tags) in ${Math.ceil(n / 100)} project(s) on the bench primary (OpenSSH sshd -> git-shell -> /bin/sh dispatcher -> git upload-pack), on the same ${cores}-core machine as the mirror. The mirror starts fully synced (the daemon synced one copy; its result was copied to all ${n}; every timed reconcile confirms each fingerprint against the primary's advertisement: checked=${n}, changed=0).`,
    `ours: median of ${RUNS} no-change reconciles (the one daemon.start() runs over fresh connections, then daemon.reconcile() twice over the warm ssh2 pool): every repository's refs advertised over a pooled channel and fingerprinted, nothing fetched. Scan configurations (scanParallelism/scanConnections, 8 channels per connection) compared on ${tuneN} repositories: ${tuning.map((c) => `p${c.scanParallelism}/c${c.scanConnections} ${Math.round(c.medianMs)} ms`).join(", ")}; the best, p${best.scanParallelism}/c${best.scanConnections}, then timed on all ${n} (${Math.round(best.medianMs)} ms); p16/c2 is the production default. The differences are within the noise of this shared machine: with a few channels in flight both cores are already saturated.`,
    `Baselines: \`git fetch --prune origin\` in bare --mirror clones, one repository after the other, over a new SSH connection each (fetch loop: ${r["reconcile.fetch_loop_ms_per_repo"]} ms per repository) and over one OpenSSH ControlMaster connection (${r["reconcile.controlmaster_loop_ms_per_repo"]} ms); run on an evenly spread sample of ${sampleSize} repositories and scaled x${round(scale, 2)} to ${n}.`,
    `Profile, per repository scanned (best configuration): the primary spends ${r["reconcile.profile.primary_cpu_ms_per_repo"]} ms CPU — sshd's per-session work (fork, privilege-separated session setup, exec of the login shell) ${r["reconcile.profile.sshd_session_cpu_ms_per_repo"]} ms, git-shell ${r["reconcile.profile.git_shell_cpu_ms_per_exec"]} ms, the bench primary's /bin/sh dispatcher ${r["reconcile.profile.dispatch_sh_cpu_ms_per_exec"]} ms, git upload-pack ${r["reconcile.profile.upload_pack_cpu_ms_per_exec"]} ms (layers timed locally with bash \`times\`; an exec of /bin/true costs ${r["reconcile.profile.exec_true_cpu_ms"]} ms CPU on this VM) — while the daemon spends ${r["reconcile.profile.daemon_cpu_ms_per_repo"]} ms (ssh2 channel, advertisement parsing, fingerprint) and other processes on the machine ${r["reconcile.profile.other_processes_cpu_ms_per_repo"]} ms. With ${cores} cores that CPU alone bounds a reconcile at ~${round(cpuBound, 1)} ms per repository (measured ${r["reconcile.ours_ms_per_repo"]} ms), i.e. a speedup of at most ~${Math.round(cpuBoundSpeedup)}x over the fetch loop on this machine, whatever the mirror does: the cost is the primary's process per session, which every SSH Git client pays once per repository. The fetch loop's primary side costs ${r["reconcile.profile.fetch_loop_primary_cpu_ms_per_repo"]} ms CPU per repository (a new sshd connection: re-exec, key exchange, auth) plus ${r["reconcile.profile.fetch_loop_client_cpu_ms_per_repo"]} ms on the client (git, ssh).`,
    wan.note,
    `In production the primary is another machine: the mirror's own cost stays at ~${r["reconcile.profile.daemon_cpu_ms_per_repo"]} ms CPU per repository, and the primary answers the scans in flight on its own cores. What would help: a primary whose sessions are cheaper (Bitbucket's SSH server runs inside its JVM: a session costs no sshd fork and no login shell, only the git process) is bounded by git upload-pack alone; on the mirror, skipping the advertisement for repositories a webhook confirmed recently would cut sessions, at the cost of the reconcile no longer checking everything. The bench primary's dispatcher adds one /bin/sh exec per session; it is part of the primary (a real Bitbucket has its own per-session cost), so it is counted, not subtracted.`,
  ].join("\n\n");
  return {
    results,
    notes,
    goals: { "reconcile.speedup_vs_fetch_loop": ">= 40" },
  };
}

export const reconcileBenchmark: Benchmark = {
  name: "reconcile",
  summary: "no-change reconcile of 1,000 repositories vs git fetch loops (new SSH connections / ControlMaster)",
  run,
};
