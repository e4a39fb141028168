import * as http from "node:http";
import { request } from "../../testbed/httpClient";
import { onCleanup } from "../../testbed/resources";
import { repoHashes } from "../consistency/repoHashes";
import type { ResyncResult } from "../daemon/daemon";
import { parseRepoKey } from "../types";
import { makeRefFilter } from "../upstream/refFilter";
import { listen, ListenAddress } from "./listen";
import { addMirroringRoutes, repoKeyFromPath } from "./mirroringRoutes";
import { Router } from "./router";

const A = "a".repeat(40);
const served = new Map([
  ["P/one", new Map([["refs/heads/main", A]])],
  ["P/two", new Map([["refs/heads/main", A], ["refs/tags/v1", A]])],
  ["Q/three", new Map<string, string>()],
]);
const resyncs: string[] = [];

async function serve(): Promise<ListenAddress> {
  const router = addMirroringRoutes(new Router(), {
    servedKeys: () => [...served.keys()].sort(),
    hashes: async (key) => {
      const refs = served.get(key);
      return refs && repoHashes(parseRepoKey(key), { refs, headTarget: "refs/heads/main" }, makeRefFilter([]));
    },
    resync: (key): Promise<ResyncResult> | undefined => {
      if (key === "P/broken") return Promise.resolve({ ok: false, error: "primary did not advertise refs" });
      if (!served.has(key)) return undefined;
      resyncs.push(key);
      return Promise.resolve({ ok: true });
    },
  });
  const server = http.createServer(router.handle);
  const at = await listen(server, "127.0.0.1:0");
  onCleanup(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return at;
}

let at: ListenAddress;
beforeAll(async () => {
  at = await serve();
});

test("repo-hashes: Bitbucket's paging around {projectKey, slug, contentHash, metadataHash}", async () => {
  const r = await request(at, { path: "/rest/mirroring/latest/repo-hashes?limit=2" });
  expect(r.status).toBe(200);
  const page = r.json() as { values: Array<Record<string, unknown>> };
  expect(page).toMatchObject({ size: 2, limit: 2, start: 0, isLastPage: false, nextPageStart: 2, total: 3 });
  expect(page.values[0]).toEqual({ projectKey: "P", slug: "one", contentHash: expect.stringMatching(/^[0-9a-f]{64}$/), metadataHash: expect.stringMatching(/^[0-9a-f]{64}$/), defaultBranch: "refs/heads/main", refs: 1 });
  const last = (await request(at, { path: "/rest/mirroring/latest/repo-hashes?start=2" })).json();
  expect(last).toMatchObject({ size: 1, isLastPage: true, values: [{ projectKey: "Q", slug: "three", refs: 0 }] });
  expect((await request(at, { path: "/rest/mirroring/latest/repo-hashes/P/two" })).json()).toMatchObject({ slug: "two", refs: 2 });
});

test("bad paging, unknown repositories and wrong methods are answered, not guessed", async () => {
  for (const q of ["?limit=0", "?limit=1001", "?start=-1", "?limit=x"]) expect((await request(at, { path: `/rest/mirroring/latest/repo-hashes${q}` })).status).toBe(400);
  for (const p of ["/rest/mirroring/latest/repo-hashes/P/nope", "/rest/mirroring/latest/repo-hashes/P", "/rest/mirroring/latest/repo-hashes/P/one/x", "/rest/mirroring/latest/repo-hashes/%E0%A4%A/x"]) {
    expect([p, (await request(at, { path: p })).status]).toEqual([p, 404]);
  }
  expect((await request(at, { method: "POST", path: "/rest/mirroring/latest/repo-hashes/P/one" })).status).toBe(405);
  expect((await request(at, { method: "GET", path: "/rest/mirroring/latest/repos/P/one/synchronization" })).status).toBe(405);
});

test("synchronization: answers when the sync ended; 404 for a repository not carried, 502 when the sync failed", async () => {
  const ok = await request(at, { method: "POST", path: "/rest/mirroring/latest/repos/P/one/synchronization" });
  expect([ok.status, ok.json()]).toEqual([200, { repository: "P/one", synced: true }]);
  expect(resyncs).toEqual(["P/one"]);
  expect((await request(at, { method: "POST", path: "/rest/mirroring/latest/repos/P/nope/synchronization" })).status).toBe(404);
  const failed = await request(at, { method: "POST", path: "/rest/mirroring/latest/repos/P/broken/synchronization" });
  expect([failed.status, failed.json()]).toEqual([502, { repository: "P/broken", synced: false, error: "primary did not advertise refs" }]);
});

test("internal only: a request that came through nginx (X-Forwarded-For / X-Real-IP) gets 404 on every route, and no sync runs", async () => {
  const before = resyncs.length;
  for (const header of ["X-Forwarded-For", "X-Real-IP"]) {
    for (const [method, p] of [["GET", "/rest/mirroring/latest/repo-hashes"], ["GET", "/rest/mirroring/latest/repo-hashes/P/one"], ["POST", "/rest/mirroring/latest/repos/P/one/synchronization"]]) {
      const r = await request(at, { method, path: p, headers: { [header]: "203.0.113.9" } });
      expect([header, p, r.status]).toEqual([header, p, 404]);
      expect(r.body).not.toMatch(/[0-9a-f]{64}/);
    }
  }
  expect(resyncs.length).toBe(before);
});

test("repoKeyFromPath", () => {
  expect(repoKeyFromPath("PROJ/app")).toBe("PROJ/app");
  expect(repoKeyFromPath("%7EJDOE/app")).toBe("~JDOE/app");
  for (const bad of ["PROJ", "PROJ/app/x", "/app", "PROJ/", "PROJ/a%2Fb", "%E0%A4%A/x"]) expect([bad, repoKeyFromPath(bad)]).toEqual([bad, undefined]);
});
