import * as http from "node:http";
import { onCleanup } from "../../testbed/resources";
import { listen, ListenAddress } from "./listen";
import type { Log } from "./http";
import { requestIdFor, Router, splitTarget } from "./router";
import { request } from "../../testbed/httpClient";

async function serve(router: Router): Promise<ListenAddress> {
  const server = http.createServer(router.handle);
  const at = await listen(server, "127.0.0.1:0");
  onCleanup(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return at;
}

describe("splitTarget", () => {
  test.each<[string | undefined, string, string]>([
    ["/status", "/status", ""],
    ["/status/", "/status", ""],
    ["/status/repos?state=failing&limit=2", "/status/repos", "state=failing&limit=2"],
    ["/", "/", ""],
    ["//evil.example/status", "//evil.example/status", ""],
    [undefined, "/", ""],
    ["?x=1", "/", "x=1"],
  ])("%p", (target, path, query) => {
    const t = splitTarget(target);
    expect(t.path).toBe(path);
    expect(t.query.toString()).toBe(query);
  });
});

describe("requestIdFor", () => {
  test("reuses a sane id, replaces anything that could inject into headers or logs", () => {
    expect(requestIdFor("b5a9f1d6-6f1e-4e0a-9a1b-0c2d3e4f5a6b")).toBe("b5a9f1d6-6f1e-4e0a-9a1b-0c2d3e4f5a6b");
    for (const bad of ["a b", "x\ny", "", "z".repeat(200), ["a", "b"], undefined]) {
      expect(requestIdFor(bad as string | string[] | undefined)).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});

describe("Router over real HTTP", () => {
  const errors: object[] = [];
  const log: Log = { info() {}, warn() {}, error: (o) => void errors.push(o) };
  let at: ListenAddress;
  beforeAll(async () => {
    const router = new Router({ log })
      .route("/thing", { GET: (ctx) => void ctx.res.end("thing") })
      .route("/thing", { PUT: (ctx) => void ctx.res.end("put") })
      .route("/boom", { GET: () => { throw new Error("kaboom with a secret inside"); } })
      .route("/async-boom", { GET: async () => { throw new Error("later"); } })
      .mount("/a/", (ctx) => void ctx.res.end(`a:${ctx.path}`))
      .mount("/a/b/", (ctx) => void ctx.res.end(`ab:${ctx.path}`));
    at = await serve(router);
  });

  test("routes merge methods; HEAD uses GET; Allow lists them", async () => {
    expect((await request(at, { path: "/thing" })).body).toBe("thing");
    expect((await request(at, { method: "PUT", path: "/thing" })).body).toBe("put");
    const head = await request(at, { method: "HEAD", path: "/thing" });
    expect(head.status).toBe(200);
    expect(head.body).toBe("");
    const r = await request(at, { method: "POST", path: "/thing" });
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe("GET, PUT, HEAD");
  });

  test("longest mount prefix wins; exact routes and 404s otherwise", async () => {
    expect((await request(at, { path: "/a/x" })).body).toBe("a:/a/x");
    expect((await request(at, { path: "/a/b/c" })).body).toBe("ab:/a/b/c");
    expect((await request(at, { path: "/a" })).status).toBe(404);
  });

  test("a throwing handler gives a JSON 500 with the request id, no error text, and a log entry", async () => {
    for (const p of ["/boom", "/async-boom"]) {
      const r = await request(at, { path: p, headers: { "X-Request-Id": "req-42" } });
      expect(r.status).toBe(500);
      expect(r.headers["x-request-id"]).toBe("req-42");
      expect(r.json()).toEqual({ error: "internal_error", message: "internal error", requestId: "req-42" });
      expect(r.body).not.toContain("secret");
    }
    expect(errors).toEqual([expect.objectContaining({ requestId: "req-42", path: "/boom" }), expect.objectContaining({ requestId: "req-42", path: "/async-boom" })]);
  });

  test("every answer carries X-Request-Id", async () => {
    const r = await request(at, { path: "/nowhere" });
    expect(r.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.json()).toMatchObject({ requestId: r.headers["x-request-id"] });
  });

  test("a mount with a matcher takes only what it accepts, before a plain mount of the same prefix", async () => {
    const router = new Router()
      .mount("/scm/", (ctx) => void ctx.res.end("git"))
      .mount("/scm/", (ctx) => void ctx.res.end("lfs"), (p) => p.includes("/info/lfs/"));
    const at = await serve(router);
    expect((await request(at, { path: "/scm/P/r.git/info/lfs/objects/batch" })).body).toBe("lfs");
    expect((await request(at, { path: "/scm/P/r.git/info/refs" })).body).toBe("git");
  });

  test("mount prefixes must be directories", () => {
    expect(() => new Router().mount("/scm", () => {})).toThrow(/start and end with/);
  });
});
