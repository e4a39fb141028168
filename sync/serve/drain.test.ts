/**
 * Draining: the pure rule (decide), the counter around real requests over a real socket, the
 * readiness route and the drain control route. The quiet period and the bound run on jest's
 * fake clock where they matter (no timed assertions); requests are real.
 */
import { EventEmitter } from "node:events";
import * as http from "node:http";
import { Registry } from "prom-client";
import { request } from "../../testbed/httpClient";
import { onCleanup } from "../../testbed/resources";
import { StatusBoard } from "../state/statusBoard";
import { decide, DRAIN_METRIC_NAMES, DrainFacts, isProbe, RequestDrain } from "./drain";
import { addDrainRoute, parseDrainTimeout } from "./drainRoute";
import { listen, ListenAddress } from "./listen";
import { Router } from "./router";
import { createServer } from "./server";

const facts = (over: Partial<DrainFacts>): DrainFacts => ({ now: 0, notReadySince: 0, startedAt: 0, lastArrivalAt: undefined, inFlight: 0, quietPeriodMs: 0, timeoutMs: 300_000, ...over });

describe("decide", () => {
  test("no quiet period and nothing in flight: drained at once", () => {
    expect(decide(facts({}))).toEqual({ kind: "done" });
  });
  test("in flight: wait for them (no timer needed but the bound)", () => {
    expect(decide(facts({ now: 10, inFlight: 2 }))).toEqual({ kind: "wait" });
  });
  test("the quiet period counts from readiness 503 or the last arrival, whichever is later", () => {
    expect(decide(facts({ now: 1000, quietPeriodMs: 30_000 }))).toEqual({ kind: "wait", ms: 29_000 });
    expect(decide(facts({ now: 20_000, quietPeriodMs: 30_000, lastArrivalAt: 15_000 }))).toEqual({ kind: "wait", ms: 25_000 });
    // An arrival before the drain does not shorten it.
    expect(decide(facts({ now: 1000, quietPeriodMs: 30_000, lastArrivalAt: -50_000 }))).toEqual({ kind: "wait", ms: 29_000 });
    expect(decide(facts({ now: 45_000, quietPeriodMs: 30_000, lastArrivalAt: 15_000 }))).toEqual({ kind: "done" });
  });
  test("quiet but requests still running: wait for them; past the bound: timeout", () => {
    expect(decide(facts({ now: 31_000, quietPeriodMs: 30_000, inFlight: 1 }))).toEqual({ kind: "wait" });
    expect(decide(facts({ now: 300_000, quietPeriodMs: 30_000, inFlight: 1 }))).toEqual({ kind: "timeout" });
    // Clients that never stop arriving cannot hold the drain past the bound either.
    expect(decide(facts({ now: 300_000, quietPeriodMs: 30_000, lastArrivalAt: 299_000 }))).toEqual({ kind: "timeout" });
    // The quiet period's timer never outlives the bound.
    expect(decide(facts({ now: 290_000, quietPeriodMs: 30_000, lastArrivalAt: 289_000 }))).toEqual({ kind: "wait", ms: 10_000 });
  });
  test("a second drain (after `smart-mirror drain`) has its own bound; quiet still from readiness 503", () => {
    expect(decide(facts({ now: 400_000, startedAt: 390_000, quietPeriodMs: 30_000, inFlight: 1 }))).toEqual({ kind: "wait" });
    expect(decide(facts({ now: 400_000, startedAt: 390_000, quietPeriodMs: 30_000 }))).toEqual({ kind: "done" });
  });
});

test("probes are not client arrivals: health checks, status, metrics, the drain control", () => {
  for (const p of ["/status", "/status/ready", "/status/ready?x=1", "/healthz", "/metrics", "/status/detail", "/drain"]) expect(`${p} ${isProbe(p)}`).toBe(`${p} true`);
  for (const p of ["/scm/P/r.git/info/refs?service=git-upload-pack", "/status/repos/P/r/wait", "/", "/webhook", "/status/repos"]) expect(`${p} ${isProbe(p)}`).toBe(`${p} false`);
});

test("drain timeout parameter: whole seconds 1..3600", () => {
  expect(parseDrainTimeout(null)).toBeUndefined();
  expect(parseDrainTimeout("90")).toBe(90_000);
  for (const bad of ["0", "3601", "1.5", "-1", "abc"]) expect(parseDrainTimeout(bad)).toEqual({ error: expect.stringContaining("1 to 3600") });
});

interface Harness {
  at: ListenAddress;
  board: StatusBoard;
  drain: RequestDrain;
  registry: Registry;
  /** Requests to /slow wait here until released. */
  held: Array<() => void>;
  arrived: () => number;
}

async function start(o: { quietPeriodMs?: number; timeoutMs?: number; stopping?: () => boolean } = {}): Promise<Harness> {
  const board = new StatusBoard({ defaultMetrics: false });
  const registry = board.metrics.registry;
  const drain = new RequestDrain({ quietPeriodMs: o.quietPeriodMs ?? 0, timeoutMs: o.timeoutMs ?? 300_000, registry });
  drain.onChange((d) => board.setDraining(d));
  const router = new Router();
  const held: Array<() => void> = [];
  let arrived = 0;
  router.mount("/slow/", (ctx) => {
    arrived++;
    ctx.res.writeHead(200, { "Content-Type": "text/plain" });
    ctx.res.write("started\n");
    held.push(() => ctx.res.end("done\n"));
  });
  router.mount("/fast/", (ctx) => {
    arrived++;
    ctx.res.end("ok\n");
  });
  addDrainRoute(router, drain, { info() {}, warn() {}, error() {} }, o.stopping);
  const server = createServer({ board, router, drain });
  const at = await listen(server, "127.0.0.1:0");
  onCleanup(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { at, board, drain, registry, held, arrived: () => arrived };
}

/** A request whose answer starts at once and ends when released. */
function slow(at: ListenAddress): Promise<string> {
  return request(at, { path: "/slow/x" }).then((r) => r.body);
}

async function metricValue(registry: Registry, name: string): Promise<number> {
  const m = registry.getSingleMetric(name);
  return (await m?.get())?.values[0]?.value ?? NaN;
}

function makeReady(board: StatusBoard): void {
  board.setCatalog(["P/r"]);
  board.primaryReachable(true);
  board.syncSucceeded("P/r", { durationMs: 1, changed: true, bytes: 1 });
  board.reconcileDone({ durationMs: 1, changed: 0, checked: 1 });
}

describe("readiness and draining over a real socket", () => {
  test("GET /status/ready: 503 until ready, 200 when ready, 503 while draining; /status says draining; no-store", async () => {
    const h = await start();
    let r = await request(h.at, { path: "/status/ready" });
    expect(r.status).toBe(503);
    expect(r.json()).toEqual({ ready: false, state: "STARTING", draining: false });
    expect(r.headers["cache-control"]).toBe("no-store");
    makeReady(h.board);
    r = await request(h.at, { path: "/status/ready" });
    expect(r.status).toBe(200);
    expect(r.json()).toEqual({ ready: true, state: "SYNCHRONIZED", draining: false });
    expect((await request(h.at, { path: "/status" })).json()).toMatchObject({ ready: true, draining: false });

    const drained = h.drain.drain();
    r = await request(h.at, { path: "/status/ready" });
    expect(r.status).toBe(503);
    expect(r.json()).toEqual({ ready: false, state: "SYNCHRONIZED", draining: true });
    const status = await request(h.at, { path: "/status" });
    // /status keeps its own code (something can be served) and says why readiness is off.
    expect(status.status).toBe(200);
    expect(status.json()).toMatchObject({ state: "SYNCHRONIZED", ready: false, draining: true });
    expect(await drained).toMatchObject({ remaining: 0, timedOut: false });
    expect(await metricValue(h.registry, DRAIN_METRIC_NAMES.draining)).toBe(1);
  });

  test("a drain waits for the request in flight, serves new ones meanwhile, ends when the last one does", async () => {
    const h = await start();
    const first = slow(h.at);
    await waitUntil(() => h.held.length === 1);
    expect(h.drain.requestsInFlight).toBe(1);
    let ended = false;
    const drained = h.drain.drain().then((r) => {
      ended = true;
      return r;
    });
    // New requests are still served while draining (the balancer has not noticed yet).
    expect((await request(h.at, { path: "/fast/y" })).body).toBe("ok\n");
    const second = slow(h.at);
    await waitUntil(() => h.held.length === 2);
    expect(h.drain.requestsInFlight).toBe(2);
    h.held[0]();
    expect(await first).toBe("started\ndone\n");
    await waitUntil(() => h.drain.requestsInFlight === 1);
    expect(ended).toBe(false);
    h.held[1]();
    expect(await second).toBe("started\ndone\n");
    expect(await drained).toMatchObject({ remaining: 0, timedOut: false, skipped: false });
    expect(ended).toBe(true);
    // Probes during the drain were not counted: nothing is in flight.
    expect(h.drain.requestsInFlight).toBe(0);
  });

  test("the bound ends a drain with the stuck request still running, reported as remaining; cut() closes it and counts it", async () => {
    const h = await start({ timeoutMs: 1000 });
    const stuck = slow(h.at).then(
      () => "answered",
      () => "cut",
    );
    await waitUntil(() => h.held.length === 1);
    const r = await h.drain.drain();
    expect(r).toMatchObject({ remaining: 1, timedOut: true });
    expect(await metricValue(h.registry, DRAIN_METRIC_NAMES.inFlight)).toBe(1);
    expect(await h.drain.cut()).toBe(1);
    await expect(stuck).resolves.toBe("cut");
    expect(await metricValue(h.registry, DRAIN_METRIC_NAMES.cut)).toBe(1);
    await waitUntil(() => h.drain.requestsInFlight === 0);
  });

  test("a second stop signal (skip) ends the drain at once", async () => {
    const h = await start({ quietPeriodMs: 3_600_000 - 1, timeoutMs: 3_600_000 });
    void slow(h.at).catch(() => undefined);
    await waitUntil(() => h.held.length === 1);
    const p = h.drain.drain();
    h.drain.skip();
    expect(await p).toMatchObject({ remaining: 1, skipped: true, timedOut: false });
  });

  test("POST /drain answers when drained and leaves the daemon draining; DELETE /drain cancels; both internal only", async () => {
    const h = await start();
    makeReady(h.board);
    const first = slow(h.at);
    await waitUntil(() => h.held.length === 1);
    let answered = false;
    const drainAnswer = request(h.at, { method: "POST", path: "/drain?timeout=60" }).then((r) => {
      answered = true;
      return r;
    });
    await waitUntil(async () => (await request(h.at, { path: "/status/ready" })).status === 503);
    expect(answered).toBe(false);
    h.held[0]();
    await first;
    const r = await drainAnswer;
    expect(r.status).toBe(200);
    expect(r.json()).toMatchObject({ drained: true, remaining: 0, timedOut: false });
    // Still draining: not ready, still serving.
    expect((await request(h.at, { path: "/status/ready" })).status).toBe(503);
    expect((await request(h.at, { path: "/fast/z" })).status).toBe(200);
    // Through the proxy: as unknown.
    expect((await request(h.at, { method: "DELETE", path: "/drain", headers: { "X-Forwarded-For": "203.0.113.9" } })).status).toBe(404);
    expect((await request(h.at, { method: "POST", path: "/drain", headers: { "X-Real-IP": "203.0.113.9" } })).status).toBe(404);
    expect((await request(h.at, { method: "POST", path: "/drain?timeout=0" })).status).toBe(400);
    const cancel = await request(h.at, { method: "DELETE", path: "/drain" });
    expect(cancel.json()).toEqual({ draining: false, wasDraining: true });
    expect((await request(h.at, { path: "/status/ready" })).status).toBe(200);
    expect(await metricValue(h.registry, DRAIN_METRIC_NAMES.draining)).toBe(0);
  });

  test("POST /drain past its bound: 504 with the requests still running; a stopping daemon refuses a cancel", async () => {
    let stopping = false;
    const h = await start({ stopping: () => stopping });
    void slow(h.at).catch(() => undefined);
    await waitUntil(() => h.held.length === 1);
    const r = await request(h.at, { method: "POST", path: "/drain?timeout=1" });
    expect(r.status).toBe(504);
    expect(r.json()).toMatchObject({ drained: false, remaining: 1, timedOut: true });
    stopping = true;
    expect((await request(h.at, { method: "DELETE", path: "/drain" })).status).toBe(409);
    expect(h.drain.draining).toBe(true);
  });
});

describe("the quiet period on a fake clock", () => {
  afterEach(() => jest.useRealTimers());

  test("arrivals during the quiet period push its end; health checks do not", async () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const d = new RequestDrain({ quietPeriodMs: 30_000, timeoutMs: 300_000 });
    let result: unknown;
    void d.drain().then((r) => (result = r));
    await jest.advanceTimersByTimeAsync(20_000);
    // A client request arrives and ends at once (a real ServerResponse's "close" event, simulated by an emitter).
    arrive(d, "/scm/P/r.git/info/refs?service=git-upload-pack").end();
    await jest.advanceTimersByTimeAsync(20_000);
    expect(result).toBeUndefined(); // 40 s after the start, 20 s after the arrival: not quiet yet
    for (let i = 0; i < 10; i++) arrive(d, "/status/ready").end();
    await jest.advanceTimersByTimeAsync(10_000);
    expect(result).toEqual({ durationMs: 50_000, remaining: 0, timedOut: false, skipped: false });
  });
});

/** A request as the server's listener sees it: the url, and a response that emits "close" when ended. */
function arrive(d: RequestDrain, url: string): { end: () => void } {
  const res = new EventEmitter() as http.ServerResponse;
  d.track({ url } as http.IncomingMessage, res);
  return { end: () => void res.emit("close") };
}

async function waitUntil(fn: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!(await fn())) {
    if (Date.now() - t0 > timeoutMs) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

test("a farm peer's probes and announcements are not client arrivals (each peer GETs /farm/announce every 2 s: a quiet period would never end)", () => {
  for (const p of ["/farm/announce", "/farm/announce?x=1"]) expect(`${p} ${isProbe(p)}`).toBe(`${p} true`);
});
