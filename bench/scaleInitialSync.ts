/**
 * The scale bench's initial-sync section: the built daemon's first copy of a sample of the
 * large primary's repositories (a fresh home, production defaults), timed against the same
 * clones 8 at a time over one OpenSSH ControlMaster, with the rate extrapolated to the whole
 * catalog (said as such: 100,000 first clones would take this machine most of an hour).
 * While it runs, a client clones an already-synced repository from the daemon every couple of
 * seconds: clones must not be starved by the sync (compared with the same clone afterwards).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { getJson } from "../testbed/daemonProcess";
import type { Primary } from "../testbed/primary";
import { git } from "../testbed/repos";
import { freePort, spawnTracked, tempDir, TrackedProcess, waitFor } from "../testbed/resources";
import { homePath } from "../sync/homeLayout";
import type { RepoId } from "../sync/types";
import type { BenchContext } from "./benchmark";
import { cloneLoop, sshTarget, startControlMaster } from "./baselines";
import { BUNDLE, benchProperties } from "./daemonRss";
import { quantile, ratio, round } from "./stats";
import { benchMirrorHome } from "./syncedMirror";

const PROBE_EVERY_MS = 2000;
const IDLE_PROBES = 10;

function alive(p: TrackedProcess): void {
  if (p.child.exitCode !== null || p.child.signalCode !== null) throw new Error(`the daemon exited (${p.child.exitCode ?? p.child.signalCode}): ${p.output().trim().slice(-2000)}`);
}

/** One clone through the daemon's HTTP listener; wall ms, or undefined while it is not served yet. */
async function probeClone(port: number, id: RepoId): Promise<number | undefined> {
  const dir = path.join(tempDir("probe-clone"), "c.git");
  const t0 = performance.now();
  try {
    await git(["clone", "--quiet", "--mirror", `http://127.0.0.1:${port}/scm/${id.project}/${id.slug}.git`, dir]);
    return performance.now() - t0;
  } catch {
    return undefined;
  } finally {
    fs.rmSync(path.dirname(dir), { recursive: true, force: true });
  }
}

export interface InitialSyncSample {
  results: Record<string, number>;
  notes: string;
}

export async function initialSyncSample(ctx: BenchContext, primary: Primary, ids: RepoId[], catalogSize: number): Promise<InitialSyncSample> {
  const mh = await benchMirrorHome(primary);
  const port = await freePort();
  fs.writeFileSync(homePath(mh.home, "properties"), benchProperties(primary, ids, port));
  ctx.log(`initial sync of a sample of ${ids.length} repositories by the built daemon, a clone every ${PROBE_EVERY_MS / 1000} s meanwhile`);
  const t0 = performance.now();
  const daemon = spawnTracked(process.execPath, [BUNDLE, "run", "--home", mh.home]);
  const during: number[] = [];
  let done = false;
  const probes = (async () => {
    while (!done) {
      const ms = await probeClone(port, ids[0]);
      if (ms !== undefined && !done) during.push(ms);
      await new Promise((r) => setTimeout(r, PROBE_EVERY_MS));
    }
  })();
  let progress = "";
  await waitFor(
    "the sample's initial sync",
    async () => {
      alive(daemon);
      const s = (await getJson(port, "/status", 10_000).catch(() => undefined))?.body as { state?: string; initialSync?: { done: number; total: number } } | undefined;
      if (s?.initialSync) progress = `${s.initialSync.done}/${s.initialSync.total}`;
      return s?.state === "SYNCHRONIZED";
    },
    60 * 60_000,
    500,
  );
  const oursMs = performance.now() - t0;
  done = true;
  await probes;
  const idle: number[] = [];
  for (let i = 0; i < IDLE_PROBES; i++) {
    const ms = await probeClone(port, ids[0]);
    if (ms !== undefined) idle.push(ms);
  }
  await daemon.stop();
  if (during.length === 0 || idle.length === 0) throw new Error(`no clone was served (during: ${during.length}, after: ${idle.length}; last progress ${progress})`);

  ctx.log(`baseline: the same ${ids.length} clones 8 at a time over one ControlMaster`);
  const cm = await startControlMaster(sshTarget(primary, mh.keyFile));
  let loopMs: number;
  try {
    loopMs = await cloneLoop(sshTarget(primary, mh.keyFile), ids, cm.env, 8);
  } finally {
    await cm.stop();
  }
  const perSecond = ids.length / (oursMs / 1000);
  const results = {
    "scale.initial_sync_sample_repos": ids.length,
    "scale.initial_sync_sample_s": round(oursMs / 1000),
    "scale.initial_sync_repos_per_s": round(perSecond),
    "scale.initial_sync_s": Math.round(catalogSize / perSecond),
    "scale.initial_sync_speedup_vs_parallel8_controlmaster_clone_loop": ratio(loopMs, oursMs, 2),
    "scale.clone_ms_p50_during_initial_sync": Math.round(quantile(during, 0.5)),
    "scale.clone_ms_p99_during_initial_sync": Math.round(quantile(during, 0.99)),
    "scale.clone_ms_p50_idle": Math.round(quantile(idle, 0.5)),
  };
  const notes = [
    `Initial sync (measured on a sample, extrapolated): a fresh mirror home, the built daemon with production defaults (mirror.sync.concurrency 8) and a static catalog of the first ${ids.length} of the ${catalogSize} repositories: ${round(oursMs / 1000)} s to SYNCHRONIZED, ${round(perSecond)} repositories/s; scale.initial_sync_s = ${catalogSize} / that rate, an extrapolation (the repositories are the same small seed, so the rate holds; bigger repositories make every copier slower alike). The same ${ids.length} as \`git clone --mirror\` 8 at a time over one ControlMaster: ${round(loopMs / 1000)} s (speedup ${ratio(loopMs, oursMs, 2)}). A restart during it keeps what was copied (repositories on disk are not cloned again; an interrupted first clone resumes) and /status shows initialSync done/total throughout.`,
    `Serving during it: \`git clone --mirror\` of an already-synced repository over the daemon's HTTP listener every ${PROBE_EVERY_MS / 1000} s while the sync ran (${during.length} clones: p50 ${Math.round(quantile(during, 0.5))} ms, p99 ${Math.round(quantile(during, 0.99))} ms) and ${idle.length} times after it (p50 ${Math.round(quantile(idle, 0.5))} ms): on 2 cores shared with the primary, a clone is slowed by the CPU the sync takes, not queued behind it (upload-pack slots are separate from sync slots).`,
  ].join("\n\n");
  return { results, notes };
}
