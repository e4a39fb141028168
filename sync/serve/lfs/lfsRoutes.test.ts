/**
 * The LFS routes in process against the test primary's real LFS endpoint (the Bitbucket double
 * over HTTPS with primaryLfs.ts): the bounds and refusals that the end-to-end suite
 * (test/integration/lfsThroughMirror.test.ts) does not reach - a nearly full data volume,
 * the object size limit, the primary's LFS endpoint down for a miss, writes in a mode where
 * the client's credentials are not the primary's, and oids that are not oids.
 */
import * as http from "node:http";
import { randomBytes } from "node:crypto";
import { Registry } from "prom-client";
import { anonymousAuthorizer } from "../../auth/authorizer";
import { request } from "../../../testbed/httpClient";
import { LfsPrimary, startLfsPrimary } from "../../../testbed/lfsFixture";
import type { LfsObject } from "../../../testbed/primaryLfs";
import { onCleanup, tempDir } from "../../../testbed/resources";
import { listen, ListenAddress } from "../listen";
import { Router } from "../router";
import { BodyBudget } from "../bodyBudget";
import { stalledPost } from "../../../testbed/stalledBody";
import { LfsRoutes, mountLfsRoutes } from ".";
import { commitLfsFiles } from "../../../testbed/lfsFixture";
import { initBare, workingClone } from "../../../testbed/repos";

jest.setTimeout(60_000);

const LFS_JSON = "application/vnd.git-lfs+json";
let lp: LfsPrimary;
let small: LfsObject;
let big: LfsObject;

beforeAll(async () => {
  lp = await startLfsPrimary({ publicRead: () => true });
  lp.double.addRepo("P", "r");
  small = lp.lfs.addObject("P", "r", randomBytes(1000));
  big = lp.lfs.addObject("P", "r", randomBytes(300_000));
});

async function mirror(o: { diskRoom?: (n: number) => boolean; maxObjectBytes?: number } = {}): Promise<ListenAddress> {
  return (await mirrorRoutes(o)).at;
}

async function mirrorRoutes(o: { diskRoom?: (n: number) => boolean; maxObjectBytes?: number; prefetch?: boolean; bodyBudget?: BodyBudget; bodyIdleMs?: number } = {}): Promise<{ at: ListenAddress; routes: LfsRoutes }> {
  const router = new Router();
  const dir = tempDir("lfs-routes");
  const routes = mountLfsRoutes(router, {
    resolve: (project, slug) => (project === "P" && slug === "r" ? { project, slug, dir } : undefined),
    authorizer: anonymousAuthorizer(),
    primaryUrl: lp.double.url,
    caPem: lp.ca.certPem,
    baseUrl: "https://mirror.example",
    storeDir: `${dir}/objects`,
    incomingDir: `${dir}/incoming`,
    maxObjectBytes: o.maxObjectBytes ?? 0,
    diskRoom: o.diskRoom ?? (() => true),
    prefetch: o.prefetch,
    registry: new Registry(),
    bodyBudget: o.bodyBudget,
    bodyIdleMs: o.bodyIdleMs,
  });
  const server = http.createServer(router.handle);
  const at = await listen(server, "127.0.0.1:0");
  onCleanup(() => {
    routes.close();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { at, routes };
}

const batch = (at: ListenAddress, objects: LfsObject[], operation = "download") =>
  request(at, { method: "POST", path: "/scm/P/r.git/info/lfs/objects/batch", headers: { Accept: LFS_JSON, "Content-Type": LFS_JSON }, body: JSON.stringify({ operation, objects }) });
type Answer = { objects: { oid: string; error?: { code: number; message: string }; actions?: { download?: { href: string } } }[] };

test("a nearly full data volume: misses get 507 naming the setting, objects already stored are still served", async () => {
  let room = true;
  const at = await mirror({ diskRoom: () => room });
  expect((await request(at, { path: `/scm/P/r.git/info/lfs/objects/${small.oid}` })).status).toBe(200);
  room = false;
  const r = (await batch(at, [small, big])).json() as Answer;
  expect(r.objects[0].actions?.download?.href).toBe(`https://mirror.example/scm/P/r.git/info/lfs/objects/${small.oid}`);
  expect(r.objects[1].error).toMatchObject({ code: 507, message: expect.stringMatching(/mirror\.disk\.minFreeMb/) });
  // A transfer asked for anyway (an href from an earlier batch) is refused the same way.
  const get = await request(at, { path: `/scm/P/r.git/info/lfs/objects/${big.oid}` });
  expect(get.status).toBe(507);
  expect(get.body).toMatch(/mirror\.disk\.minFreeMb/);
  expect((await request(at, { path: `/scm/P/r.git/info/lfs/objects/${small.oid}` })).status).toBe(200);
});

test("client bodies share the daemon-wide body budget and its idle timeout: 503 with Retry-After when spent, 408 when a body stalls", async () => {
  const spent = await mirrorRoutes({ bodyBudget: new BodyBudget(10) });
  const r = await batch(spent.at, [small]);
  expect(r.status).toBe(503);
  expect(r.headers["retry-after"]).toBe("5");
  const idle = await mirrorRoutes({ bodyBudget: new BodyBudget(1 << 20), bodyIdleMs: 300 });
  if (idle.at.kind !== "tcp") throw new Error("a TCP listener was asked for");
  const stalled = stalledPost(idle.at.port, "/scm/P/r.git/info/lfs/objects/batch", 1000, { Accept: LFS_JSON, "Content-Type": LFS_JSON });
  expect(await stalled.answer).toBe(408);
});

test("objects over mirror.lfs.maxObjectSizeMb get a 422 object error naming the key; smaller ones are served", async () => {
  const at = await mirror({ maxObjectBytes: 100_000 });
  const r = (await batch(at, [small, big])).json() as Answer;
  expect(r.objects[0].actions?.download).toBeDefined();
  expect(r.objects[1].error).toMatchObject({ code: 422, message: expect.stringMatching(/mirror\.lfs\.maxObjectSizeMb/) });
});

test("the primary's LFS endpoint down: a miss is a 502 object error saying so, not a failed batch", async () => {
  const at = await mirror();
  lp.lfs.setDown(true);
  try {
    const res = await batch(at, [big]);
    expect(res.status).toBe(200);
    expect((res.json() as Answer).objects[0].error).toMatchObject({ code: 502, message: expect.stringMatching(/primary's LFS endpoint answered 503/) });
  } finally {
    lp.lfs.setDown(false);
  }
});

test("uploads and locks are not relayed when clients' credentials are not the primary's (auth anonymous/tokens)", async () => {
  const at = await mirror();
  const up = await batch(at, [{ oid: "b".repeat(64), size: 3 }], "upload");
  expect(up.status).toBe(403);
  expect(up.body).toMatch(/push LFS objects to the primary/);
  expect((await request(at, { method: "PUT", path: `/scm/P/r.git/info/lfs/objects/${"b".repeat(64)}`, body: "abc" })).status).toBe(403);
  expect((await request(at, { method: "POST", path: "/scm/P/r.git/info/lfs/locks/verify", body: "{}" })).status).toBe(403);
});

test("oids that are not oids never reach the store; a repository not served is 404", async () => {
  const at = await mirror();
  const r = (await batch(at, [{ oid: "../../../etc/passwd", size: 1 }])).json() as Answer;
  expect(r.objects[0].error?.code).toBe(422);
  expect((await request(at, { path: "/scm/P/r.git/info/lfs/objects/..%2f..%2fetc%2fpasswd" })).status).toBe(400);
  expect((await request(at, { path: `/scm/P/other.git/info/lfs/objects/${small.oid}` })).status).toBe(404);
});

test("prefetch: the LFS objects of the commits a sync brought are fetched into the store, nothing older, nothing twice", async () => {
  const bare = await initBare(`${tempDir("lfs-prefetch")}/r.git`);
  const wc = await workingClone(bare);
  const first = await commitLfsFiles(wc, lp.lfs, "P", "r", { "a.bin": randomBytes(5000) });
  const before = await wc.git(["rev-parse", "HEAD"]);
  const second = await commitLfsFiles(wc, lp.lfs, "P", "r", { "b.bin": randomBytes(7000), "c.bin": randomBytes(100) });
  await wc.commit({ "notes.txt": "version https://git-lfs.github.com/spec/v1 is not a pointer by itself\n" });
  const after = await wc.git(["rev-parse", "HEAD"]);
  await wc.push(["HEAD:refs/heads/main"]);
  const { routes } = await mirrorRoutes({ prefetch: true });
  const prefetcher = routes.prefetcher!;

  prefetcher.enqueue({ project: "P", slug: "r" }, bare, [{ fromHash: before.trim(), toHash: after.trim() }]);
  await prefetcher.idle();
  expect(routes.store.size(second["b.bin"].oid)).toBe(7000);
  expect(routes.store.size(second["c.bin"].oid)).toBe(100);
  expect(routes.store.size(first["a.bin"].oid)).toBeUndefined();

  // A new ref (from zero): its whole history; what is stored already is not fetched again.
  prefetcher.enqueue({ project: "P", slug: "r" }, bare, [{ fromHash: "0".repeat(40), toHash: after.trim() }]);
  await prefetcher.idle();
  expect(routes.store.size(first["a.bin"].oid)).toBe(5000);
  expect(lp.lfs.downloads(second["b.bin"].oid)).toBe(1);
});
