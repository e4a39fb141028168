/**
 * Delivery against a real HTTP receiver on loopback: the signature and headers Bitbucket
 * receivers check, retries after 5xx, no retry after a 4xx, the bounded queue dropping the
 * oldest, and metrics. No timing assertions: backoff is tiny and every wait is for an event.
 */
import { Registry } from "prom-client";
import { startEventReceiver } from "../../testbed/eventReceiver";
import { verifySignature } from "../serve/webhookSignature";
import { EventDelivery, retryDelayMs, urlTarget, verdictOf } from "./delivery";
import { diffRefs, syncedEvent } from "./payload";

jest.setTimeout(30_000);

const SECRET = "evsec-0123456789abcdef";
const A = "a".repeat(40);
const B = "b".repeat(40);

function event(slug: string) {
  return syncedEvent({
    mirror: { id: "mirror.test", name: "Test mirror" },
    repo: { project: "PROJ", slug },
    at: Date.UTC(2026, 11, 3, 1, 2, 3),
    syncType: "incremental",
    changes: diffRefs(new Map([["refs/heads/main", A]]), new Map([["refs/heads/main", B], ["refs/tags/v1", B]])),
  });
}

function delivery(urls: string[], over: Partial<ConstructorParameters<typeof EventDelivery>[0]> = {}) {
  const registry = new Registry();
  const lines: Array<{ obj: object; msg?: string }> = [];
  const log = { info: (obj: object, msg?: string) => lines.push({ obj, msg }), warn: (obj: object, msg?: string) => lines.push({ obj, msg }), error: (obj: object, msg?: string) => lines.push({ obj, msg }) };
  const d = new EventDelivery({ urls, secret: SECRET, queueSize: 100, maxAttempts: 4, timeoutMs: 5000, backoff: { baseMs: 5, maxMs: 20 }, registry, log, ...over });
  return { d, registry, lines };
}

test("a signed mirror:repo_synchronized POST that a Bitbucket webhook receiver verifies", async () => {
  const rx = await startEventReceiver();
  const { d, registry } = delivery([rx.url]);
  d.enqueue(event("app"));
  const [got] = await rx.count(1);
  await d.idle();
  expect(got.headers["x-event-key"]).toBe("mirror:repo_synchronized");
  expect(got.headers["content-type"]).toBe("application/json; charset=utf-8");
  expect(got.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
  // The receiver's check: HMAC-SHA256 of the raw body under the shared secret.
  expect(verifySignature([SECRET], got.body, got.headers["x-hub-signature"])).toBe(true);
  expect(verifySignature(["another-secret-0123"], got.body, got.headers["x-hub-signature"])).toBe(false);
  const body = JSON.parse(got.body.toString("utf8"));
  expect(body).toEqual({
    eventKey: "mirror:repo_synchronized",
    date: "2026-12-03T01:02:03+0000",
    mirrorServer: { id: "mirror.test", name: "Test mirror" },
    syncType: "incremental",
    refLimitExceeded: false,
    repository: { slug: "app", id: "PROJ/app", name: "app", scmId: "git", project: { key: "PROJ", name: "PROJ" } },
    changes: [
      { ref: { id: "refs/heads/main", displayId: "main", type: "BRANCH" }, refId: "refs/heads/main", fromHash: A, toHash: B, type: "UPDATE" },
      { ref: { id: "refs/tags/v1", displayId: "v1", type: "TAG" }, refId: "refs/tags/v1", fromHash: "0".repeat(40), toHash: B, type: "ADD" },
    ],
  });
  const metrics = await registry.metrics();
  expect(metrics).toMatch(/smart_mirror_events_delivered_total 1/);
  expect(metrics).toMatch(/smart_mirror_events_queue_depth 0/);
});

test("5xx answers are retried with the same request id until delivered; the secret is never logged", async () => {
  const rx = await startEventReceiver();
  rx.answer = (_r, n) => (n <= 2 ? 500 : 200);
  const { d, registry, lines } = delivery([rx.url]);
  d.enqueue(event("app"));
  const got = await rx.count(3);
  await d.idle();
  expect(new Set(got.map((g) => g.headers["x-request-id"])).size).toBe(1);
  expect(got.every((g) => g.body.equals(got[0].body))).toBe(true);
  expect(d.counts).toEqual({ delivered: 1, failed: 0, dropped: 0, retries: 2 });
  expect(await registry.metrics()).toMatch(/smart_mirror_events_retries_total 2/);
  const logged = JSON.stringify(lines);
  expect(logged).toContain("synced event delivery failed; retrying");
  expect(logged).not.toContain(SECRET);
  expect(logged).not.toContain("/hooks/mirror"); // a URL's path may be a credential: origins only
});

test("out of attempts: given up and counted; a 4xx is final at once", async () => {
  const down = await startEventReceiver();
  down.answer = () => 503;
  const refusing = await startEventReceiver();
  refusing.answer = () => 403;
  const { d, registry } = delivery([down.url, refusing.url]);
  d.enqueue(event("app"));
  await d.idle();
  expect(down.received).toHaveLength(4); // maxAttempts
  expect(refusing.received).toHaveLength(1);
  expect(d.counts.failed).toBe(2);
  expect(await registry.metrics()).toMatch(/smart_mirror_events_failed_total 2/);
});

test("a full queue drops the oldest waiting delivery, counts it, and never blocks enqueue", async () => {
  const rx = await startEventReceiver();
  rx.answer = () => "hold";
  const { d, registry } = delivery([rx.url], { concurrency: 1, queueSize: 2 });
  for (const slug of ["r1", "r2", "r3", "r4", "r5"]) d.enqueue(event(slug));
  // r1 is in flight (held by the receiver); r2 and r3 were pushed out by r4 and r5.
  expect(d.queueDepth).toBe(2);
  expect(d.counts.dropped).toBe(2);
  expect(await registry.metrics()).toMatch(/smart_mirror_events_dropped_total 2/);
  expect(await registry.metrics()).toMatch(/smart_mirror_events_queue_depth 2/);
  rx.answer = () => 200;
  await rx.count(1);
  rx.release(200);
  const got = await rx.count(3);
  await d.idle();
  expect(got.map((g) => JSON.parse(g.body.toString("utf8")).repository.slug)).toEqual(["r1", "r4", "r5"]);
  expect(d.counts.delivered).toBe(3);
});

test("a receiver that never answers costs one timeout per attempt, then the delivery is retried", async () => {
  const rx = await startEventReceiver();
  rx.answer = (_r, n) => (n === 1 ? "hold" : 200);
  const { d } = delivery([rx.url], { timeoutMs: 200 });
  d.enqueue(event("app"));
  await rx.count(2);
  await d.idle();
  expect(d.counts).toMatchObject({ delivered: 1, retries: 1 });
});

test("decisions: verdicts, backoff bounds, log targets", () => {
  expect(verdictOf(204, null)).toEqual({ kind: "delivered" });
  expect(verdictOf(503, "7")).toEqual({ kind: "retry", why: "HTTP 503", retryAfterMs: 7000 });
  expect(verdictOf(429, "soon")).toEqual({ kind: "retry", why: "HTTP 429", retryAfterMs: undefined });
  expect(verdictOf(302, null).kind).toBe("fail");
  expect(verdictOf(404, null).kind).toBe("fail");
  const b = { baseMs: 1000, maxMs: 60_000 };
  expect(retryDelayMs(1, b, 0)).toBe(500);
  expect(retryDelayMs(1, b, 1)).toBe(1000);
  expect(retryDelayMs(3, b, 1)).toBe(4000);
  expect(retryDelayMs(30, b, 1)).toBe(60_000);
  expect(retryDelayMs(1, b, 0, 30_000)).toBe(30_000);
  expect(retryDelayMs(1, b, 0, 600_000)).toBe(60_000); // Retry-After is capped too
  expect(urlTarget("https://ci.example.com:8443/hooks/SECRET-TOKEN?x=1")).toBe("https://ci.example.com:8443");
});
