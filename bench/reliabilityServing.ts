/**
 * reliability's serving sections (issue 12, items 3 and 4), against the built daemon
 * (dist/smart-mirror.js) as its own process, syncing from a real sshd primary:
 *
 * - hostile: every request of testbed/hostileRequests.ts, straight to the daemon's unix
 *   socket and through the rendered nginx site over real TLS, with the pack cache off and on
 *   (scope all, so repeated hostile bodies also meet the cache's paths). A 5xx or no answer is
 *   a failure (goal 0). Afterwards a real git clone through nginx must still work.
 * - slow_body: the attack of defect 3, 300 upload-pack POSTs that stop 100 bytes short of
 *   1 MiB and hold the connection; the daemon's RSS (/proc/PID/status VmRSS) before, at the
 *   peak while they are held, and after they were answered (503: body budget spent; 408: the
 *   body idled out) and closed.
 */
import * as path from "node:path";
import { getJson, runDaemon, StatusDoc } from "../testbed/daemonProcess";
import { httpSend } from "../testbed/gitServer";
import { HOSTILE_REQUESTS, HostileAnswer, isServerFailure, Send, sendHostile } from "../testbed/hostileRequests";
import { startMirrorBehindNginx } from "../testbed/mirrorBehindNginx";
import { makeMirrorHome, writeMirrorProperties } from "../testbed/mirrorHome";
import { Primary, startPrimary } from "../testbed/primary";
import { git, isolatedGitEnv, workingClone } from "../testbed/repos";
import { freePort, tempDir, waitFor } from "../testbed/resources";
import { stalledPost } from "../testbed/stalledBody";
import { memoryOf } from "./daemonRss";
import type { BenchSection as ReliabilitySection } from "./benchmark";
import type { MetricValue } from "./results";
import { scaled } from "./scale";

const APP = { project: "PROJ", slug: "app" };
const REPO_PATH = `/scm/${APP.project}/${APP.slug}.git`;

/** A primary serving PROJ/app with two commits; the head commit (hostile bodies name it). */
async function primaryWithApp(label: string): Promise<{ primary: Primary; head: string }> {
  const primary = await startPrimary({ label });
  await primary.createRepo(APP.project, APP.slug);
  const w = await workingClone(primary.remote(APP.project, APP.slug));
  await w.commit({ "README.md": "# app\n" });
  const head = await w.commit({ "a.txt": "a\n" });
  await w.push(["main"]);
  return { primary, head };
}

const round1 = (n: number) => Math.round(n * 10) / 10;

// --- hostile -------------------------------------------------------------------------------

const HOSTILE_ROUNDS = 3;

const CACHE_MODES = [
  { name: "", what: "pack cache off", properties: { "mirror.serve.packCacheMb": "0" } },
  { name: "_cache", what: "pack cache on (scope all)", properties: { "mirror.serve.packCacheScope": "all" } },
] as const;

interface TargetTally {
  target: string;
  sent: number;
  failures: HostileAnswer[];
  statuses: Map<number, number>;
}

export const hostileSection: ReliabilitySection = {
  name: "hostile",
  async run(ctx) {
    // At least two rounds: the second meets what the first left (cache entries, counters).
    const rounds = scaled(HOSTILE_ROUNDS, ctx.scale, 2);
    const { primary, head } = await primaryWithApp("hostile-primary");
    const tallies: TargetTally[] = [];
    const after: string[] = [];
    let clonesOk = 0;
    for (const mode of CACHE_MODES) {
      const m = await startMirrorBehindNginx({ primary, repos: [APP], properties: { "mirror.log.level": "warn", ...mode.properties } });
      await m.waitSynchronized();
      const targets: Array<[string, Send]> = [
        [`daemon${mode.name}`, httpSend({ socketPath: m.socketPath })],
        [`nginx${mode.name}`, (method, target, o) => m.request(method, target, o)],
      ];
      for (const [target, send] of targets) {
        const t: TargetTally = { target, sent: 0, failures: [], statuses: new Map() };
        for (let r = 0; r < rounds; r++) {
          for (const h of HOSTILE_REQUESTS) {
            const a = await sendHostile(h, { repoPath: REPO_PATH, head }, send);
            t.sent++;
            t.statuses.set(a.status, (t.statuses.get(a.status) ?? 0) + 1);
            if (isServerFailure(a.status)) t.failures.push(a);
          }
        }
        tallies.push(t);
        ctx.log(`hostile ${target}: ${t.sent} sent, ${t.failures.length} 5xx/no answer`);
      }
      // The mirror still does its job afterwards: a real clone through nginx.
      const alive = m.daemon.child.exitCode === null;
      const cloned = await git(["clone", "--quiet", m.url(APP.project, APP.slug), path.join(tempDir("hostile-clone"), "app")], { env: m.gitEnv() })
        .then(() => true)
        .catch((e: unknown) => (ctx.log(`clone after the hostile requests (${mode.what}) failed: ${String(e)}`), false));
      if (alive && cloned) clonesOk++;
      after.push(`${mode.what}: daemon ${alive ? "alive" : "exited"}, clone through nginx ${cloned ? "ok" : "FAILED"}`);
      await m.daemon.stop();
      await m.nginx.stop();
    }
    await primary.stop();

    const sent = tallies.reduce((n, t) => n + t.sent, 0);
    const failed = tallies.reduce((n, t) => n + t.failures.length, 0);
    const results: Record<string, MetricValue> = {
      "reliability.hostile_requests": sent,
      "reliability.hostile_5xx": failed,
      "reliability.hostile_clone_after_ok": clonesOk === CACHE_MODES.length,
    };
    for (const t of tallies) {
      results[`reliability.hostile.${t.target}.sent`] = t.sent;
      results[`reliability.hostile.${t.target}.5xx`] = t.failures.length;
    }
    const histogram = (t: TargetTally) => [...t.statuses].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s === 0 ? "no answer" : s}×${n}`).join(", ");
    const failureList = tallies.flatMap((t) => t.failures.map((a) => `${t.target} "${a.name}": ${a.status} ${a.text.slice(0, 80).replace(/\s+/g, " ")}`));
    const notes =
      `hostile: the ${HOSTILE_REQUESTS.length} requests of testbed/hostileRequests.ts (not pkt-lines, truncated and oversized pkt-lines, framed requests git refuses such as deepen-not of a ref, protocol v2 misuse, bad gzip, unknown content codings and services), ${rounds} rounds each, sent to the built daemon (its own process, syncing PROJ/app from a real sshd primary) straight on its unix socket (daemon*) and through the rendered nginx site over real TLS (nginx*), with the pack cache off and on (*_cache, mirror.serve.packCacheScope=all). ` +
      `${sent} sent, ${failed} answered 5xx or not at all (goal 0). Answers per target: ${tallies.map((t) => `${t.target} ${histogram(t)}`).join("; ")}. ` +
      `Afterwards: ${after.join("; ")}.` +
      (failureList.length ? ` Failures: ${failureList.slice(0, 10).join("; ")}${failureList.length > 10 ? `; ... ${failureList.length - 10} more` : ""}.` : "");
    return { results, notes };
  },
};

// --- slow_body -----------------------------------------------------------------------------

const SLOW_BODIES = 300;
const SLOW_BODY_BYTES = 1024 * 1024;
/** Lower than the 30 s default to keep the bench short; the mechanism is the same. */
const BODY_TIMEOUT_S = 5;
/** After a wave's last answer: time for the daemon to collect what it freed (RSS read every 5 s). */
const SETTLE_MS = 15_000;

/** A gauge's value in a Prometheus text exposition. */
function metric(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text);
  return m ? Number(m[1]) : undefined;
}

const WAVES = 2;

interface Wave {
  peakMb: number;
  heldMb: number;
  statuses: number[];
  ms: number;
  /** RSS every 5 s after the last answer. */
  settling: number[];
}

/** One wave of stalled POSTs, held until the daemon answers and closes each; RSS sampled meanwhile. */
async function attackWave(port: number, pid: number, count: number, log: (m: string) => void): Promise<Wave> {
  let peakMb = memoryOf(pid).rssMb;
  const sampler = setInterval(() => {
    try {
      peakMb = Math.max(peakMb, memoryOf(pid).rssMb);
    } catch {
      /* exited: the caller sees it */
    }
  }, 50);
  const t0 = Date.now();
  try {
    const posts = Array.from({ length: count }, () => stalledPost(port, `${REPO_PATH}/git-upload-pack`, SLOW_BODY_BYTES, { "Content-Type": "application/x-git-upload-pack-request" }));
    await Promise.all(posts.map((x) => x.sent));
    // While they are held: what the body budget says it holds.
    const m = await getJson(port, "/metrics").catch(() => undefined);
    const heldMb = m && typeof m.body === "string" ? (metric(m.body, "smart_mirror_http_body_bytes_held") ?? 0) / 1048576 : 0;
    log(`all sent after ${Date.now() - t0} ms; RSS ${round1(memoryOf(pid).rssMb)} MiB, body bytes held ${round1(heldMb)} MiB; waiting for the answers`);
    const statuses = await Promise.all(posts.map((x) => x.answer));
    return { peakMb, heldMb, statuses, ms: Date.now() - t0, settling: [] };
  } finally {
    clearInterval(sampler);
  }
}

export const slowBodySection: ReliabilitySection = {
  name: "slow_body",
  async run(ctx) {
    const count = scaled(SLOW_BODIES, ctx.scale, 30);
    const { primary } = await primaryWithApp("slow-body-primary");
    const mh = await makeMirrorHome(primary);
    const port = await freePort();
    writeMirrorProperties(mh, primary, {
      repos: [APP],
      listen: `127.0.0.1:${port}`,
      extra: { "mirror.serve.bodyTimeout": `${BODY_TIMEOUT_S}s`, "mirror.log.level": "warn" },
    });
    const p = runDaemon(mh.home);
    const pid = p.child.pid as number;
    const base = `http://127.0.0.1:${port}`;
    await waitFor(
      "the daemon to sync PROJ/app",
      async () => {
        if (p.child.exitCode !== null) throw new Error(`the daemon exited (${p.child.exitCode}): ${p.output()}`);
        const d = (await getJson(port, "/status").catch(() => ({ body: undefined }))).body as StatusDoc | undefined;
        return d?.state === "SYNCHRONIZED" && d.syncedRepos === 1;
      },
      120_000,
      100,
    );
    // Warm: one real clone, so "before" is a daemon that has served, not a cold one.
    await git(["clone", "--quiet", `${base}${REPO_PATH}`, path.join(tempDir("slow-body-clone"), "app")], { env: isolatedGitEnv() });
    await new Promise((r) => setTimeout(r, 2000));
    const before = memoryOf(pid).rssMb;
    ctx.log(`slow_body: daemon RSS before ${round1(before)} MiB; ${WAVES} waves of ${count} stalled POSTs`);

    // Two waves: RSS that the first leaves behind must not grow again with the second (held
    // memory is bounded by the budget, not by the number of attackers or attacks).
    const waves: Wave[] = [];
    for (let w = 0; w < WAVES && p.child.exitCode === null; w++) {
      const wave = await attackWave(port, pid, count, (msg) => ctx.log(`slow_body wave ${w + 1}: ${msg}`));
      for (let waited = 0; waited < SETTLE_MS && p.child.exitCode === null; waited += 5000) {
        await new Promise((r) => setTimeout(r, 5000));
        if (p.child.exitCode === null) wave.settling.push(round1(memoryOf(pid).rssMb));
      }
      waves.push(wave);
    }
    const alive = p.child.exitCode === null;
    const afterRss = alive ? memoryOf(pid).rssMb : NaN;
    // The daemon's own count of refusals: a 503 sent while the client was still writing can be
    // lost to the TCP reset of the close (the client then sees no answer).
    const m = alive ? await getJson(port, "/metrics").catch(() => undefined) : undefined;
    const refusedByDaemon = m && typeof m.body === "string" ? (metric(m.body, "smart_mirror_http_body_refused_total") ?? NaN) : NaN;
    // Served again: a well-formed (empty) negotiation is not refused.
    const next = alive ? await httpSend(port)("POST", `${REPO_PATH}/git-upload-pack`, { headers: { "Content-Type": "application/x-git-upload-pack-request", "Content-Length": "4" }, body: Buffer.from("0000") }).catch(() => ({ status: 0 })) : { status: 0 };
    await p.stop();
    await primary.stop();

    const statuses = waves.flatMap((w) => w.statuses);
    const peak = Math.max(before, ...waves.map((w) => w.peakMb));
    const heldPeakMb = Math.max(0, ...waves.map((w) => w.heldMb));
    const n = (code: number) => statuses.filter((s) => s === code).length;
    const other = statuses.filter((s) => s !== 503 && s !== 408);
    const results: Record<string, MetricValue> = {
      "reliability.slow_body_requests": statuses.length,
      "reliability.slow_body_rss_before_mb": round1(before),
      "reliability.slow_body_rss_peak_mb": round1(peak),
      "reliability.slow_body_rss_after_first_wave_mb": waves[0]?.settling.at(-1) ?? NaN,
      "reliability.slow_body_rss_after_mb": round1(afterRss),
      "reliability.slow_body_rss_growth_mb": round1(afterRss - before),
      "reliability.slow_body_held_mb": round1(heldPeakMb),
      "reliability.slow_body_refused_503": n(503),
      "reliability.slow_body_timed_out_408": n(408),
      "reliability.slow_body_no_answer": n(0),
      "reliability.slow_body_other_answers": other.length - n(0),
      "reliability.slow_body_refused_by_daemon": refusedByDaemon,
      "reliability.slow_body_served_after": next.status > 0 && next.status < 500,
    };
    const waveText = waves.map((w, i) => `wave ${i + 1}: peak ${round1(w.peakMb)} MiB (body bytes held ${round1(w.heldMb)} MiB once all were sent), all closed within ${w.ms} ms, then every 5 s ${w.settling.join(", ")} MiB`).join("; ");
    const notes =
      `slow_body: the attack of defect 3 against the built daemon (its own process, default mirror.serve.bodyBudgetMb=64), in ${waves.length} waves: ${count} upload-pack POSTs on ${count} connections, each declaring ${SLOW_BODY_BYTES / 1048576} MiB and stopping 100 bytes short, held open; the next wave ${SETTLE_MS / 1000} s after the last answer. ` +
      `mirror.serve.bodyTimeout lowered to ${BODY_TIMEOUT_S} s (default 30 s) to keep the bench short. Daemon VmRSS (sampled every 50 ms while held): ${round1(before)} MiB before (after one clone); ${waveText}. Growth after the last wave: ${round1(afterRss - before)} MiB (before the fix, one wave: 92 -> 391 MB, and it stayed). ` +
      `Answers as the clients saw them: ${n(503)} refused 503 (budget spent, body never read), ${n(408)} timed out 408, ${n(0)} closed without an answer, ${other.length - n(0)} other${other.length - n(0) ? ` (${other.filter((s) => s !== 0).slice(0, 10).join(", ")})` : ""}. The daemon counted ${refusedByDaemon} refusals (smart_mirror_http_body_refused_total): a refusal the client did not see was a 503 written while the client was still sending its body, lost to the reset of the close (no lingering close). ` +
      `A well-formed request afterwards: ${next.status || "no answer"}.`;
    return { results, notes };
  },
};
