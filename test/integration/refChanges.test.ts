/**
 * The engine's ref changes (what the synced event reports), against a real sshd primary:
 * every kind of change with its old and new object, on the reconcile path and the webhook
 * fast path; nothing extra is read when no one asked for changes.
 */
import { startInProcessMirror } from "../../testbed/inProcessMirror";
import { startPrimary } from "../../testbed/primary";
import { workingClone } from "../../testbed/repos";
import type { SyncedNotice } from "../../sync/daemon/daemon";
import { ZERO_SHA } from "../../sync/events/payload";

jest.setTimeout(180_000);

test("ADD, UPDATE (force-push too), DELETE with old/new objects; none reported when tracking is off", async () => {
  const primary = await startPrimary();
  await primary.createRepo("PROJ", "app");
  const wc = await workingClone(primary.remote("PROJ", "app"));
  const c1 = await wc.commit({ "a.txt": "1\n" });
  await wc.branch("gone");
  await wc.pushAll();

  const m = await startInProcessMirror(primary, [{ project: "PROJ", slug: "app" }], { trackRefChanges: true });
  const notices: SyncedNotice[] = [];
  m.daemon.onSynced((n) => notices.push(n));
  await m.daemon.idle();
  expect(notices).toHaveLength(1);
  expect(notices[0].outcome.created).toBe(true);
  expect(notices[0].outcome.refChanges).toEqual([
    { refId: "refs/heads/gone", fromHash: ZERO_SHA, toHash: c1, type: "ADD" },
    { refId: "refs/heads/main", fromHash: ZERO_SHA, toHash: c1, type: "ADD" },
  ]);

  // Reconcile path: a new commit, a force-pushed replacement, a deleted branch, a new tag.
  await wc.commit({ "a.txt": "2\n" });
  const { after } = await wc.forcePushRewrite("main", { "a.txt": "2b\n" });
  await wc.deleteBranch("gone");
  await wc.tag("v1");
  await wc.push(["refs/tags/v1"]);
  await m.daemon.reconcile();
  await m.daemon.idle();
  expect(notices).toHaveLength(2);
  expect(notices[1].reason).toBe("reconcile");
  expect(notices[1].outcome.refChanges).toEqual([
    { refId: "refs/heads/gone", fromHash: c1, toHash: ZERO_SHA, type: "DELETE" },
    { refId: "refs/heads/main", fromHash: c1, toHash: after, type: "UPDATE" },
    { refId: "refs/tags/v1", fromHash: ZERO_SHA, toHash: after, type: "ADD" },
  ]);

  // Webhook fast path (no scan): the same report.
  const c3 = await wc.commit({ "a.txt": "3\n" });
  await wc.push(["main"]);
  m.daemon.refsChanged("PROJ/app");
  await m.daemon.idle();
  expect(notices[2].reason).toBe("webhook");
  expect(notices[2].outcome.refChanges).toEqual([{ refId: "refs/heads/main", fromHash: after, toHash: c3, type: "UPDATE" }]);
  await m.stop();

  // Tracking off (no event receivers): outcomes carry no changes.
  const off = await startInProcessMirror(primary, [{ project: "PROJ", slug: "app" }]);
  const offNotices: SyncedNotice[] = [];
  off.daemon.onSynced((n) => offNotices.push(n));
  await off.daemon.idle();
  expect(offNotices).toHaveLength(1);
  expect(offNotices[0].outcome.fetched).toBe(true);
  expect(offNotices[0].outcome.refChanges).toBeUndefined();
  await off.stop();
});
