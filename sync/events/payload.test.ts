import type { SyncedNotice } from "../daemon/daemon";
import type { SyncOutcome } from "../daemon/engine";
import { bitbucketDate, diffRefs, MAX_EVENT_CHANGES, refOf, syncedEvent, ZERO_SHA } from "./payload";
import { eventForSync } from "./syncedEvents";

const A = "a".repeat(40);
const B = "b".repeat(40);
const MIRROR = { id: "mirror.test", name: "Test mirror", baseUrl: "https://mirror.test" };

test("diffRefs: added, updated, deleted and unchanged refs, in ref order", () => {
  const before = new Map([["refs/heads/main", A], ["refs/heads/gone", A], ["refs/tags/v1", A]]);
  const after = new Map([["refs/heads/main", B], ["refs/tags/v1", A], ["refs/heads/new", B]]);
  expect(diffRefs(before, after)).toEqual([
    { refId: "refs/heads/gone", fromHash: A, toHash: ZERO_SHA, type: "DELETE" },
    { refId: "refs/heads/main", fromHash: A, toHash: B, type: "UPDATE" },
    { refId: "refs/heads/new", fromHash: ZERO_SHA, toHash: B, type: "ADD" },
  ]);
  expect(diffRefs(after, after)).toEqual([]);
});

test("Bitbucket's ref objects and date format", () => {
  expect(refOf("refs/heads/feature/x")).toEqual({ id: "refs/heads/feature/x", displayId: "feature/x", type: "BRANCH" });
  expect(refOf("refs/tags/v1.0")).toEqual({ id: "refs/tags/v1.0", displayId: "v1.0", type: "TAG" });
  expect(refOf("refs/notes/commits").displayId).toBe("refs/notes/commits");
  expect(bitbucketDate(Date.UTC(2026, 0, 2, 3, 4, 5, 678))).toBe("2026-01-02T03:04:05+0000");
});

test("more changes than the limit: an empty list and refLimitExceeded, as Bitbucket sends", () => {
  const many = new Map(Array.from({ length: MAX_EVENT_CHANGES + 1 }, (_, i) => [`refs/tags/t${i}`, A] as [string, string]));
  const e = syncedEvent({ mirror: MIRROR, repo: { project: "P", slug: "r" }, at: 0, syncType: "snapshot", changes: diffRefs(new Map(), many) });
  expect(e.refLimitExceeded).toBe(true);
  expect(e.changes).toEqual([]);
  const at = syncedEvent({ mirror: MIRROR, repo: { project: "P", slug: "r" }, at: 0, syncType: "snapshot", changes: diffRefs(new Map(), many).slice(1) });
  expect(at.refLimitExceeded).toBe(false);
  expect(at.changes).toHaveLength(MAX_EVENT_CHANGES);
});

function notice(o: Partial<SyncOutcome>): SyncedNotice {
  const outcome: SyncOutcome = { fetched: true, created: false, bytes: 10, converged: true, recloned: false, maintenance: [], ...o };
  return { key: "PROJ/app", id: { project: "PROJ", slug: "app" }, reason: "webhook", durationMs: 5, outcome, at: 0 };
}

test("an event for syncs that changed refs only; first clones and reclones are snapshots", () => {
  const change = [{ refId: "refs/heads/main", fromHash: A, toHash: B, type: "UPDATE" as const }];
  expect(eventForSync(notice({ refChanges: change }), MIRROR)?.syncType).toBe("incremental");
  expect(eventForSync(notice({ refChanges: change, created: true }), MIRROR)?.syncType).toBe("snapshot");
  expect(eventForSync(notice({ refChanges: change, recloned: true }), MIRROR)?.syncType).toBe("snapshot");
  expect(eventForSync(notice({ refChanges: change }), MIRROR)?.repository.links).toEqual({ clone: [{ href: "https://mirror.test/scm/PROJ/app.git", name: "http" }] });
  // A fetch that brought nothing (a duplicate webhook), maintenance only, or tracking off: no event.
  expect(eventForSync(notice({ refChanges: [] }), MIRROR)).toBeUndefined();
  expect(eventForSync(notice({ fetched: false, maintenance: ["repack"] }), MIRROR)).toBeUndefined();
  expect(eventForSync(notice({}), MIRROR)).toBeUndefined();
});
