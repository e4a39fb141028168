/**
 * The long-poll over real HTTP, on a real bare repository: answers at once when the object is
 * there, wakes on a sync notice (not by polling: the number of git checks is counted), times
 * out with present:false, refuses bad input and hides repositories the caller may not read.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { Registry } from "prom-client";
import { anonymousAuthorizer, Authorizer, tokensAuthorizer } from "../auth/authorizer";
import { TokenStore } from "../auth/tokensFile";
import { initBare, workingClone } from "../../testbed/repos";
import { onCleanup, tempDir } from "../../testbed/resources";
import { CommitWaiters } from "../wait/commitWaiters";
import { objectsPresent } from "../wait/objectsPresent";
import { catalogResolver } from "./git/resolver";
import { request, TestResponse } from "../../testbed/httpClient";
import { Router } from "./router";
import { waitHandler } from "./waitHandler";
import { parseWaitRequest, WAIT_MAX_SECONDS, WAIT_PREFIX } from "./waitRequest";

jest.setTimeout(60_000);

async function setup(opts: { authorizer?: Authorizer; maxWaiters?: number } = {}) {
  const bare = await initBare(path.join(tempDir("wait"), "app.git"));
  const wc = await workingClone(bare);
  const first = await wc.commit({ "a.txt": "1\n" });
  await wc.push(["main"]);
  let checks = 0;
  const registry = new Registry();
  const waiters = new CommitWaiters({
    maxWaiters: opts.maxWaiters ?? 10,
    registry,
    check: (dir, names) => {
      checks++;
      return objectsPresent(dir, names);
    },
  });
  const router = new Router();
  const resolve = catalogResolver((key) => (key === "PROJ/app" ? bare : undefined));
  router.mount(WAIT_PREFIX, waitHandler({ resolve, authorizer: opts.authorizer ?? anonymousAuthorizer(), waiters }));
  const server = http.createServer(router.handle);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  onCleanup(() => {
    waiters.close();
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  const port = (server.address() as AddressInfo).port;
  const get = (target: string, headers: http.OutgoingHttpHeaders = {}): Promise<TestResponse> => request({ kind: "tcp", host: "127.0.0.1", port }, { path: target, headers });
  return { bare, wc, first, waiters, registry, get, port, checks: () => checks };
}

test("present at once; woken by the sync notice once the commit arrives; one git check per wake", async () => {
  const s = await setup();
  const now = await s.get(`/status/repos/PROJ/app/wait?commit=${s.first}`);
  expect(now.status).toBe(200);
  expect(now.json()).toMatchObject({ repository: "PROJ/app", commit: s.first, present: true });

  const next = await s.wc.commit({ "a.txt": "2\n" }); // made, not pushed yet
  const checksBefore = s.checks();
  const answer = s.get(`/status/repos/proj/app/wait?commit=${next.toUpperCase()}&timeout=60`);
  await waitUntil(() => s.waiters.waiting === 1);
  expect(s.checks()).toBe(checksBefore + 1); // the check at registration: not there
  await s.wc.push(["main"]); // the "sync": the object lands in the repository...
  expect(s.waiters.waiting).toBe(1); // ...but nobody polls: the waiter is still parked
  s.waiters.notify("PROJ/app"); // what the daemon's onSynced does
  const r = await answer;
  expect(r.status).toBe(200);
  expect(r.json()).toMatchObject({ repository: "PROJ/app", commit: next, present: true, timeoutMs: 60_000 });
  expect(s.checks()).toBe(checksBefore + 2);
  expect(await s.registry.metrics()).toMatch(/smart_mirror_commit_waits_total\{result="present"\} 2/);
});

test("timeout: 200 with present:false; a sync of another repository does not wake it", async () => {
  const s = await setup();
  const missing = "0123456789abcdef0123456789abcdef01234567";
  const answer = s.get(`/status/repos/PROJ/app/wait?commit=${missing}&timeout=0.3`);
  await waitUntil(() => s.waiters.waiting === 1);
  s.waiters.notify("PROJ/other");
  const r = await answer;
  expect(r.status).toBe(200);
  expect(r.json()).toMatchObject({ commit: missing, present: false, timeoutMs: 300 });
  expect((r.json() as { waitedMs: number }).waitedMs).toBeGreaterThanOrEqual(250);
  expect(s.waiters.waiting).toBe(0);
});

test("bad input is a 400 naming the fix; unknown repositories and paths are 404; only GET", async () => {
  const s = await setup();
  const r1 = await s.get(`/status/repos/PROJ/app/wait?commit=${s.first.slice(0, 12)}`);
  expect(r1.status).toBe(400);
  expect(r1.json()).toMatchObject({ error: "bad_request", message: expect.stringMatching(/full object name.*40 hex.*abbreviations are refused/) });
  expect((await s.get(`/status/repos/PROJ/app/wait`)).status).toBe(400);
  expect((await s.get(`/status/repos/PROJ/app/wait?commit=${s.first}&timeout=soon`)).json()).toMatchObject({ message: expect.stringMatching(/timeout=60/) });
  expect((await s.get(`/status/repos/PROJ/..%2Fetc/wait?commit=${s.first}`)).status).toBe(400);
  const unknown = await s.get(`/status/repos/PROJ/nope/wait?commit=${s.first}`);
  expect(unknown.status).toBe(404);
  expect(unknown.json()).toMatchObject({ error: "not_found" });
  expect((await s.get(`/status/repos/PROJ/app/other`)).status).toBe(404);
  const post = await request({ kind: "tcp", host: "127.0.0.1", port: s.port }, { method: "POST", path: `/status/repos/PROJ/app/wait?commit=${s.first}` });
  expect(post.status).toBe(405);
  expect(post.headers.allow).toBe("GET");
  const capped = await s.get(`/status/repos/PROJ/app/wait?commit=${s.first}&timeout=9999`);
  expect(capped.json()).toMatchObject({ present: true, timeoutMs: WAIT_MAX_SECONDS * 1000 });
});

test("bounded: past maxWaiters a 503 with Retry-After; a client that leaves frees its slot", async () => {
  const s = await setup({ maxWaiters: 1 });
  const missing = "1".repeat(40);
  // A client that goes away while parked gives its slot back.
  const leaving = http.get({ host: "127.0.0.1", port: s.port, path: `/status/repos/PROJ/app/wait?commit=${missing}&timeout=60` });
  leaving.on("error", () => undefined);
  await waitUntil(() => s.waiters.waiting === 1);
  leaving.destroy();
  await waitUntil(() => s.waiters.waiting === 0);
  const first = s.get(`/status/repos/PROJ/app/wait?commit=${missing}&timeout=0.5`);
  await waitUntil(() => s.waiters.waiting === 1);
  const busy = await s.get(`/status/repos/PROJ/app/wait?commit=${missing}`);
  expect(busy.status).toBe(503);
  expect(busy.headers["retry-after"]).toBe("5");
  await first;
  expect(s.waiters.waiting).toBe(0);
});

test("with token auth: no credentials 401, a repository it cannot see is the same 404 as none", async () => {
  const file = path.join(tempDir("tokens"), "tokens");
  const token = "ci-token-0123456789abcdef";
  fs.writeFileSync(file, `ci:${createHash("sha256").update(token).digest("hex")}\n`, { mode: 0o600 });
  const s = await setup({ authorizer: tokensAuthorizer(new TokenStore(file, { checkEveryMs: 0 })) });
  const target = `/status/repos/PROJ/app/wait?commit=${s.first}`;
  const anon = await s.get(target);
  expect(anon.status).toBe(401);
  expect(anon.headers["www-authenticate"]).toMatch(/^Basic realm=/);
  // Unknown repositories answer 401 too without credentials: nothing about names leaks.
  expect((await s.get(`/status/repos/PROJ/secret/wait?commit=${s.first}`)).status).toBe(401);
  const auth = { Authorization: `Bearer ${token}` };
  expect((await s.get(target, auth)).json()).toMatchObject({ present: true });
  expect((await s.get(target, { Authorization: "Bearer wrong" })).status).toBe(401);
  expect((await s.get(`/status/repos/PROJ/secret/wait?commit=${s.first}`, auth)).status).toBe(404);
});

test("parseWaitRequest (pure)", () => {
  const q = (s: string) => new URLSearchParams(s);
  const sha = "a".repeat(40);
  expect(parseWaitRequest("/status/repos/~JDOE/r.x/wait", q(`commit=${sha}`))).toEqual({ ok: true, repo: { project: "~JDOE", slug: "r.x" }, commit: sha, timeoutMs: 30_000 });
  expect(parseWaitRequest("/status/repos/P/r/wait", q(`commit=${"b".repeat(64)}&timeout=0`))).toMatchObject({ ok: true, timeoutMs: 0 });
  expect(parseWaitRequest("/status/repos/P/r/wait", q(`commit=${sha}&commit=${sha}`))).toMatchObject({ ok: false, status: 400 });
  expect(parseWaitRequest("/status/repos/P/r.git/wait", q(`commit=${sha}`))).toMatchObject({ ok: false, status: 400, message: expect.stringMatching(/\.git/) });
  expect(parseWaitRequest("/status/repos/P/r/x/wait", q(`commit=${sha}`))).toMatchObject({ ok: false, status: 404 });
  expect(parseWaitRequest("/status/repos/P/r/wait", q(`commit=${"g".repeat(40)}`))).toMatchObject({ ok: false, status: 400 });
});

async function waitUntil(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}
