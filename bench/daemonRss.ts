/**
 * daemon_rss: the memory of the production daemon — the built bundle, `node
 * dist/smart-mirror.js run --home DIR`, as systemd runs it — holding 10,000 repositories:
 * a static catalog of 10,000 (mirror.catalog=static, mirror.catalog.repos), all present on the
 * primary and on the mirror, after the catalog is loaded and a full reconcile has checked
 * every one of them. VmRSS and VmHWM (peak) from /proc/PID/status; for reference, the RSS of a
 * bare idle `node`.
 *
 * The 10,000 repositories are hard-linked copies (cp -al) of one seed on the primary and of
 * the daemon's own mirror of it on the mirror side (see syncedMirror.ts), both on tmpfs (the
 * daemon only reads them here): the reconcile checks all 10,000 fingerprints against the
 * primary and must find nothing to fetch.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { getJson } from "../testbed/daemonProcess";
import { MirrorHome } from "../testbed/mirrorHome";
import { Primary, startPrimary } from "../testbed/primary";
import { freePort, spawnTracked, tempDir, TrackedProcess, waitFor } from "../testbed/resources";
import type { RepoId } from "../sync/types";
import { BenchContext, BenchOutcome, Benchmark } from "./benchmark";
import { accountOf, makeSeedRepo, mountTmpfs, populatePrimary } from "./fixtures";
import { scaled } from "./scale";
import { round } from "./stats";
import { syncedMirrorHome, syncedTemplate } from "./syncedMirror";
import { homePath } from "../sync/homeLayout";
import { KEYS } from "../sync/config/keys";

const FULL_REPOS = 10_000;
export const BUNDLE = path.resolve(__dirname, "..", "dist", "smart-mirror.js");

/** bitbucket.properties for the daemon under test (pure). */
export function benchProperties(primary: Pick<Primary, "user" | "host" | "port" | "hostKeyLine">, repos: RepoId[], listenPort: number, extra: [string, string][] = []): string {
  const lines: [string, string][] = [
    ["setup.displayName", "Bench mirror"],
    ["setup.baseUrl", "https://mirror.bench.invalid"],
    ["plugin.mirroring.upstream.url", "https://primary.bench.invalid"],
    ["mirror.upstream.sshUrl", `ssh://${primary.user}@${primary.host}:${primary.port}`],
    ["mirror.upstream.hostKeys", primary.hostKeyLine],
    ["mirror.catalog", "static"],
    ["mirror.catalog.repos", repos.map((r) => `${r.project}/${r.slug}`).join(",")],
    ["mirror.serve.listen", `127.0.0.1:${listenPort}`],
    ["mirror.serve.auth", "anonymous"],
    ["mirror.log.level", "warn"],
    ...extra,
  ];
  return lines.map(([k, v]) => `${k}=${v}`).join("\n") + "\n";
}

/** VmRSS and VmHWM of a process, in MiB. */
export function memoryOf(pid: number): { rssMb: number; hwmMb: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
    if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
    return Number(m[1]);
  };
  return { rssMb: kb("VmRSS") / 1024, hwmMb: kb("VmHWM") / 1024 };
}

interface StatusDoc {
  state?: string;
  totalRepos?: number;
  syncedRepos?: number;
  lastReconcile?: { result: string; durationMs: number; checked: number; changed: number };
}

async function getStatus(port: number): Promise<StatusDoc> {
  return (await getJson(port, "/status/detail", 10000)).body as StatusDoc;
}

function alive(p: TrackedProcess): void {
  if (p.child.exitCode !== null || p.child.signalCode !== null) throw new Error(`the daemon exited (${p.child.exitCode ?? p.child.signalCode}): ${p.output().trim()}`);
}

/** RSS of `node` doing nothing, for reference. */
async function bareNodeRssMb(): Promise<number> {
  // The temp dir on the command line lets the leak check see this process if it outlives us.
  const marker = tempDir("bare-node");
  const p = spawnTracked(process.execPath, ["-e", "setTimeout(() => {}, 600000)", marker]);
  try {
    await new Promise((r) => setTimeout(r, 1500));
    alive(p);
    return memoryOf(p.child.pid as number).rssMb;
  } finally {
    await p.stop();
  }
}

async function run(ctx: BenchContext): Promise<BenchOutcome> {
  if (!fs.existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run \`npm run build\` first (npm run bench does)`);
  const n = scaled(FULL_REPOS, ctx.scale, 100);
  const primary = await startPrimary({ label: "bench-primary" });
  ctx.log(`making ${n} repositories on the primary and a synced mirror of them (hard links)`);
  // Both repository trees on tmpfs: tens of thousands of entries would take minutes to delete
  // on this disk; the daemon only reads them (ref scans compare fingerprints).
  const tmpfsMb = Math.max(256, Math.ceil(n / 20));
  await mountTmpfs(primary.reposRoot, accountOf(primary), tmpfsMb);
  const ids = await populatePrimary(primary, await makeSeedRepo(), n, { link: true });
  const template = await syncedTemplate(primary, ids[0]);
  const mh: MirrorHome = await syncedMirrorHome(primary, template, n, { link: true, tmpfsMb });
  const port = await freePort();
  // This bench measures memory after every repository was compared once: no scan budget
  // (the default budget spreads a start without a scan ledger over rounds; see bench/scaleBench.ts).
  fs.writeFileSync(homePath(mh.home, "properties"), benchProperties(primary, ids, port, [[KEYS.scanMaxPerSecond.name, "100000"]]));

  ctx.log(`starting the built daemon (${path.relative(process.cwd(), BUNDLE)}) with a catalog of ${n}`);
  const t0 = performance.now();
  const daemon = spawnTracked(process.execPath, [BUNDLE, "run", "--home", mh.home]);
  const pid = daemon.child.pid as number;
  const loaded = await waitFor(
    "the daemon's /status to list the catalog",
    async () => {
      alive(daemon);
      const s = await getStatus(port);
      return s.totalRepos === n ? s : undefined;
    },
    120_000,
    50,
  );
  const atCatalog = memoryOf(pid);
  ctx.log(`catalog loaded (${loaded.totalRepos} repos, state ${loaded.state}): RSS ${round(atCatalog.rssMb)} MiB; waiting for the first reconcile`);
  let peakSampled = atCatalog.rssMb;
  const reconciled = await waitFor(
    "the first reconcile to finish",
    async () => {
      alive(daemon);
      peakSampled = Math.max(peakSampled, memoryOf(pid).rssMb);
      const s = await getStatus(port);
      return s.lastReconcile ? s : undefined;
    },
    Math.max(600_000, n * 100),
    500,
  );
  const reconcileWallMs = performance.now() - t0;
  const r = reconciled.lastReconcile as NonNullable<StatusDoc["lastReconcile"]>;
  if (r.result !== "ok" || r.checked !== n || r.changed !== 0) throw new Error(`expected a no-change reconcile of ${n} repositories, got ${JSON.stringify(r)}`);
  // Let the reconcile's garbage be collected as it would be in a long-running process.
  await new Promise((res) => setTimeout(res, 3000));
  alive(daemon);
  const after = memoryOf(pid);
  const status = await getStatus(port);
  await daemon.stop();
  const bare = await bareNodeRssMb();

  const results = {
    "daemon.repos": n,
    "daemon.rss_mb_10k_repos": round(after.rssMb),
    "daemon.peak_rss_mb_10k_repos": round(after.hwmMb),
    "daemon.rss_mb_catalog_loaded": round(atCatalog.rssMb),
    "daemon.node_bare_rss_mb": round(bare),
    "daemon.rss_mb_over_bare_node": round(after.rssMb - bare),
    "daemon.reconcile_ms": r.durationMs,
    "daemon.start_to_reconciled_ms": Math.round(reconcileWallMs),
  };
  const notes = [
    `The built bundle (node ${process.version} dist/smart-mirror.js run --home DIR) as a subprocess, with a static catalog of ${n} repositories (mirror.catalog.repos) and production defaults otherwise except no scan budget (mirror.scan.maxPerSecond=100000, so the start compares all at once as before budgets), (scan parallelism 16 over 2 connections, sync concurrency 8, prom-client default metrics on, log level warn).`,
    `The ${n} repositories exist on the primary (hard-linked copies of one seed) and on the mirror (hard-linked copies of the daemon's own synced mirror of it, refs packed), both trees on tmpfs (only read here; deleting that many files from this disk takes minutes); the daemon's reconcile at start checked all ${n} against the primary's advertisements and found none changed (state ${status.state}, ${status.syncedRepos}/${status.totalRepos} synced), in ${r.durationMs} ms.`,
    `rss: VmRSS 3 s after that reconcile finished; peak: VmHWM over the whole run; rss_mb_catalog_loaded: VmRSS as soon as /status listed the catalog. Reference: a bare idle \`node -e\` has ${round(bare)} MiB RSS.`,
    `Not covered: the peak during an initial sync of ${n} repositories (the bench primary would need tens of minutes for ${n} first fetches).`,
  ].join("\n\n");
  return { results, notes, goals: { "daemon.rss_mb_10k_repos": "<= 150", "daemon.peak_rss_mb_10k_repos": "<= 150" } };
}

export const daemonRssBenchmark: Benchmark = {
  name: "daemon_rss",
  summary: "RSS of the built daemon with a 10,000-repository catalog after a full reconcile, vs bare node",
  run,
};
