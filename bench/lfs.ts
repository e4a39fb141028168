/**
 * lfs: fetching an LFS object set (128 MiB in 8 objects of 16 MiB, incompressible) with the
 * real `git lfs fetch`, through the mirror cold (its store empty: every object fetched from
 * the primary while it streams to the client) and warm (served from the store), against the
 * same fetch straight from the primary's LFS endpoint over a 50 ms-each-way WAN.
 *
 * The mirror is the production path (the built daemon behind the real nginx site with TLS,
 * mirror.serve.auth=primary); the client sits next to it on loopback, as a CI runner in the
 * mirror's region. The primary's LFS endpoint is the Bitbucket double with primaryLfs.ts over
 * HTTPS, reached by the mirror and by the direct baseline alike through the latency proxy
 * (testbed/latencyProxy.ts in a process of its own; 4 MiB in flight per direction, about a
 * Linux TCP window, so a single stream is window-bound as on a real WAN).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { homePath } from "../sync/homeLayout";
import { commitLfsFiles, lfsClientEnv, startLfsPrimary } from "../testbed/lfsFixture";
import { startLatencyProxyProcess } from "../testbed/latencyProxyProcess";
import { startMirrorBehindNginx } from "../testbed/mirrorBehindNginx";
import { startPrimary } from "../testbed/primary";
import type { LfsObject } from "../testbed/primaryLfs";
import { git, GitEnv, workingClone } from "../testbed/repos";
import { tempDir } from "../testbed/resources";
import { BenchContext, BenchOutcome, Benchmark } from "./benchmark";
import { scaled } from "./scale";
import { median, ratio } from "./stats";

const OBJECTS = 8;
const OBJECT_MIB = 16;
const ROUNDS = 3;
const WAN_DELAY_MS = 50;
const ID = { project: "LFS", slug: "assets" };

async function run(ctx: BenchContext): Promise<BenchOutcome> {
  const objectBytes = scaled(OBJECT_MIB, ctx.scale) << 20;
  const primary = await startPrimary({ label: "bench-primary" });
  const lp = await startLfsPrimary();
  lp.double.addRepo(ID.project, ID.slug);
  lp.double.addUser("bench", "bench-pw");
  await primary.createRepo(ID.project, ID.slug);
  const wc = await workingClone(primary.remote(ID.project, ID.slug));
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < OBJECTS; i++) files[`asset-${i}.bin`] = randomBytes(objectBytes);
  const objects: LfsObject[] = Object.values(await commitLfsFiles(wc, lp.lfs, ID.project, ID.slug, files));
  await wc.push(["HEAD:refs/heads/main"]);
  const total = objects.reduce((n, o) => n + o.size, 0);

  const proxy = await startLatencyProxyProcess({ targetHost: "127.0.0.1", targetPort: lp.double.port, delayMs: WAN_DELAY_MS });
  const primaryWan = `https://localhost:${proxy.port}`;
  const m = await startMirrorBehindNginx({
    primary,
    repos: [ID],
    properties: { "plugin.mirroring.upstream.url": primaryWan, "mirror.upstream.caFile": lp.ca.certPath, "mirror.serve.auth": "primary" },
  });
  await m.waitSynchronized();
  const store = homePath(m.mh.home, "lfsObjects");
  // One bundle: the client trusts the mirror's CA and (for the direct baseline) the primary's.
  const bundle = path.join(tempDir("lfs-bench-ca"), "ca.pem");
  fs.writeFileSync(bundle, m.ca.certPem + lp.ca.certPem);
  const mirrorRepo = `https://127.0.0.1:${m.port}/scm/${ID.project}/${ID.slug}.git`;
  const env = (lfsUrl?: string): GitEnv => lfsClientEnv(m.gitEnv(), { user: "bench", password: "bench-pw", caFile: bundle, extra: lfsUrl ? { "lfs.url": lfsUrl } : {} });

  /** A fresh clone (pointers only, not timed), then the timed `git lfs fetch` of every object from `lfsUrl`. */
  async function fetchSet(lfsUrl: string | undefined): Promise<number> {
    const dir = path.join(tempDir("lfs-bench"), "w");
    await git(["clone", "--quiet", "--no-checkout", mirrorRepo, dir], { env: { ...env(lfsUrl), GIT_LFS_SKIP_SMUDGE: "1" } });
    const t0 = performance.now();
    await git(["lfs", "fetch", "origin", "main"], { cwd: dir, env: env(lfsUrl) });
    const ms = performance.now() - t0;
    for (const o of objects) {
      const f = path.join(dir, ".git", "lfs", "objects", o.oid.slice(0, 2), o.oid.slice(2, 4), o.oid);
      if (!fs.existsSync(f) || fs.statSync(f).size !== o.size) throw new Error(`git lfs fetch did not bring ${o.oid}`);
    }
    fs.rmSync(path.dirname(dir), { recursive: true, force: true });
    return ms;
  }

  const primaryMs: number[] = [];
  const coldMs: number[] = [];
  const warmMs: number[] = [];
  const downloadsBefore = () => objects.reduce((n, o) => n + lp.lfs.downloads(o.oid), 0);
  for (let r = 0; r < ROUNDS; r++) {
    primaryMs.push(await fetchSet(`${primaryWan}/scm/${ID.project}/${ID.slug}.git/info/lfs`));
    // Cold: the mirror's store emptied (the daemon looks objects up per request).
    fs.rmSync(store, { recursive: true, force: true });
    fs.mkdirSync(store, { recursive: true });
    const before = downloadsBefore();
    coldMs.push(await fetchSet(undefined));
    if (downloadsBefore() - before !== objects.length) throw new Error(`cold fetch: expected ${objects.length} upstream downloads, the primary saw ${downloadsBefore() - before}`);
    const warmBefore = downloadsBefore();
    warmMs.push(await fetchSet(undefined));
    if (downloadsBefore() !== warmBefore) throw new Error("warm fetch went to the primary");
    ctx.log(`  round ${r + 1}/${ROUNDS}: primary ${Math.round(primaryMs[r])} ms, mirror cold ${Math.round(coldMs[r])} ms, warm ${Math.round(warmMs[r])} ms`);
  }
  await proxy.stop();

  const results = {
    "lfs.objects": objects.length,
    "lfs.bytes": total,
    "lfs.primary_wan50_ms": Math.round(median(primaryMs)),
    "lfs.cold_wan50_ms": Math.round(median(coldMs)),
    "lfs.warm_wan50_ms": Math.round(median(warmMs)),
    "lfs.cold_ratio_vs_primary_wan50": ratio(median(primaryMs), median(coldMs), 2),
    "lfs.warm_ratio_vs_primary_wan50": ratio(median(primaryMs), median(warmMs), 2),
  };
  const notes = [
    `\`git lfs fetch origin main\` (git-lfs 3.3, its default 8 concurrent transfers) of ${objects.length} objects of ${objectBytes >> 20} MiB (${(total / 2 ** 20).toFixed(0)} MiB, random bytes), into a fresh clone each time (the clone itself, pointers only, is not timed). Median of ${ROUNDS} rounds; each round runs primary, cold, warm in that order.`,
    `primary_wan50: lfs.url set to the primary's LFS endpoint (the Bitbucket double + primaryLfs.ts, HTTPS) through a userspace proxy adding ${WAN_DELAY_MS} ms each way (TCP handshake charged, 4 MiB in flight per direction). cold: through the mirror (built daemon behind the nginx site, TLS, auth=primary) with its LFS store emptied first: each object is fetched once from the primary over the same proxy (checked: exactly ${objects.length} upstream downloads) and streamed to the client while it is written and checked. warm: the same, served from the mirror's store (checked: no upstream download). The client is on loopback next to the mirror.`,
    "Ratios: the primary's time / the mirror's (above 1: the mirror is faster). Cold is the same WAN transfer as the direct fetch plus the mirror's own batch round trip to the primary and its access check (the two land within run-to-run noise of each other on this shared machine); warm has no WAN in the path at all.",
  ].join("\n\n");
  return { results, notes, goals: { "lfs.warm_ratio_vs_primary_wan50": ">= 1" } };
}

export const lfsBenchmark: Benchmark = {
  name: "lfs",
  summary: "git lfs fetch of a 128 MiB object set via the mirror cold and warm vs straight from the primary over 50 ms WAN",
  run,
};
