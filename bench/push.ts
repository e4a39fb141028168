/**
 * push: `git push` through the mirror (mirror.push=proxy) against `git push` straight to the
 * primary, both over HTTPS, with the primary 50 ms away each way (testbed/latencyProxyProcess:
 * a userspace WAN link, TCP handshake charged, in a process of its own) and the client next to
 * the mirror, as a developer in the mirror's region.
 *
 *   through the mirror:  git -> nginx (TLS) -> daemon -> [WAN] -> primary HTTPS (git http-backend),
 *                        then the daemon's fetch of the push over SSH -> [WAN] -> primary sshd,
 *                        before the push's answer ends (read-your-writes)
 *   straight:            git -> [WAN] -> primary HTTPS
 *
 * Each attempt: commit, `git push`, and the moment it returns `git ls-remote` of the mirror;
 * an attempt whose commit the mirror does not serve then is a read-your-writes failure (the
 * mirror runs with mirror.serve.freshness=never, so only the push path can make it fresh).
 * read_your_writes_ms = from the start of `git push` until the mirror served the commit.
 */
import { performance } from "node:perf_hooks";
import { startHttpsPrimary } from "../testbed/httpsPrimary";
import { startLatencyProxyProcess } from "../testbed/latencyProxyProcess";
import { startMirrorBehindNginx } from "../testbed/mirrorBehindNginx";
import { git, workingClone } from "../testbed/repos";
import { BenchContext, BenchOutcome, Benchmark } from "./benchmark";
import { scaled } from "./scale";
import { quantile, ratio } from "./stats";

const ATTEMPTS = 30;
const WAN_DELAY_MS = 50;
const APP = { project: "PROJ", slug: "app" };

async function run(ctx: BenchContext): Promise<BenchOutcome> {
  const n = scaled(ATTEMPTS, ctx.scale, 5);
  const hp = await startHttpsPrimary({ primary: { label: "bench-primary" } });
  await hp.createRepo(APP.project, APP.slug);
  hp.double.addUser("dev", "dev-pw", { canWrite: { projects: [APP.project] } });
  const [httpsWan, sshWan] = await Promise.all([
    startLatencyProxyProcess({ targetHost: "127.0.0.1", targetPort: hp.double.port, delayMs: WAN_DELAY_MS }),
    startLatencyProxyProcess({ targetHost: hp.primary.host, targetPort: hp.primary.port, delayMs: WAN_DELAY_MS }),
  ]);
  const primaryWanUrl = `https://localhost:${httpsWan.port}`;
  const directUrl = `https://dev:dev-pw@localhost:${httpsWan.port}/scm/${APP.project}/${APP.slug}.git`;

  const seed = await workingClone({ url: directUrl, env: hp.gitEnv() });
  await seed.commit({ "README.md": "push bench\n" });
  await seed.git(["push", "--quiet", "origin", "HEAD:refs/heads/main", "HEAD:refs/heads/direct"], hp.gitEnv());

  const m = await startMirrorBehindNginx({
    primary: hp.primary,
    repos: [APP],
    properties: {
      "plugin.mirroring.upstream.url": primaryWanUrl,
      "mirror.upstream.caFile": hp.ca.certPath,
      "mirror.upstream.sshUrl": `ssh://${hp.primary.user}@${sshWan.host}:${sshWan.port}`,
      "mirror.serve.freshness": "never",
      "mirror.serve.onDemandWait": "30s",
      "plugin.mirroring.synchronization.interval": "1h",
    },
  });
  await m.waitSynchronized();
  const mirrorUrl = m.url(APP.project, APP.slug).replace("https://", "https://dev:dev-pw@");
  const mirrorEnv = m.gitEnv();
  const directEnv = hp.gitEnv();

  const viaMirror: number[] = [];
  const direct: number[] = [];
  const ryw: number[] = [];
  let failures = 0;
  let firstFailure: string | undefined;
  ctx.log(`push: ${n} pushes through the mirror and ${n} straight to the primary, ${WAN_DELAY_MS} ms each way to the primary`);
  for (let i = 0; i < n; i++) {
    // Through the mirror, then read-your-writes checked at once.
    const c = await seed.commit({ "m.txt": `through the mirror ${i}\n` });
    const t0 = performance.now();
    await git(["push", "--quiet", mirrorUrl, "HEAD:refs/heads/main"], { cwd: seed.dir, env: mirrorEnv });
    viaMirror.push(performance.now() - t0);
    let served = (await git(["ls-remote", m.url(APP.project, APP.slug), "refs/heads/main"], { env: mirrorEnv })).startsWith(c);
    if (!served) {
      failures++;
      firstFailure ??= `attempt ${i}: the mirror served an older tip right after git push returned`;
      const deadline = performance.now() + 60_000;
      while (!served && performance.now() < deadline) served = (await git(["ls-remote", m.url(APP.project, APP.slug), "refs/heads/main"], { env: mirrorEnv })).startsWith(c);
    }
    ryw.push(performance.now() - t0);
    // Straight to the primary (another branch, so both stay fast-forwards).
    await seed.commit({ "d.txt": `straight to the primary ${i}\n` });
    const t1 = performance.now();
    await git(["push", "--quiet", directUrl, "HEAD:refs/heads/direct"], { cwd: seed.dir, env: directEnv });
    direct.push(performance.now() - t1);
    if ((i + 1) % 10 === 0) ctx.log(`  ${i + 1}/${n}`);
  }

  const p50 = (xs: number[]) => Math.round(quantile(xs, 0.5));
  // The daemon's own account of the forwarded POSTs (its log is kept bounded: the latest ones):
  // the whole request, and the part spent waiting for the mirror's fetch of the push.
  const forwarded = m.daemon
    .output()
    .split("\n")
    .filter((l) => l.startsWith("{") && l.includes('"git push forwarded to the primary"') && l.includes('"syncMs"'))
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as { ms: number; syncMs: number }];
      } catch {
        return []; // the first line of the kept tail may be cut
      }
    });
  ctx.log(`  daemon: ${forwarded.length} forwarded pushes; sync wait p50 ${p50(forwarded.map((f) => f.syncMs))} ms, whole POST p50 ${p50(forwarded.map((f) => f.ms))} ms`);
  const results = {
    "push.attempts": n,
    "push.via_mirror_ms_p50": p50(viaMirror),
    "push.via_mirror_ms_p99": Math.round(quantile(viaMirror, 0.99)),
    "push.direct_wan50_ms_p50": p50(direct),
    "push.direct_wan50_ms_p99": Math.round(quantile(direct, 0.99)),
    "push.ratio_vs_direct_wan50": ratio(quantile(viaMirror, 0.5), quantile(direct, 0.5), 2),
    "push.read_your_writes_ms_p50": p50(ryw),
    "push.read_your_writes_ms_p99": Math.round(quantile(ryw, 0.99)),
    "push.read_your_writes_failures": failures,
    "push.sync_wait_ms_p50": forwarded.length ? p50(forwarded.map((f) => f.syncMs)) : -1,
  };
  const notes = [
    `Each attempt: a new commit, \`git push\` over HTTPS through the mirror (the built daemon behind the real nginx site with TLS, mirror.push=proxy), then at once \`git ls-remote\` of the mirror; then a new commit pushed straight to the primary's HTTPS door (git http-backend behind the Bitbucket double, Basic auth). ${n} of each, one at a time, interleaved. The primary is ${WAN_DELAY_MS} ms away each way from both the mirror and the direct client (two userspace proxies in their own processes, TCP handshake charged: one in front of the primary's HTTPS, one in front of its sshd, which the mirror fetches from); the client sits next to the mirror.`,
    `push.ratio_vs_direct_wan50 = p50 of the push through the mirror / p50 of the push straight to the primary: the push through the mirror crosses the same WAN to the primary and then waits for the mirror's fetch of the push (over its kept SSH connection, one more WAN round of ref scan + fetch) before \`git push\` returns; that wait is the price of read-your-writes. read_your_writes_ms = from the start of \`git push\` until the mirror served the commit (the push plus the ls-remote right after it); read_your_writes_failures = attempts where the mirror did not serve the commit right after \`git push\` returned (the mirror has mirror.serve.freshness=never, so only the push path can make it fresh).`,
    `push.sync_wait_ms_p50: of that, the median time the daemon held the push's answer for its fetch (from its log, ${forwarded.length} pushes): the demand sync is handed the pushed ref moves and fetches exactly those tips over a warm protocol-v2 session (the webhook fast path); the answer is released as soon as they are applied and recorded (the job's convergence check, ls-refs on a fresh session, runs after it).`,
    firstFailure ? `First failure: ${firstFailure}.` : "No read-your-writes failure.",
  ].join("\n\n");
  return { results, notes, goals: { "push.read_your_writes_failures": "== 0" } };
}

export const pushBenchmark: Benchmark = {
  name: "push",
  summary: "git push through the mirror vs straight to the primary, 50 ms WAN; read-your-writes time and failures",
  run,
};
