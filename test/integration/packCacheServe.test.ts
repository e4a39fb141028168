/**
 * The pack cache (sync/serve/git/packCache.ts) in the daemon's git smart HTTP handler, with
 * real git clients on loopback: identical clones share one upload-pack run, every clone is
 * still an exact copy, a sync (new refs, new fingerprint) is never answered from an older
 * state, shallow/partial/incremental requests come through intact, and bodies too big to key
 * on stream to git uncached.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { gzipSync } from "node:zlib";
import { Registry } from "prom-client";
import { anonymousAuthorizer } from "../../sync/auth/authorizer";
import { listen } from "../../sync/serve/listen";
import { Router } from "../../sync/serve/router";
import { createServer } from "../../sync/serve/server";
import { catalogResolver, mountGitRoutes } from "../../sync/serve/git";
import { MAX_WHOLE_RAW_BODY } from "../../sync/serve/git/admission";
import { PACK_CACHE_METRIC_NAMES } from "../../sync/serve/git/packCache";
import { pktLine } from "../../sync/serve/git/protocol";
import { StatusBoard } from "../../sync/state/statusBoard";
import { FINGERPRINT_FILE } from "../../sync/homeLayout";
import { packBytes } from "../../sync/store/packFiles";
import { assertSameRefsAndObjects, git, initBare, isolatedGitEnv, listRefs, workingClone, WorkingClone } from "../../testbed/repos";
import { processesOn } from "../../testbed/processes";
import { onCleanup, tempDir, waitFor } from "../../testbed/resources";

jest.setTimeout(240_000);

interface Srv {
  base: string;
  port: number;
  registry: Registry;
  cacheDir: string;
}

/** What the daemon does after a sync: record the ref state (here: any new text). */
function writeFingerprint(dir: string): void {
  fs.writeFileSync(path.join(dir, FINGERPRINT_FILE), `${Date.now()}-${Math.random()}\n`);
}

async function start(repos: Map<string, string>, o: { maxBytes?: number; maxRequestBytes?: number; scope?: "clones" | "all" } = {}): Promise<Srv> {
  const board = new StatusBoard({ info: { displayName: "test mirror" }, defaultMetrics: false });
  const router = new Router();
  const registry = board.metrics.registry;
  const cacheDir = path.join(tempDir("pack-cache"), "packs");
  const routes = mountGitRoutes(router, {
    resolve: catalogResolver((key) => repos.get(key)),
    authorizer: anonymousAuthorizer(),
    primaryUrl: "https://primary.example.com",
    gitEnv: isolatedGitEnv() as NodeJS.ProcessEnv,
    registry,
    // Every request through the cache unless a test asks for the default scope.
    packCache: { dir: cacheDir, maxBytes: o.maxBytes ?? 64 << 20, scope: o.scope ?? "all" },
    maxRequestBytes: o.maxRequestBytes,
  });
  const server = createServer({ board, router });
  const addr = await listen(server, "127.0.0.1:0");
  if (addr.kind !== "tcp") throw new Error("want tcp");
  onCleanup(async () => {
    routes.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { base: `http://127.0.0.1:${addr.port}`, port: addr.port, registry, cacheDir };
}

async function outcomes(s: Srv): Promise<Record<string, number>> {
  const m = s.registry.getSingleMetric(PACK_CACHE_METRIC_NAMES.requests);
  const out: Record<string, number> = { hit: 0, shared: 0, miss: 0 };
  for (const v of (await m?.get())?.values ?? []) out[String(v.labels.outcome)] = v.value;
  return out;
}

function post(port: number, p: string, headers: http.OutgoingHttpHeaders, body: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method: "POST", path: p, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("latin1") }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("git smart HTTP with the pack cache", () => {
  let dir: string;
  let wc: WorkingClone;
  let srv: Srv;
  const repos = new Map<string, string>();

  beforeAll(async () => {
    dir = await initBare(path.join(tempDir("served"), "PROJ", "app.git"));
    wc = await workingClone(dir);
    for (let i = 0; i < 5; i++) await wc.commit({ [`src/f${i}.txt`]: `file ${i}\n`.repeat(2000), "docs/big.txt": `big ${i}\n`.repeat(20_000) });
    await wc.tag("v1", { message: "one" });
    await wc.branch("side");
    await wc.pushAll();
    writeFingerprint(dir);
    repos.set("PROJ/app", dir);
    srv = await start(repos);
  });

  test.each([0, 2])("clones over v%i: the second is answered from the cache, both exact copies", async (v) => {
    const before = await outcomes(srv);
    for (const n of [1, 2]) {
      const dest = path.join(tempDir("clone"), `c${n}.git`);
      await git(["-c", `protocol.version=${v}`, "clone", "--quiet", "--mirror", `${srv.base}/scm/PROJ/app.git`, dest]);
      await assertSameRefsAndObjects(dir, dest);
    }
    const after = await outcomes(srv);
    const requests = v === 2 ? 3 : 2; // info/refs, [ls-refs,] fetch
    expect(after.miss - before.miss).toBeLessThanOrEqual(requests);
    expect(after.hit - before.hit).toBeGreaterThanOrEqual(requests);
  });

  test("12 identical clones at once: one git run per distinct request, every clone exact", async () => {
    const fresh = await start(repos);
    const dests = Array.from({ length: 12 }, (_, i) => path.join(tempDir("clone"), `p${i}.git`));
    await Promise.all(dests.map((d) => git(["clone", "--quiet", "--mirror", `${fresh.base}/scm/PROJ/app.git`, d])));
    for (const d of dests) await assertSameRefsAndObjects(dir, d);
    const o = await outcomes(fresh);
    expect(o.miss).toBe(3); // v2: info/refs, ls-refs, fetch — each made once
    expect(o.hit + o.shared).toBe(33);
    // The cache holds those three answers, nothing half-written.
    expect(fs.readdirSync(fresh.cacheDir)).toHaveLength(3);
  });

  test("the default scope (clones): clones are shared, an incremental fetch runs git and is served exactly", async () => {
    const fresh = await start(repos, { scope: "clones" });
    const url = `${fresh.base}/scm/PROJ/app.git`;
    const a = path.join(tempDir("clone"), "scope-a.git");
    const b = path.join(tempDir("clone"), "scope-b.git");
    await git(["clone", "--quiet", "--mirror", url, a]);
    await git(["clone", "--quiet", "--mirror", url, b]);
    expect(await outcomes(fresh)).toEqual({ miss: 3, hit: 3, shared: 0 });
    // A sync brings a commit; b fetches it: its haves make a request the cache leaves alone.
    await wc.commit({ "scope.txt": "scope\n" });
    await wc.pushAll();
    writeFingerprint(dir);
    await git(["--git-dir", b, "fetch", "--quiet", "--prune", "origin"]);
    await assertSameRefsAndObjects(dir, b);
    // The fetch's info/refs and ls-refs went through the cache (new state: misses), its POST did not.
    expect(await outcomes(fresh)).toEqual({ miss: 5, hit: 3, shared: 0 });
    expect(fs.readdirSync(fresh.cacheDir)).toHaveLength(5);
  });

  test("a repository whose packs exceed the budget: its clones are exact, served by git directly (too_large); its ref listings are still cached", async () => {
    await git(["--git-dir", dir, "repack", "-a", "-d", "-q"]);
    const packs = packBytes(dir);
    expect(packs).toBeGreaterThan(2_000); // room below it for the ref listings (a few hundred bytes)
    const fresh = await start(repos, { maxBytes: packs - 1, scope: "clones" });
    for (const n of [1, 2]) {
      const dest = path.join(tempDir("clone"), `too-large-${n}.git`);
      await git(["clone", "--quiet", "--mirror", `${fresh.base}/scm/PROJ/app.git`, dest]);
      await assertSameRefsAndObjects(dir, dest);
    }
    // v2: info/refs and ls-refs missed once, then hit; both fetches went around the cache.
    expect(await outcomes(fresh)).toEqual({ miss: 2, hit: 2, shared: 0, too_large: 2 });
    expect(fs.readdirSync(fresh.cacheDir)).toHaveLength(2);
  });

  test("after a sync (new refs, new fingerprint) clients get the new state, never the cached old one", async () => {
    const dest = path.join(tempDir("clone"), "before.git");
    await git(["clone", "--quiet", "--mirror", `${srv.base}/scm/PROJ/app.git`, dest]);
    const tip = await wc.commit({ "new.txt": "new\n" });
    await wc.pushAll();
    writeFingerprint(dir);
    const ls = await git(["ls-remote", `${srv.base}/scm/PROJ/app.git`, "refs/heads/main"]);
    expect(ls.startsWith(tip)).toBe(true);
    await git(["--git-dir", dest, "fetch", "--quiet", "--prune", "origin"]);
    await assertSameRefsAndObjects(dir, dest);
    const again = path.join(tempDir("clone"), "after.git");
    await git(["clone", "--quiet", "--mirror", `${srv.base}/scm/PROJ/app.git`, again]);
    expect(await listRefs(again)).toEqual(await listRefs(dir));
  });

  test("shallow and partial clones come through the cache intact (twice: generated, then cached)", async () => {
    for (const n of [1, 2]) {
      const shallow = path.join(tempDir("clone"), `s${n}`);
      await git(["clone", "--quiet", "--depth", "1", `${srv.base}/scm/PROJ/app.git`, shallow]);
      expect((await git(["rev-list", "--count", "HEAD"], { cwd: shallow })).trim()).toBe("1");
      const partial = path.join(tempDir("clone"), `f${n}`);
      await git(["clone", "--quiet", "--filter=blob:none", `${srv.base}/scm/PROJ/app.git`, partial]);
      expect(fs.readFileSync(path.join(partial, "docs/big.txt"), "utf8")).toBe(fs.readFileSync(path.join(shallow, "docs/big.txt"), "utf8"));
    }
  });

  test("bodies too big to key on stream to git uncached; gzip bombs and bad gzip are still refused", async () => {
    const before = await outcomes(srv);
    const headers = { "Content-Type": "application/x-git-upload-pack-request", "Git-Protocol": "version=2" };
    // ls-refs with > 1 MiB of ref-prefix arguments (git reads them all, then lists what matches).
    const args = Buffer.concat(Array.from({ length: Math.ceil(MAX_WHOLE_RAW_BODY / 20) + 100 }, () => pktLine("ref-prefix refs/x/\n")));
    const big = Buffer.concat([pktLine("command=ls-refs\n"), Buffer.from("0001"), args, pktLine("ref-prefix refs/heads/main\n"), Buffer.from("0000")]);
    expect(big.length).toBeGreaterThan(MAX_WHOLE_RAW_BODY);
    const r = await post(srv.port, "/scm/PROJ/app.git/git-upload-pack", headers, big);
    expect(r.status).toBe(200);
    expect(r.body).toContain(`${await wc.revParse("main")} refs/heads/main`);
    expect(await outcomes(srv)).toEqual(before); // not through the cache

    // 2 MiB of valid arguments in ~10 KiB of gzip, against a 256 KiB limit on decoded bytes.
    const small = await start(repos, { maxRequestBytes: 256 * 1024 });
    const bomb = gzipSync(Buffer.concat([pktLine("command=ls-refs\n"), Buffer.from("0001"), Buffer.concat(Array.from({ length: 110_000 }, () => pktLine("ref-prefix refs/x/\n"))), Buffer.from("0000")]));
    expect(bomb.length).toBeLessThan(MAX_WHOLE_RAW_BODY);
    expect((await post(small.port, "/scm/PROJ/app.git/git-upload-pack", { ...headers, "Content-Encoding": "gzip" }, bomb)).status).toBe(413);
    expect((await post(small.port, "/scm/PROJ/app.git/git-upload-pack", { ...headers, "Content-Encoding": "gzip" }, Buffer.from("not gzip"))).status).toBe(400);
  });

  test("a repository without the daemon's fingerprint is served, but never cached", async () => {
    const plain = await initBare(path.join(tempDir("served"), "PROJ", "plain.git"));
    const w = await workingClone(plain);
    await w.commit({ "a.txt": "a\n" });
    await w.pushAll();
    repos.set("PROJ/plain", plain);
    const before = await outcomes(srv);
    const dest = path.join(tempDir("clone"), "plain.git");
    await git(["clone", "--quiet", "--mirror", `${srv.base}/scm/PROJ/plain.git`, dest]);
    await assertSameRefsAndObjects(plain, dest);
    expect(await outcomes(srv)).toEqual(before);
  });

  test("a client killed mid-clone, the only reader: git is stopped, nothing is left running or half-cached", async () => {
    const bigDir = await initBare(path.join(tempDir("served"), "TEAM", "big.git"));
    const w = await workingClone(bigDir);
    await w.commit({ "a.bin": randomBytes(4 << 20), "b.bin": randomBytes(4 << 20) });
    await w.pushAll();
    writeFingerprint(bigDir);
    repos.set("TEAM/big", bigDir);
    const fresh = await start(repos);
    const clone = spawn("git", ["clone", "--bare", `${fresh.base}/scm/TEAM/big.git`, path.join(tempDir("clone"), "big.git")], {
      env: isolatedGitEnv() as NodeJS.ProcessEnv,
      detached: true,
      stdio: "ignore",
    });
    const kill = () => {
      try {
        process.kill(-(clone.pid as number), "SIGKILL");
      } catch {
        /* gone */
      }
    };
    onCleanup(kill);
    const exited = new Promise((r) => clone.once("exit", r));
    const packObjects = await waitFor(
      "pack-objects for the big repository",
      () => {
        const ps = processesOn(bigDir).filter((p) => p.includes("pack-objects"));
        return ps.length > 0 ? ps : undefined;
      },
      60_000,
      2,
    );
    // Freeze it: it cannot finish on its own now, so only the cache killing it makes it go away.
    for (const p of packObjects) process.kill(parseInt(p, 10), "SIGSTOP");
    kill();
    await exited;
    await waitFor("no git process left on the big repository", () => processesOn(bigDir).length === 0, 15_000);
    // The small answers before the pack (info/refs, ls-refs) stay cached; no part of the pack does.
    const cachedBytes = () => fs.readdirSync(fresh.cacheDir).reduce((a, f) => a + fs.statSync(path.join(fresh.cacheDir, f)).size, 0);
    await waitFor("no part of the pack left in the cache", () => cachedBytes() < 64 * 1024 && fs.readdirSync(fresh.cacheDir).length <= 2, 5_000);
  });
});
