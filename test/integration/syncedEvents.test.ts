/**
 * The synced event and the long-poll through the production path: a real sshd primary, the
 * built daemon (dist/smart-mirror.js) behind the rendered nginx with real TLS, and a real HTTP
 * receiver. A push reaches the mirror (by webhook, or by the interval's reconcile); the
 * receiver gets a signed mirror:repo_synchronized with the ref's old and new tip, and a
 * long-poll parked on the new commit answers as that sync completes.
 *
 * Latencies are printed (measured, not asserted: the machine is shared and noisy).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { verifySignature } from "../../sync/serve/webhookSignature";
import { startEventReceiver } from "../../testbed/eventReceiver";
import { MirrorBehindNginx, startMirrorBehindNginx } from "../../testbed/mirrorBehindNginx";
import { Primary, startPrimary } from "../../testbed/primary";
import { workingClone } from "../../testbed/repos";
import { tempDir, waitFor } from "../../testbed/resources";
import { refsChangedPayload } from "../../testbed/webhook";

jest.setTimeout(240_000);

const EVENTS_SECRET = "evsec-integration-0123456789";

function secretFile(): string {
  const file = path.join(tempDir("events"), "events-secret");
  fs.writeFileSync(file, `${EVENTS_SECRET}\n`, { mode: 0o600 });
  return file;
}

async function metric(m: MirrorBehindNginx, name: string): Promise<number> {
  const text = (await m.request("GET", "/metrics")).body.toString("utf8");
  // Summed over label sets (histogram counts carry the sync reason).
  const lines = text.split("\n").filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return lines.reduce((n, l) => n + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
}

async function setup(primary: Primary, extra: Record<string, string>) {
  await primary.createRepo("PROJ", "app");
  const wc = await workingClone(primary.remote("PROJ", "app"));
  const first = await wc.commit({ "a.txt": "1\n" });
  await wc.pushAll();
  const rx = await startEventReceiver();
  const m = await startMirrorBehindNginx({
    primary,
    repos: [{ project: "PROJ", slug: "app" }],
    webhookSecret: "whsec-integration-0123456789",
    properties: { "mirror.events.urls": rx.url, "mirror.events.secretFile": secretFile(), ...extra },
  });
  await m.waitSynchronized();
  return { wc, first, rx, m };
}

/** When the daemon last logged "synced" (its pino line's ISO time). */
function lastSyncedLogTime(m: MirrorBehindNginx): number {
  const lines = m.daemon.output().split("\n").filter((l) => l.includes('"msg":"synced"'));
  // Measurement only: a line not read from the pipe yet gives NaN, never a failure.
  return lines.length === 0 ? NaN : Date.parse((JSON.parse(lines[lines.length - 1]) as { time: string }).time);
}

/** GET the long-poll through nginx once the daemon holds the waiter; resolves with the answer and when it came. */
async function parkedWait(m: MirrorBehindNginx, commit: string, timeout = 120) {
  const before = await metric(m, "smart_mirror_commit_waiters");
  const answer = m.request("GET", `/status/repos/PROJ/app/wait?commit=${commit}&timeout=${timeout}`).then((r) => ({ r, at: Date.now() }));
  await waitFor("the long-poll parked in the daemon", async () => (await metric(m, "smart_mirror_commit_waiters")) > before, 30_000, 20);
  // Wrapped: an async function returning the promise itself would wait for the answer.
  return { answer };
}

test("webhook: signed event with old/new tips, long-poll wakes on the sync; duplicates send nothing; timeout answers present:false", async () => {
  const primary = await startPrimary();
  const { wc, first, rx, m } = await setup(primary, { "plugin.mirroring.synchronization.interval": "1h" });

  // The first clone: a snapshot, every ref added.
  const [initial] = await rx.count(1);
  expect(verifySignature([EVENTS_SECRET], initial.body, initial.headers["x-hub-signature"])).toBe(true);
  const snap = JSON.parse(initial.body.toString("utf8"));
  expect(snap).toMatchObject({
    eventKey: "mirror:repo_synchronized",
    mirrorServer: { id: "mirror.test", name: "Test mirror" },
    syncType: "snapshot",
    refLimitExceeded: false,
    repository: { slug: "app", project: { key: "PROJ" }, links: { clone: [{ href: "https://mirror.test/scm/PROJ/app.git", name: "http" }] } },
    changes: [{ refId: "refs/heads/main", fromHash: "0".repeat(40), toHash: first, type: "ADD", ref: { id: "refs/heads/main", displayId: "main", type: "BRANCH" } }],
  });

  // A commit CI will ask for before the mirror has it.
  const next = await wc.commit({ "a.txt": "2\n" });
  const early = await m.request("GET", `/status/repos/PROJ/app/wait?commit=${next}&timeout=0`);
  expect(JSON.parse(early.body.toString("utf8"))).toMatchObject({ present: false });
  const waiting = await parkedWait(m, next);
  await wc.push(["main"]);
  const t0 = Date.now();
  expect(await m.postWebhook(refsChangedPayload("PROJ", "app"))).toBe(202);
  const { r, at: answeredAt } = await waiting.answer;
  expect(r.status).toBe(200);
  expect(JSON.parse(r.body.toString("utf8"))).toMatchObject({ repository: "PROJ/app", commit: next, present: true });
  const [, update] = await rx.count(2);
  expect(verifySignature([EVENTS_SECRET], update.body, update.headers["x-hub-signature"])).toBe(true);
  expect(update.headers["x-event-key"]).toBe("mirror:repo_synchronized");
  expect(JSON.parse(update.body.toString("utf8"))).toMatchObject({ syncType: "incremental", changes: [{ refId: "refs/heads/main", fromHash: first, toHash: next, type: "UPDATE" }] });
  const syncedAt = lastSyncedLogTime(m);
  console.log(
    `webhook -> long-poll answered: ${answeredAt - t0} ms; webhook -> event received: ${update.at - t0} ms; ` +
      `after the daemon logged the sync: long-poll +${answeredAt - syncedAt} ms, event +${update.at - syncedAt} ms (log times have ms resolution)`,
  );

  // A duplicate webhook: the sync runs, brings nothing, and sends no event.
  const syncsBefore = await metric(m, "smart_mirror_sync_duration_seconds_count");
  expect(await m.postWebhook(refsChangedPayload("PROJ", "app"))).toBe(202);
  await waitFor("the duplicate's sync", async () => (await metric(m, "smart_mirror_sync_duration_seconds_count")) > syncsBefore, 30_000, 20);
  // A branch deletion and a tag: one more event, with exactly these changes.
  await wc.tag("v1");
  await wc.push(["refs/tags/v1"]);
  expect(await m.postWebhook(refsChangedPayload("PROJ", "app"))).toBe(202);
  const all = await rx.count(3);
  expect(JSON.parse(all[2].body.toString("utf8")).changes).toEqual([{ ref: { id: "refs/tags/v1", displayId: "v1", type: "TAG" }, refId: "refs/tags/v1", fromHash: "0".repeat(40), toHash: next, type: "ADD" }]);
  // Counted once the receiver's answer is read, a moment after it recorded the request.
  await waitFor("3 deliveries counted", async () => (await metric(m, "smart_mirror_events_delivered_total")) === 3, 30_000, 20);

  // A commit that never comes: present:false at the timeout.
  const never = await m.request("GET", `/status/repos/PROJ/app/wait?commit=${"e".repeat(40)}&timeout=1`);
  expect(never.status).toBe(200);
  expect(JSON.parse(never.body.toString("utf8"))).toMatchObject({ present: false, timeoutMs: 1000 });
  // Unknown repositories and bad names through nginx: 404 / 400 from the daemon.
  expect((await m.request("GET", `/status/repos/PROJ/nope/wait?commit=${next}`)).status).toBe(404);
  expect((await m.request("GET", `/status/repos/PROJ/app/wait?commit=abc`)).status).toBe(400);
});

test("no webhook: the interval's reconcile brings the push, and wakes the long-poll", async () => {
  const primary = await startPrimary();
  const { wc, rx, m } = await setup(primary, { "plugin.mirroring.synchronization.interval": "10s" });
  await rx.count(1);
  const next = await wc.commit({ "b.txt": "1\n" });
  const waiting = await parkedWait(m, next);
  await wc.push(["main"]);
  const t0 = Date.now();
  const { r, at } = await waiting.answer;
  expect(JSON.parse(r.body.toString("utf8"))).toMatchObject({ commit: next, present: true });
  const [, update] = await rx.count(2);
  expect(JSON.parse(update.body.toString("utf8"))).toMatchObject({ syncType: "incremental", changes: [{ toHash: next, type: "UPDATE" }] });
  console.log(`push -> long-poll answered (interval 10 s, no webhook): ${at - t0} ms`);
});
