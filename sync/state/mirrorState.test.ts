import { RepoStatus } from "../types";
import { describeError, failureKind } from "./failureKind";
import { delayReason, isReady, MirrorFacts, mirrorState, statusHttpCode } from "./mirrorState";

const base: MirrorFacts = { catalogKnown: true, totalRepos: 10, everSynced: 10, failing: 0, delayed: 0, initialSyncComplete: true, primaryReachable: true, caughtUp: true };

describe("mirrorState", () => {
  test.each<[string, Partial<MirrorFacts>, string]>([
    ["catalog never read, primary not probed yet", { catalogKnown: false, primaryReachable: undefined, everSynced: 0, totalRepos: 0, initialSyncComplete: false }, "STARTING"],
    ["catalog never read, primary reachable", { catalogKnown: false, everSynced: 0, totalRepos: 0, initialSyncComplete: false }, "STARTING"],
    ["catalog never read, primary unreachable", { catalogKnown: false, primaryReachable: false, everSynced: 0, totalRepos: 0, initialSyncComplete: false }, "ERROR"],
    ["nothing synced yet, all fine", { everSynced: 0, initialSyncComplete: false }, "INITIAL_SYNC"],
    ["half synced", { everSynced: 5, initialSyncComplete: false }, "INITIAL_SYNC"],
    ["half synced, primary not probed", { everSynced: 5, initialSyncComplete: false, primaryReachable: undefined }, "INITIAL_SYNC"],
    ["all synced", {}, "SYNCHRONIZED"],
    ["all synced, disk low: syncs paused", { diskLow: true }, "DEGRADED"],
    ["empty catalog", { totalRepos: 0, everSynced: 0 }, "SYNCHRONIZED"],
    ["restarted, every copy on disk, first reconcile round not done", { caughtUp: false }, "INITIAL_SYNC"],
    ["restarted, first round not done, a repo failing", { caughtUp: false, failing: 1, delayed: 1 }, "DEGRADED"],
    ["restarted, first round not done, primary unreachable", { caughtUp: false, primaryReachable: false }, "DEGRADED"],
    ["initial sync done, a repo added later not synced yet", { totalRepos: 11, everSynced: 10 }, "SYNCHRONIZED"],
    ["primary unreachable after sync", { primaryReachable: false }, "DEGRADED"],
    ["empty catalog, primary unreachable", { totalRepos: 0, everSynced: 0, primaryReachable: false }, "DEGRADED"],
    ["one repo failing", { failing: 1, delayed: 1 }, "DEGRADED"],
    ["one repo delayed", { delayed: 1 }, "DEGRADED"],
    ["a repo failing during initial sync", { everSynced: 5, failing: 1, delayed: 1, initialSyncComplete: false }, "DEGRADED"],
    ["primary down during initial sync, some synced", { everSynced: 5, initialSyncComplete: false, primaryReachable: false }, "DEGRADED"],
    ["primary down, nothing synced", { everSynced: 0, initialSyncComplete: false, primaryReachable: false }, "ERROR"],
    ["every repo failing, nothing synced", { everSynced: 0, failing: 10, delayed: 10, initialSyncComplete: false }, "ERROR"],
    ["every repo failing but content was synced before", { failing: 10, delayed: 10 }, "DEGRADED"],
    ["all but one failing, nothing synced", { everSynced: 0, failing: 9, delayed: 9, initialSyncComplete: false }, "DEGRADED"],
  ])("%s", (_name, over, want) => {
    expect(mirrorState({ ...base, ...over })).toBe(want);
  });

  test("503 only when nothing can be served", () => {
    expect([statusHttpCode("STARTING"), statusHttpCode("ERROR")]).toEqual([503, 503]);
    expect([statusHttpCode("INITIAL_SYNC"), statusHttpCode("SYNCHRONIZED"), statusHttpCode("DEGRADED")]).toEqual([200, 200, 200]);
  });
});

describe("isReady", () => {
  test.each<[string, Partial<MirrorFacts>, boolean]>([
    ["synchronized", {}, true],
    ["initial sync, nothing failing", { everSynced: 5, initialSyncComplete: false, firstCopiesPending: 5 }, false],
    // A joining farm node or a new mirror: one failure must not open the door while most copies are missing.
    ["first sync, one failing, copies still being made", { everSynced: 5, failing: 1, delayed: 1, initialSyncComplete: false, firstCopiesPending: 4 }, false],
    ["first sync, primary down, copies still missing", { everSynced: 5, initialSyncComplete: false, primaryReachable: false, firstCopiesPending: 5 }, false],
    ["first sync done but for a failing repo", { everSynced: 9, failing: 1, delayed: 1, initialSyncComplete: false, firstCopiesPending: 0 }, true],
    ["synced once, now one failing", { failing: 1, delayed: 1 }, true],
    ["synced once, primary down", { primaryReachable: false }, true],
    ["synced once, a repo added later still to copy, another failing", { totalRepos: 12, everSynced: 10, failing: 1, delayed: 1, firstCopiesPending: 1 }, true],
    ["restarted, first round not done", { caughtUp: false }, false],
    ["error", { everSynced: 0, failing: 10, delayed: 10, initialSyncComplete: false }, false],
  ])("%s", (_name, over, want) => {
    const f = { ...base, ...over };
    expect(isReady(mirrorState(f), f)).toBe(want);
  });
});

describe("delayReason", () => {
  const now = 1_000_000;
  const T = 60_000;
  const repo = (over: Partial<RepoStatus>): RepoStatus => ({ key: "P/r", state: "synced", consecutiveFailures: 0, lastSyncedAt: now - 3_600_000, ...over });
  test.each<[string, Partial<RepoStatus>, boolean, string | undefined]>([
    ["up to date", {}, true, undefined],
    ["synced an hour ago, pushed just now", { behindSince: now - 1000 }, true, undefined],
    ["behind exactly the threshold", { behindSince: now - T }, true, "behind"],
    ["behind longer than the threshold", { behindSince: now - 5 * T }, true, "behind"],
    ["failing just now", { state: "failing", consecutiveFailures: 1, failingSince: now - 1000 }, true, undefined],
    ["failing for the tolerance", { state: "failing", consecutiveFailures: 1, failingSince: now - T }, true, "failing"],
    ["failing just now, behind for longer", { state: "failing", consecutiveFailures: 1, failingSince: now - 1000, behindSince: now - 5 * T }, true, "failing"],
    ["being retried after failing for long", { state: "syncing", consecutiveFailures: 2, failingSince: now - 2 * T }, true, "failing"],
    ["never synced, initial sync running", { lastSyncedAt: undefined, state: "new", behindSince: now - 5 * T }, false, undefined],
    ["never synced, added after the initial sync", { lastSyncedAt: undefined, state: "new", behindSince: now - 5 * T }, true, "behind"],
    ["never synced and failing during initial sync", { lastSyncedAt: undefined, state: "failing", consecutiveFailures: 1, failingSince: now - T }, false, "failing"],
    ["never synced, failing briefly, behind (ignored) during initial sync", { lastSyncedAt: undefined, state: "failing", consecutiveFailures: 1, failingSince: now - 1, behindSince: now - 5 * T }, false, undefined],
  ])("%s", (_name, over, complete, want) => {
    expect(delayReason(repo(over), now, T, complete)).toBe(want);
  });
});

describe("failureKind", () => {
  const withCode = (code: string, msg: string) => Object.assign(new Error(msg), { code });
  test.each<[unknown, string]>([
    [withCode("ETIMEDOUT", "connect ETIMEDOUT 10.0.0.1:22"), "timeout"],
    [new Error("Timed out while waiting for handshake"), "timeout"],
    [new Error("git@primary: Permission denied (publickey)."), "auth"],
    [new Error("All configured authentication methods failed"), "auth"],
    [new Error("Host key verification failed."), "host_key"],
    [withCode("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:7999"), "network"],
    [new Error("read ECONNRESET"), "network"],
    [new Error("fatal: 'PROJ/x.git' does not appear to be a git repository"), "not_found"],
    [new Error("write error: No space left on device"), "disk"],
    [new Error("fatal: bad object 1234"), "git"],
    [new Error("something odd"), "other"],
    ["a plain string about ENOSPC", "disk"],
    [Object.assign(new Error("whatever"), { kind: "auth" }), "auth"],
    [Object.assign(new Error("connect ECONNREFUSED"), { kind: "not-a-kind" }), "network"],
    [undefined, "other"],
  ])("%p -> %s", (err, want) => {
    expect(failureKind(err)).toBe(want);
  });
});

describe("describeError", () => {
  test("masks credentials in URLs and bounds the length", () => {
    expect(describeError(new Error("fetch https://bob:s3cret@primary.example.com/scm/P/r.git failed"))).toBe("fetch https://***@primary.example.com/scm/P/r.git failed");
    const long = describeError("x".repeat(5000));
    expect(long.length).toBe(500);
    expect(long.endsWith("…")).toBe(true);
  });
  test("adds the errno code when the message lacks it", () => {
    expect(describeError(withCodeOnly())).toBe("EPIPE: write failed");
  });
});

function withCodeOnly() {
  return Object.assign(new Error("write failed"), { code: "EPIPE" });
}
