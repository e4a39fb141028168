/**
 * kill -9 during real fetches of repositories with large packs, then convergence: what the
 * crash test (test/integration/daemonCli.test.ts, a few kills) and the reliability benchmark
 * (bench/reliability.ts, >= 100 kills) both run.
 *
 * Each round moves the primary (a 3 MB incompressible commit to BIG/bulk, rewrites of small
 * repositories, and every few rounds a new copy of a largeRepo.ts repository, so first clones
 * are killed too), starts the daemon, waits until a pack is streaming into the mirror
 * (objects/pack/tmp_pack_*), kills the daemon's whole process tree a random moment later, and
 * runs `git fsck --strict` on every repository in service. At the end one more start must
 * converge: /status SYNCHRONIZED with every repository synced (only said after the first
 * reconcile round), refs and objects equal to the primary's, and no temporary file left.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { getJson, killTree9, runDaemon, StatusDoc } from "./daemonProcess";
import { ensureLargeRepo, LargeRepoParams } from "./largeRepo";
import { makeMirrorHome, MirrorHome, writeMirrorProperties } from "./mirrorHome";
import { Primary } from "./primary";
import { assertSameRefsAndObjects, seededRandom, workingClone, WorkingClone } from "./repos";
import { freePort, waitFor } from "./resources";
import { homePath, homePaths, repoDir } from "../sync/homeLayout";
import { localRepoIds, TEMP_MIN_AGE_MS } from "../sync/store/repoStore";

/** ~12 MB packed, mostly incompressible base64 assets: first clones take a while. */
export const KILL_LARGE_REPO: Partial<LargeRepoParams> = { commits: 120, files: 300, filesPerCommit: 3, dirFanout: 4, meanFileBytes: 60000, assetEvery: 1, branches: 2, commitsPerBranch: 5, tagEvery: 40, seed: 11, repack: true };

export interface KillCampaignOptions {
  kills: number;
  seed?: number;
  /** Incompressible bytes pushed to BIG/bulk before each round. */
  bulkBytes?: number;
  /** A new large repository (a first clone) every this many rounds. */
  newRepoEvery?: number;
  /** mirror.sync.firstCloneStepMb for the daemon (small, so first clones go stepwise). */
  firstCloneStepMb?: number;
  log?: (msg: string) => void;
}

export interface KillCampaignResult {
  kills: number;
  /** Kills that landed while a pack was streaming in (tmp_pack_* present at the kill). */
  killsDuringFetch: number;
  /** Of those, kills during a first clone (a pack streaming into repos/.incoming/). */
  killsDuringFirstClone: number;
  /** Repositories in service that failed `git fsck --strict` after a kill, summed over kills. */
  corruptRepos: number;
  fsckRuns: number;
  /** Temporary files and dirs left after convergence (see leftoverTempFiles). */
  leftovers: string[];
  /** Every repository's refs and objects equal to the primary's after convergence. */
  refsEqual: boolean;
  repos: number;
  /** From the last start to /status SYNCHRONIZED with every repository synced. */
  convergeMs: number;
  /** Pack bytes the mirror holds at the end. */
  mirrorPackBytes: number;
  problems: string[];
}

/**
 * What a killed git or daemon can leave behind and nothing should, once the mirror has
 * converged: pack temporaries, lock files, atomic-write temporaries, receive quarantines,
 * half-made first clones (.incoming) and trash.
 */
export function leftoverTempFiles(home: string): string[] {
  const p = homePaths(home);
  const out: string[] = [];
  const temp = /^(tmp_(pack|idx|rev)_|\.tmp-\d+-pack|incoming-)|\.lock$|\.tmp-\d+$/;
  const walk = (d: string, depth: number) => {
    let entries: fs.Dirent[] = [];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const f = path.join(d, e.name);
      if (f === p.incoming || f === p.trash) {
        for (const x of fs.readdirSync(f)) out.push(path.join(f, x));
        continue;
      }
      if (temp.test(e.name)) out.push(f);
      else if (e.isDirectory() && depth < 12) walk(f, depth + 1);
    }
  };
  walk(p.repos, 0);
  for (const f of fs.readdirSync(p.dataDir, { withFileTypes: true })) if (/\.tmp-\d+$/.test(f.name)) out.push(path.join(p.dataDir, f.name));
  return out.sort();
}

/** Repositories in service under the home (not .incoming), as the store lists them. */
function servedRepoDirs(home: string): string[] {
  return localRepoIds(home).map((id) => repoDir(home, id));
}

/** Which packs are streaming in right now: "first" (into .incoming), "update", or undefined. */
export function streaming(home: string): "first" | "update" | undefined {
  const has = (repo: string) => {
    try {
      return fs.readdirSync(path.join(repo, "objects", "pack")).some((f) => f.startsWith("tmp_pack_"));
    } catch {
      return false;
    }
  };
  const inc = homePath(home, "incoming");
  for (const d of fs.existsSync(inc) ? fs.readdirSync(inc) : []) if (has(path.join(inc, d))) return "first";
  return servedRepoDirs(home).some(has) ? "update" : undefined;
}

function fsckStrict(dir: string): string | undefined {
  try {
    execFileSync("git", ["fsck", "--strict", "--no-dangling", "--no-progress"], { cwd: dir, stdio: "pipe" });
    return undefined;
  } catch (e) {
    return String((e as { stderr?: Buffer }).stderr ?? e).slice(0, 500);
  }
}

function packBytesOf(home: string): number {
  let total = 0;
  for (const r of servedRepoDirs(home)) for (const f of fs.readdirSync(path.join(r, "objects", "pack"))) if (f.endsWith(".pack")) total += fs.statSync(path.join(r, "objects", "pack", f)).size;
  return total;
}

export async function runKillCampaign(primary: Primary, o: KillCampaignOptions): Promise<KillCampaignResult> {
  const log = o.log ?? (() => undefined);
  const rnd = seededRandom(o.seed ?? 42);
  const large = await ensureLargeRepo(KILL_LARGE_REPO);
  const repos = [{ project: "BIG", slug: "large" }, { project: "BIG", slug: "bulk" }, { project: "PROJ", slug: "a" }, { project: "PROJ", slug: "b" }];
  await primary.importRepo("BIG", "large", large);
  const small: WorkingClone[] = [];
  for (const r of repos.slice(1)) {
    await primary.createRepo(r.project, r.slug);
    const wc = await workingClone(primary.remote(r.project, r.slug));
    await wc.commit({ "README.md": `${r.slug}\n` });
    await wc.tag("v1", { message: "one" });
    await wc.pushAll();
    small.push(wc);
  }
  const [bulk, a, b] = small;
  const mh: MirrorHome = await makeMirrorHome(primary);
  const port = await freePort();
  const writeProps = () => writeMirrorProperties(mh, primary, { repos, listen: `127.0.0.1:${port}`, extra: { "mirror.sync.concurrency": "4", "mirror.sync.firstCloneStepMb": String(o.firstCloneStepMb ?? 2) } });
  const res: KillCampaignResult = { kills: 0, killsDuringFetch: 0, killsDuringFirstClone: 0, corruptRepos: 0, fsckRuns: 0, leftovers: [], refsEqual: false, repos: 0, convergeMs: 0, mirrorPackBytes: 0, problems: [] };

  for (let i = 0; i < o.kills; i++) {
    await bulk.commit({ "bulk.bin": randomBytes(o.bulkBytes ?? 3 * 1024 * 1024) }, { message: `bulk ${i}` });
    await bulk.push(["main"]);
    const wc = i % 2 === 0 ? a : b;
    await wc.commit({ [`f${i}.txt`]: `change ${i}\n` });
    if (i % 3 === 0) await wc.forcePushRewrite("main", { [`rw${i}.txt`]: "rewrite\n" });
    else await wc.push(["main"]);
    if (i > 0 && i % (o.newRepoEvery ?? 4) === 0) {
      const id = { project: "NEW", slug: `r${i}` };
      await primary.importRepo(id.project, id.slug, large);
      repos.push(id);
    }
    writeProps();
    const p = runDaemon(mh.home);
    // A pack streaming in (or, rarely, everything already done: then the kill is "idle").
    const t0 = Date.now();
    let kind: "first" | "update" | undefined;
    while (Date.now() - t0 < 30000 && p.child.exitCode === null) {
      kind = streaming(mh.home);
      if (kind) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    if (p.child.exitCode !== null) throw new Error(`daemon exited during kill round ${i}:\n${p.output()}`);
    // Half the kills at once, half up to 1.5 s later: steps of a first clone complete (so it
    // progresses across kills and later rounds kill update fetches too).
    await new Promise((r) => setTimeout(r, Math.floor(rnd() < 0.5 ? rnd() * 60 : rnd() * 1500)));
    kind = streaming(mh.home);
    killTree9(p.child.pid!);
    await p.exited;
    res.kills++;
    if (kind) res.killsDuringFetch++;
    if (kind === "first") res.killsDuringFirstClone++;
    for (const dir of servedRepoDirs(mh.home)) {
      res.fsckRuns++;
      const problem = fsckStrict(dir);
      if (problem !== undefined) {
        res.corruptRepos++;
        res.problems.push(`round ${i}: ${path.relative(mh.home, dir)}: ${problem}`);
      }
    }
    log(`kill ${i + 1}/${o.kills}: ${kind ? `during ${kind === "first" ? "a first clone" : "a fetch"}` : "idle"}; corrupt so far ${res.corruptRepos}`);
  }

  writeProps();
  const t0 = Date.now();
  const final = runDaemon(mh.home);
  try {
    const doc = await waitFor(
      `/status SYNCHRONIZED with ${repos.length}/${repos.length} repositories synced`,
      async () => {
        const d = (await getJson(port, "/status")).body as StatusDoc;
        return d?.state === "SYNCHRONIZED" && d.syncedRepos === repos.length && d.totalRepos === repos.length ? d : undefined;
      },
      600000,
      50,
    );
    res.convergeMs = Date.now() - t0;
    res.repos = doc.totalRepos;
    // Temp files too young for the start's sweep (TEMP_MIN_AGE_MS) go in its second sweep.
    await new Promise((r) => setTimeout(r, Math.max(0, t0 + TEMP_MIN_AGE_MS + 2500 - Date.now())));
    // Converged means converged: the refs /status vouches for are the primary's, at once.
    const problems: string[] = [];
    for (const r of repos) {
      const dir = repoDir(mh.home, r);
      try {
        await assertSameRefsAndObjects(primary.repoPath(r.project, r.slug), dir);
      } catch (e) {
        problems.push(`${r.project}/${r.slug}: ${(e as Error).message.slice(0, 300)}`);
      }
    }
    res.refsEqual = problems.length === 0;
    res.problems.push(...problems);
    const m = await getJson(port, "/metrics");
    if (!String(m.body).includes("smart_mirror_")) res.problems.push("no metrics after convergence");
  } finally {
    final.child.kill("SIGTERM");
    const code = await final.exited;
    if (code !== 0) res.problems.push(`daemon exited ${code} on SIGTERM: ${final.output().slice(-2000)}`);
  }
  for (const dir of servedRepoDirs(mh.home)) {
    res.fsckRuns++;
    const problem = fsckStrict(dir);
    if (problem !== undefined) {
      res.corruptRepos++;
      res.problems.push(`after convergence: ${path.relative(mh.home, dir)}: ${problem}`);
    }
  }
  res.leftovers = leftoverTempFiles(mh.home);
  res.mirrorPackBytes = packBytesOf(mh.home);
  return res;
}
