/**
 * reliability: the mirror's robustness figures, published like its speed. A list of sections,
 * each returning flat `reliability.*` metrics and a paragraph of notes, so a section can be
 * added without touching the others:
 *
 * - kills: >= 100 kill -9 of the daemon's whole process tree while packs stream in (fetches
 *   of 3 MB commits and first clones of a ~12 MB largeRepo.ts repository), `git fsck --strict`
 *   of every repository in service after each kill, then one start that must converge:
 *   refs equal to the primary, no temporary file left (testbed/killCampaign.ts).
 * - enospc: the mirror home on a small tmpfs, filled by a fetch; what the daemon does, whether
 *   it survives and restarts, and whether it recovers by itself once space is back.
 * - hostile, slow_body: the serving side (bench/reliabilityServing.ts): hostile and malformed
 *   requests straight to the daemon and through nginx, and the 5xx answers among them (goal 0);
 *   the daemon's RSS before, during and after 300 stalled request bodies.
 *
 * SMART_MIRROR_RELIABILITY_SECTIONS=hostile,slow_body runs only the sections named.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { getJson, killTree9, runDaemon, StatusDoc } from "../testbed/daemonProcess";
import type { TrackedProcess } from "../testbed/resources";
import { ensureLargeRepo } from "../testbed/largeRepo";
import { KILL_LARGE_REPO, leftoverTempFiles, runKillCampaign } from "../testbed/killCampaign";
import { makeMirrorHome, writeMirrorProperties } from "../testbed/mirrorHome";
import { startPrimary } from "../testbed/primary";
import { assertSameRefsAndObjects, workingClone } from "../testbed/repos";
import { freePort, onCleanup, tempDir, waitFor } from "../testbed/resources";
import { BenchContext, BenchOutcome, Benchmark, BenchSection as ReliabilitySection } from "./benchmark";
import { hostileSection, slowBodySection } from "./reliabilityServing";
import type { MetricValue } from "./results";
import { scaled } from "./scale";
import { homePath, repoDir } from "../sync/homeLayout";

const KILLS = 100;

const killSection: ReliabilitySection = {
  name: "kills",
  async run(ctx) {
    const kills = scaled(KILLS, ctx.scale, 5);
    const primary = await startPrimary({ label: "reliability-primary" });
    const t0 = Date.now();
    const r = await runKillCampaign(primary, { kills, seed: 1, newRepoEvery: 5, log: ctx.log });
    if (r.problems.length > 0) ctx.log(`problems:\n${r.problems.join("\n")}`);
    const results: Record<string, MetricValue> = {
      "reliability.kills": r.kills,
      "reliability.kills_during_fetch": r.killsDuringFetch,
      "reliability.kills_during_first_clone": r.killsDuringFirstClone,
      "reliability.corrupt_repos": r.corruptRepos,
      "reliability.fsck_runs": r.fsckRuns,
      "reliability.leftover_temp_files": r.leftovers.length,
      "reliability.refs_equal_after_convergence": r.refsEqual,
      "reliability.repos": r.repos,
      "reliability.converge_ms": r.convergeMs,
      "reliability.mirror_pack_mb": Math.round(r.mirrorPackBytes / 1048576),
      "reliability.campaign_s": Math.round((Date.now() - t0) / 1000),
    };
    const notes =
      `kills: ${r.kills} rounds; each pushes a 3 MB incompressible commit to BIG/bulk and rewrites a small repository on the primary, every 5th adds a copy of a ~12 MB largeRepo.ts repository (binary assets), then starts the daemon (mirror.sync.firstCloneStepMb=2, so large first clones go in resumable steps), waits until a pack streams into the mirror (objects/pack/tmp_pack_*) and kill -9s its whole process tree 0-60 ms (half the rounds) or up to 1.5 s later. ` +
      `${r.killsDuringFetch} kills landed with a pack streaming in (${r.killsDuringFirstClone} of them into a first clone in repos/.incoming). After every kill, git fsck --strict of every repository in service (${r.fsckRuns} runs in all): ${r.corruptRepos} failed. ` +
      `Then one more start: ${r.convergeMs} ms to /status SYNCHRONIZED with all ${r.repos} repositories synced (said only after the first reconcile round since the start), refs and objects equal to the primary's: ${r.refsEqual}; temporary files left (tmp_pack/tmp_idx, locks, atomic-write temporaries, .incoming, .trash): ${r.leftovers.length}.` +
      (r.problems.length > 0 ? ` Problems: ${r.problems.slice(0, 5).join("; ")}` : "");
    return { results, notes };
  },
};

function mountTmpfs(dir: string, mb: number): void {
  fs.mkdirSync(dir, { recursive: true });
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${mb}m,mode=0755`, "tmpfs", dir]);
  onCleanup(() => {
    try {
      execFileSync("umount", ["-l", dir]);
    } catch {
      /* already */
    }
  });
}

function freeMb(dir: string): number {
  const s = fs.statfsSync(dir);
  return Math.round((s.bavail * s.bsize) / 1048576);
}

const ENOSPC_RUNS = 3;

/**
 * One run: a 40 MB tmpfs home synced with a ~12 MB repository; a push bigger than what is
 * free makes the next fetch hit ENOSPC; then the daemon is restarted while the disk is full;
 * then space comes back (remount, 400 MB) and the mirror must recover on its own.
 */
async function enospcRun(ctx: BenchContext, i: number): Promise<Record<string, MetricValue>> {
  const primary = await startPrimary({ label: `enospc-primary-${i}` });
  await primary.importRepo("BIG", "large", await ensureLargeRepo(KILL_LARGE_REPO));
  await primary.createRepo("BIG", "bulk");
  const bulk = await workingClone(primary.remote("BIG", "bulk"));
  await bulk.commit({ "README.md": "bulk\n" });
  await bulk.pushAll();
  const repos = [{ project: "BIG", slug: "large" }, { project: "BIG", slug: "bulk" }];

  const mnt = path.join(tempDir("enospc"), "home");
  mountTmpfs(mnt, 40);
  const mh = await makeMirrorHome(primary);
  // The home itself on the small filesystem: keys and properties copied over.
  fs.cpSync(homePath(mh.home, "shared"), homePath(mnt, "shared"), { recursive: true });
  const home = { ...mh, home: mnt, keyFile: homePath(mnt, "keyFile") };
  const port = await freePort();
  writeMirrorProperties(home, primary, {
    repos,
    listen: `127.0.0.1:${port}`,
    // No free-space reserve: this run is about a disk that really fills (the reserve: diskFull.test.ts).
    extra: { "mirror.upstream.keyFile": home.keyFile, "plugin.mirroring.synchronization.interval": "10s", "mirror.sync.retryMax": "5s", "mirror.disk.minFreeMb": "0" },
  });
  const status = async () => ((await getJson(port, "/status").catch(() => ({ body: undefined }))).body as StatusDoc | undefined);
  const synced = async () => {
    const d = await status();
    return d?.state === "SYNCHRONIZED" && d.syncedRepos === repos.length ? d : undefined;
  };
  const out: Record<string, MetricValue> = {};
  let p: TrackedProcess = runDaemon(mnt);
  try {
    await waitFor("initial sync on the small disk", synced, 120_000, 100);
    // More than is free: the fetch runs the filesystem full.
    const fill = freeMb(mnt) + 8;
    await bulk.commit({ "fill.bin": randomBytes(fill * 1048576) }, { message: "fill" });
    await bulk.push(["main"]);
    const t0 = Date.now();
    const seenFull = await waitFor(
      "the fetch to fail on the full disk",
      async () => {
        if (p.child.exitCode !== null) return "daemon exited";
        const d = await status();
        return d && d.state !== "SYNCHRONIZED" ? `${d.state}` : undefined;
      },
      120_000,
      100,
    ).catch(() => "no failure seen");
    out.state_when_full = seenFull;
    out.daemon_alive_when_full = p.child.exitCode === null;
    out.free_mb_when_full = freeMb(mnt);
    // A restart while the disk is still full.
    killTree9(p.child.pid!);
    await p.exited;
    p = runDaemon(mnt);
    const restarted = await waitFor("the daemon to answer after a restart on a full disk", async () => (p.child.exitCode !== null ? "exited" : (await status()) ? "serving" : undefined), 30_000, 100).catch(() => "no answer");
    out.restart_while_full = restarted;
    // Space back.
    execFileSync("mount", ["-o", "remount,size=400m", mnt]);
    if (p.child.exitCode !== null) p = runDaemon(mnt);
    const recovered = await waitFor("recovery once space is back", synced, 180_000, 100).then(() => true).catch(() => false);
    out.recovered = recovered;
    out.recover_ms = Date.now() - t0;
    if (recovered) {
      for (const r of repos) await assertSameRefsAndObjects(primary.repoPath(r.project, r.slug), repoDir(mnt, r));
    }
  } finally {
    p.child.kill("SIGTERM");
    await p.exited;
  }
  let corrupt = 0;
  for (const r of repos) {
    const dir = repoDir(mnt, r);
    if (!fs.existsSync(dir)) continue;
    try {
      execFileSync("git", ["fsck", "--strict", "--no-dangling", "--no-progress"], { cwd: dir, stdio: "pipe" });
    } catch {
      corrupt++;
    }
  }
  out.corrupt_repos = corrupt;
  out.leftover_temp_files = leftoverTempFiles(mnt).length;
  ctx.log(`enospc run ${i + 1}: ${JSON.stringify(out)}`);
  await primary.stop();
  return out;
}

const enospcSection: ReliabilitySection = {
  name: "enospc",
  async run(ctx) {
    const runs = scaled(ENOSPC_RUNS, ctx.scale, 1);
    const all: Record<string, MetricValue>[] = [];
    for (let i = 0; i < runs; i++) all.push(await enospcRun(ctx, i));
    const count = (f: (r: Record<string, MetricValue>) => boolean) => all.filter(f).length;
    const results: Record<string, MetricValue> = {
      "reliability.enospc.runs": runs,
      "reliability.enospc.daemon_alive_when_full": count((r) => r.daemon_alive_when_full === true),
      "reliability.enospc.restart_while_full_serving": count((r) => r.restart_while_full === "serving"),
      "reliability.enospc.recovered": count((r) => r.recovered === true),
      "reliability.enospc.corrupt_repos": all.reduce((n, r) => n + Number(r.corrupt_repos), 0),
      "reliability.enospc.leftover_temp_files": all.reduce((n, r) => n + Number(r.leftover_temp_files), 0),
      "reliability.enospc.recover_ms_max": Math.max(...all.map((r) => Number(r.recover_ms))),
    };
    const notes =
      `enospc: ${runs} runs; the mirror home on a 40 MB tmpfs, synced with a ~12 MB repository and a small one, then a push bigger than the free space makes the next fetch fill the filesystem; the daemon is then kill -9ed and started again on the full disk; then the filesystem grows to 400 MB (remount) and the mirror must converge on its own (reconcile every 10 s, retries capped at 5 s). ` +
      `Per run: ${all.map((r, i) => `#${i + 1} state when full ${String(r.state_when_full)}, daemon alive ${String(r.daemon_alive_when_full)}, restart on the full disk ${String(r.restart_while_full)}, recovered ${String(r.recovered)} (${String(r.recover_ms)} ms), corrupt ${String(r.corrupt_repos)}, leftovers ${String(r.leftover_temp_files)}`).join("; ")}.`;
    return { results, notes };
  },
};

export const RELIABILITY_SECTIONS: ReliabilitySection[] = [killSection, enospcSection, hostileSection, slowBodySection];

async function run(ctx: BenchContext): Promise<BenchOutcome> {
  const only = process.env.SMART_MIRROR_RELIABILITY_SECTIONS?.split(",").map((s) => s.trim());
  const unknown = only?.filter((n) => !RELIABILITY_SECTIONS.some((s) => s.name === n)) ?? [];
  if (unknown.length) throw new Error(`SMART_MIRROR_RELIABILITY_SECTIONS: unknown section(s) ${unknown.join(", ")}; the sections are ${RELIABILITY_SECTIONS.map((s) => s.name).join(", ")}`);
  const results: Record<string, MetricValue> = {};
  const notes: string[] = [];
  for (const s of RELIABILITY_SECTIONS) {
    if (only && !only.includes(s.name)) continue;
    ctx.log(`section ${s.name}`);
    const r = await s.run(ctx);
    Object.assign(results, r.results);
    notes.push(r.notes);
  }
  return {
    results,
    notes: notes.join("\n\n"),
    goals: { "reliability.corrupt_repos": "<= 0", "reliability.leftover_temp_files": "<= 0", "reliability.refs_equal_after_convergence": "== true", "reliability.enospc.corrupt_repos": "<= 0", "reliability.hostile_5xx": "<= 0", "reliability.hostile_clone_after_ok": "== true", "reliability.slow_body_served_after": "== true" },
  };
}

export const reliabilityBenchmark: Benchmark = {
  name: "reliability",
  summary: "kill -9 during fetches of large packs (>= 100), a full disk during a fetch, hostile requests, stalled bodies",
  run,
};
