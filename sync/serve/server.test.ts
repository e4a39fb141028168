/**
 * The daemon's HTTP surface over real sockets: a unix socket (how nginx reaches it) and
 * loopback TCP. Every request goes through node's http client and the kernel.
 */
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { onCleanup, tempDir } from "../../testbed/resources";
import { METRIC_NAMES } from "../state/metrics";
import { StatusBoard } from "../state/statusBoard";
import { RepoKey } from "../types";
import { listen, ListenAddress } from "./listen";
import { Router } from "./router";
import { createServer } from "./server";
import { request, TestResponse } from "../../testbed/httpClient";
import { signBody } from "./webhookSignature";
import { RefChange } from "./webhookEvent";

const SECRET = "correct horse battery staple";

/** A repo:refs_changed body as Atlassian's "Event payload" page shows it. */
function refsChanged(project: string, slug: string): string {
  return JSON.stringify({
    eventKey: "repo:refs_changed",
    date: "2017-09-19T09:45:32+1000",
    actor: { name: "admin", emailAddress: "admin@example.com", id: 1, displayName: "Administrator", active: true, slug: "admin", type: "NORMAL" },
    repository: { slug, id: 84, name: slug, scmId: "git", state: "AVAILABLE", statusMessage: "Available", forkable: true, project: { key: project, id: 84, name: project, public: true, type: "NORMAL" }, public: false },
    changes: [
      { ref: { id: "refs/heads/master", displayId: "master", type: "BRANCH" }, refId: "refs/heads/master", fromHash: "ecddabb624f6f5ba43816f5926e580a5f680a932", toHash: "178864a7d521b6f5e720b386b2c2b0ef8563e0dc", type: "UPDATE" },
    ],
  });
}

async function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

interface Harness {
  board: StatusBoard;
  at: ListenAddress;
  refs: { repo: RepoKey; changes: RefChange[] }[];
  catalog: string[];
  get(p: string): Promise<TestResponse>;
  post(p: string, body: string | Buffer, headers?: http.OutgoingHttpHeaders): Promise<TestResponse>;
}

/** `webhook: null` starts the server without webhook options at all. */
async function start(transport: "unix" | "tcp", webhook: { secret?: string } | null = { secret: SECRET }): Promise<Harness> {
  const board = new StatusBoard({ info: { displayName: "Sydney mirror", baseUrl: "https://syd.example.com", upstreamUrl: "https://bitbucket.example.com" }, delayedAfterMs: 60_000 });
  const refs: Harness["refs"] = [];
  const catalog: string[] = [];
  const server = createServer({
    board,
    webhook: webhook ? {
      ...webhook,
      maxBodyBytes: 64 * 1024,
      onRefsChanged: (repo, info) => void refs.push({ repo, changes: info.changes }),
      onCatalogChanged: (info) => void catalog.push(info.eventKey),
    } : undefined,
  });
  const spec = transport === "unix" ? `unix:${path.join(tempDir("serve"), "http.sock")}` : "127.0.0.1:0";
  const at = await listen(server, spec);
  onCleanup(() => closeServer(server));
  return {
    board,
    at,
    refs,
    catalog,
    get: (p) => request(at, { path: p }),
    post: (p, body, headers = {}) => request(at, { method: "POST", path: p, body, headers: { "Content-Type": "application/json", ...headers } }),
  };
}

const signed = (body: string, eventKey = "repo:refs_changed") => ({ "X-Event-Key": eventKey, "X-Hub-Signature": signBody(SECRET, body) });

describe.each(["unix", "tcp"] as const)("over %s", (transport) => {
  let h: Harness;
  beforeAll(async () => {
    h = await start(transport);
  });

  test("the listener is where we asked (unix socket mode 0660)", () => {
    if (h.at.kind === "unix") expect(fs.statSync(h.at.path).mode & 0o777).toBe(0o660);
    else expect(h.at.port).toBeGreaterThan(0);
  });

  test("GET /status follows the board: 503 STARTING, then 200 with Bitbucket's fields and ours", async () => {
    let r = await h.get("/status");
    expect(r.status).toBe(503);
    expect(r.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(r.json()).toMatchObject({ state: "STARTING", syncedRepos: 0, totalRepos: 0 });

    h.board.setCatalog(["PROJ/repo", "PROJ/other"]);
    h.board.primaryReachable(true);
    r = await h.get("/status");
    expect(r.status).toBe(200);
    expect(r.json()).toMatchObject({ state: "INITIAL_SYNC", syncedRepos: 0, totalRepos: 2, initialSync: { done: 0, total: 2, complete: false } });

    h.board.syncSucceeded("PROJ/repo", { durationMs: 30, changed: true, bytes: 100 });
    h.board.syncSucceeded("PROJ/other", { durationMs: 30, changed: true, bytes: 100 });
    h.board.reconcileDone({ durationMs: 12, changed: 0, checked: 2 });
    r = await h.get("/status");
    expect(r.status).toBe(200);
    const doc = r.json() as Record<string, unknown>;
    expect(doc).toMatchObject({
      state: "SYNCHRONIZED",
      syncedRepos: 2,
      totalRepos: 2,
      displayName: "Sydney mirror",
      baseUrl: "https://syd.example.com",
      initialSync: { done: 2, total: 2, complete: true, completedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) },
      primary: { reachable: true },
      lastReconcile: { result: "ok", durationMs: 12, at: expect.any(String) },
      repos: { new: 0, syncing: 0, synced: 2, failing: 0, delayed: 0 },
    });
    expect((await h.get("/status/detail")).json()).toMatchObject({
      primary: { url: "https://bitbucket.example.com", reachable: true, lastError: null },
      lastReconcile: { result: "ok", durationMs: 12, checked: 2, changed: 0, at: expect.any(String) },
    });

    h.board.syncFailed("PROJ/other", new Error("connect ECONNREFUSED 127.0.0.1:7999"), { nextRetryAt: Date.now() + 30_000 });
    r = await h.get("/status");
    expect(r.status).toBe(200);
    // Failing: DEGRADED at once; delayed only after the tolerance (60 s here).
    expect(r.json()).toMatchObject({ state: "DEGRADED", repos: { failing: 1, delayed: 0 }, delayedSync: { count: 0, toleranceMs: 60_000 } });

    h.board.primaryReachable(false, new Error("ssh: connect to host bitbucket.example.com port 7999: Connection timed out"));
    h.board.reconcileDone({ durationMs: 5, changed: 0, checked: 0, error: "cannot scan PROJ/other: ssh: connect to host bitbucket.example.com port 7999" });
    r = await h.get("/status");
    expect(r.json()).toMatchObject({ state: "DEGRADED", primary: { reachable: false }, lastReconcile: { result: "error" } });
    // Public: coarse. No address of the primary, no error text, no repository name.
    expect(r.body).not.toMatch(/7999|bitbucket\.example\.com|timed out|PROJ\/other|error"?:\s*"/);
    // On the daemon's own listener: the details.
    const detail = await h.get("/status/detail");
    expect(detail.status).toBe(200);
    expect(detail.json()).toMatchObject({ primary: { reachable: false, lastError: expect.stringContaining("port 7999") }, lastReconcile: { error: expect.stringContaining("PROJ/other") } });
  });

  test("GET /status/detail is refused (404) to anything that came through the proxy", async () => {
    for (const header of ["X-Forwarded-For", "X-Real-IP"]) {
      const r = await request(h.at, { method: "GET", path: "/status/detail", headers: { [header]: "203.0.113.9" } });
      expect([header, r.status]).toEqual([header, 404]);
    }
  });

  test("GET /status/repos lists, filters and pages; bad parameters are 400", async () => {
    let r = await h.get("/status/repos");
    expect(r.status).toBe(200);
    expect(r.json()).toMatchObject({ size: 2, start: 0, isLastPage: true, total: 2, values: [{ key: "PROJ/other", state: "failing", consecutiveFailures: 1, lastError: expect.stringContaining("ECONNREFUSED"), nextRetryAt: expect.any(String) }, { key: "PROJ/repo", state: "synced", lastError: null }] });
    r = await h.get("/status/repos?state=failing");
    expect((r.json() as { values: { key: string }[] }).values.map((v) => v.key)).toEqual(["PROJ/other"]);
    r = await h.get("/status/repos?limit=1");
    expect(r.json()).toMatchObject({ size: 1, limit: 1, isLastPage: false, nextPageStart: 1, values: [{ key: "PROJ/other" }] });
    r = await h.get("/status/repos?start=1&limit=1");
    expect(r.json()).toMatchObject({ size: 1, isLastPage: true, values: [{ key: "PROJ/repo" }] });
    for (const bad of ["?state=exploded", "?limit=0", "?limit=abc", "?start=-1"]) {
      r = await h.get(`/status/repos${bad}`);
      expect(r.status).toBe(400);
      expect(r.json()).toMatchObject({ error: "bad_request", requestId: expect.any(String) });
    }
  });

  test("GET /status/delayed lists failing and long-behind repos; /status counts them, /status/detail names them", async () => {
    h.board.markBehind("PROJ/repo", Date.now() - 120_000);
    // Failing since just now, but waiting for a change seen 90 s ago: past the 60 s tolerance.
    h.board.markBehind("PROJ/other", Date.now() - 90_000);
    const r = await h.get("/status/delayed");
    expect(r.status).toBe(200);
    expect(r.json()).toMatchObject({
      thresholdMs: 60_000,
      size: 2,
      values: [
        { key: "PROJ/repo", reason: "behind", lagMs: expect.any(Number), behindSince: expect.any(String) },
        { key: "PROJ/other", reason: "failing", lagMs: expect.any(Number), since: expect.any(String) },
      ],
    });
    const pub = await h.get("/status");
    expect(pub.json()).toMatchObject({ repos: { delayed: 2 }, delayedSync: { count: 2, toleranceMs: 60_000 } });
    expect(pub.body).not.toMatch(/PROJ\//);
    const detail = (await h.get("/status/detail")).json() as { delayedSync: { count: number; repos: Array<{ repository: string; reason: string; since: string }> } };
    expect(detail.delayedSync.count).toBe(2);
    expect(detail.delayedSync.repos.map((d) => [d.repository, d.reason])).toEqual([["PROJ/repo", "behind"], ["PROJ/other", "failing"]]);
  });

  test("GET /metrics is Prometheus text with our metric names", async () => {
    const r = await h.get("/metrics");
    expect(r.status).toBe(200);
    expect(r.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8");
    for (const name of Object.values(METRIC_NAMES)) expect(r.body).toContain(`# TYPE ${name} `);
    expect(r.body).toContain("process_resident_memory_bytes");
    expect(r.body).toMatch(/^smart_mirror_repos\{state="synced"\} 1$/m);
  });

  test("GET /healthz is 200; unknown path 404 JSON; wrong method 405 with Allow", async () => {
    expect((await h.get("/healthz")).status).toBe(200);
    const nf = await h.get("/nope");
    expect(nf.status).toBe(404);
    expect(nf.json()).toMatchObject({ error: "not_found", requestId: nf.headers["x-request-id"] });
    const wrong = await request(h.at, { method: "DELETE", path: "/status" });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.allow).toBe("GET, HEAD");
    expect(wrong.json()).toMatchObject({ error: "method_not_allowed" });
    const getHook = await h.get("/webhook");
    expect(getHook.status).toBe(405);
    expect(getHook.headers.allow).toBe("POST");
  });

  describe("POST /webhook", () => {
    beforeEach(() => {
      h.refs.length = 0;
      h.catalog.length = 0;
    });

    test("good signature: 202 and onRefsChanged(\"PROJ/repo\")", async () => {
      const body = refsChanged("PROJ", "repo");
      const r = await h.post("/webhook", body, { ...signed(body), "X-Request-Id": "b5a9f1d6-6f1e-4e0a-9a1b-0c2d3e4f5a6b" });
      expect(r.status).toBe(202);
      expect(r.json()).toEqual({ accepted: true, repository: "PROJ/repo", requestId: "b5a9f1d6-6f1e-4e0a-9a1b-0c2d3e4f5a6b" });
      expect(h.refs).toEqual([{ repo: "PROJ/repo", changes: [{ refId: "refs/heads/master", fromHash: "ecddabb624f6f5ba43816f5926e580a5f680a932", toHash: "178864a7d521b6f5e720b386b2c2b0ef8563e0dc", type: "UPDATE" }] }]);
      // Trailing slash is the same route.
      expect((await h.post("/webhook/", body, signed(body))).status).toBe(202);
      expect(h.refs).toHaveLength(2);
    });

    test("bad signature: 401 and no callback", async () => {
      const body = refsChanged("PROJ", "repo");
      const wrongKey = await h.post("/webhook", body, { "X-Event-Key": "repo:refs_changed", "X-Hub-Signature": signBody("not the secret", body) });
      expect(wrongKey.status).toBe(401);
      expect(wrongKey.json()).toMatchObject({ error: "unauthorized", requestId: expect.any(String) });
      // Signed body, tampered in transit: the repo changed.
      const tampered = await h.post("/webhook", refsChanged("PROJ", "secret-repo"), signed(body));
      expect(tampered.status).toBe(401);
      const sha1 = await h.post("/webhook", body, { "X-Event-Key": "repo:refs_changed", "X-Hub-Signature": "sha1=" + "0".repeat(40) });
      expect(sha1.status).toBe(401);
      expect(h.refs).toEqual([]);
    });

    test("missing signature: 401 and no callback", async () => {
      const body = refsChanged("PROJ", "repo");
      const r = await h.post("/webhook", body, { "X-Event-Key": "repo:refs_changed" });
      expect(r.status).toBe(401);
      expect(h.refs).toEqual([]);
    });

    test("oversize body: 413 before the body is sent, and no callback", async () => {
      // Headers promise 1 MiB, only 10 bytes ever come: an answer proves nothing waited for the rest.
      const r = await request(h.at, {
        method: "POST",
        path: "/webhook",
        headers: { "Content-Type": "application/json", "Content-Length": 1024 * 1024, ...signed("{}") },
        partialBody: Buffer.from('{"eventKe'),
      });
      expect(r.status).toBe(413);
      expect(r.headers.connection).toBe("close");
      expect(r.json()).toMatchObject({ error: "payload_too_large" });
      expect(h.refs).toEqual([]);
    });

    test("oversize chunked body: 413 once past the limit", async () => {
      const big = Buffer.alloc(65 * 1024, 0x20);
      const r = await request(h.at, { method: "POST", path: "/webhook", headers: { "Transfer-Encoding": "chunked", ...signed("{}") }, partialBody: big });
      expect(r.status).toBe(413);
      expect(h.refs).toEqual([]);
    });

    test("malformed JSON or payload: 400", async () => {
      const notJson = "{ this is not json";
      expect((await h.post("/webhook", notJson, signed(notJson))).status).toBe(400);
      const noRepo = JSON.stringify({ eventKey: "repo:refs_changed", changes: [] });
      const r = await h.post("/webhook", noRepo, signed(noRepo));
      expect(r.status).toBe(400);
      expect(r.json()).toMatchObject({ error: "bad_request", message: expect.stringContaining("repository.slug") });
      const traversal = refsChanged("PROJ", "..");
      expect((await h.post("/webhook", traversal, signed(traversal))).status).toBe(400);
      expect(h.refs).toEqual([]);
    });

    test("diagnostics:ping: 200, nothing queued", async () => {
      const body = JSON.stringify({ test: true });
      const r = await h.post("/webhook", body, signed(body, "diagnostics:ping"));
      expect(r.status).toBe(200);
      expect(r.json()).toMatchObject({ ok: true });
      expect(h.refs).toEqual([]);
    });

    test("repo:modified asks for a catalog refresh; other events are ignored with 202", async () => {
      const renamed = JSON.stringify({ eventKey: "repo:modified", date: "2017-09-19T09:45:32+1000", actor: {}, old: { slug: "old-name", project: { key: "PROJ" } }, new: { slug: "new-name", project: { key: "PROJ" } } });
      let r = await h.post("/webhook", renamed, signed(renamed, "repo:modified"));
      expect(r.status).toBe(202);
      expect(r.json()).toMatchObject({ accepted: true, catalogRefresh: true });
      expect(h.catalog).toEqual(["repo:modified"]);
      const pr = JSON.stringify({ eventKey: "pr:opened", date: "2017-09-19T09:45:32+1000" });
      r = await h.post("/webhook", pr, signed(pr, "pr:opened"));
      expect(r.status).toBe(202);
      expect(r.json()).toMatchObject({ accepted: false, ignored: true, eventKey: "pr:opened" });
      expect(h.refs).toEqual([]);
    });

    test("webhook results are counted", async () => {
      const r = await h.get("/metrics");
      for (const result of ["accepted", "unauthorized", "too_large", "malformed", "ping", "catalog", "ignored"]) {
        expect(r.body).toMatch(new RegExp(`^smart_mirror_webhooks_total\\{result="${result}"\\} [1-9]`, "m"));
      }
    });
  });
});

describe("webhook disabled", () => {
  test.each(["unix", "tcp"] as const)("no secret configured: 404 over %s, no callback", async (transport) => {
    for (const webhook of [null, { secret: "" }]) {
      const h = await start(transport, webhook);
      const body = refsChanged("PROJ", "repo");
      const r = await h.post("/webhook", body, signed(body));
      expect(r.status).toBe(404);
      expect(r.json()).toMatchObject({ error: "webhook_disabled", requestId: expect.any(String) });
      expect(h.refs).toEqual([]);
      expect((await h.get("/metrics")).body).toMatch(/^smart_mirror_webhooks_total\{result="disabled"\} 1$/m);
    }
  });
});

describe("mounting more handlers", () => {
  test("a prefix mount on the router given to createServer serves its subtree beside /status", async () => {
    const router = new Router();
    router.mount("/scm/", (ctx) => {
      ctx.res.writeHead(200, { "Content-Type": "text/plain" });
      ctx.res.end(`git ${ctx.req.method} ${ctx.path}`);
    });
    const server = createServer({ board: new StatusBoard({ defaultMetrics: false }), router });
    const at = await listen(server, "127.0.0.1:0");
    onCleanup(() => closeServer(server));
    const clone = await request(at, { path: "/scm/PROJ/repo.git/info/refs?service=git-upload-pack" });
    expect(clone.body).toBe("git GET /scm/PROJ/repo.git/info/refs");
    expect((await request(at, { method: "POST", path: "/scm/PROJ/repo.git/git-upload-pack", body: "0000" })).body).toBe("git POST /scm/PROJ/repo.git/git-upload-pack");
    expect((await request(at, { path: "/status" })).status).toBe(503);
    expect((await request(at, { path: "/scmx" })).status).toBe(404);
  });
});
