import { METRIC_NAMES } from "./metrics";
import { StatusBoard } from "./statusBoard";

/** A board on a hand-driven clock. */
function board(delayedAfterMs = 60_000) {
  const clock = { t: 1_700_000_000_000 };
  const b = new StatusBoard({ now: () => clock.t, delayedAfterMs, defaultMetrics: false, info: { displayName: "Sydney", baseUrl: "https://syd.example.com" } });
  return { b, clock, tick: (ms: number) => (clock.t += ms) };
}

/** Value of one sample line in Prometheus text, e.g. sample(text, 'smart_mirror_repos{state="new"}'). */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("StatusBoard", () => {
  test("walks STARTING -> INITIAL_SYNC -> SYNCHRONIZED and latches the initial sync", () => {
    const { b, tick } = board();
    expect(b.summary().state).toBe("STARTING");
    b.setCatalog(["B/two", "A/one", "A/one"]);
    let s = b.snapshot();
    expect(s.state).toBe("INITIAL_SYNC");
    expect(s.initialSync).toEqual({ done: 0, total: 2, complete: false });
    expect(b.listRepos().values.map((r) => r.key)).toEqual(["A/one", "B/two"]);
    b.reconcileDone({ durationMs: 5, changed: 2, checked: 0 }); // queued both initial syncs

    b.syncStarted("A/one");
    expect(b.repo("A/one")?.state).toBe("syncing");
    tick(100);
    b.syncSucceeded("A/one", { durationMs: 100, changed: true, bytes: 1234 });
    expect(b.snapshot().initialSync.done).toBe(1);
    expect(b.summary().state).toBe("INITIAL_SYNC");

    b.syncStarted("B/two");
    tick(50);
    b.syncSucceeded("B/two", { durationMs: 50, changed: true });
    s = b.snapshot();
    expect(s.state).toBe("SYNCHRONIZED");
    expect(s.initialSync).toMatchObject({ done: 2, total: 2, complete: true, completedAt: s.now });

    // A repo created on the primary later does not send the mirror back to INITIAL_SYNC.
    b.setCatalog(["A/one", "B/two", "C/three"]);
    expect(b.summary().state).toBe("SYNCHRONIZED");
    expect(b.repo("C/three")).toMatchObject({ state: "new", behindSince: s.now });
  });

  test("after a restart, copies on disk are not SYNCHRONIZED until the first reconcile round is done", () => {
    const { b, clock, tick } = board();
    const onDisk = clock.t - 86_400_000; // synced a day ago, then the daemon was down
    b.setCatalog(["P/a", "P/b", "P/c"], { lastSyncedAt: () => onDisk });
    expect(b.summary()).toMatchObject({ state: "INITIAL_SYNC", facts: { everSynced: 3, caughtUp: false } });
    tick(200);
    // The first reconcile finds P/b behind the primary; P/c's sync started meanwhile (a webhook).
    b.markBehind("P/b");
    b.syncStarted("P/c");
    b.reconcileDone({ durationMs: 150, changed: 1, checked: 3 });
    expect(b.summary().state).toBe("INITIAL_SYNC");
    b.syncStarted("P/b");
    tick(10);
    b.syncSucceeded("P/b", { durationMs: 10, changed: true });
    expect(b.summary().state).toBe("INITIAL_SYNC"); // P/c still running
    b.syncSucceeded("P/c", { durationMs: 220, changed: true });
    expect(b.summary()).toMatchObject({ state: "SYNCHRONIZED", facts: { caughtUp: true } });
    // Latched: later pushes and reconciles do not send it back.
    b.markBehind("P/a");
    b.reconcileDone({ durationMs: 150, changed: 1, checked: 3 });
    expect(b.summary().state).toBe("SYNCHRONIZED");
  });

  test("after a restart: a failed reconcile does not count; a repo that fails ends its part of the round", () => {
    const { b, clock } = board();
    b.setCatalog(["P/a", "P/b"], { lastSyncedAt: () => clock.t - 1000 });
    b.reconcileDone({ durationMs: 20, changed: 0, checked: 0, error: new Error("Connection refused") });
    expect(b.summary().facts.caughtUp).toBe(false);
    b.markBehind("P/a");
    b.reconcileDone({ durationMs: 20, changed: 1, checked: 2 });
    expect(b.summary().state).toBe("INITIAL_SYNC");
    b.syncFailed("P/a", new Error("fatal: bad object"));
    expect(b.summary()).toMatchObject({ state: "DEGRADED", facts: { caughtUp: true } });
    // A repo dropped from the catalog before it synced no longer holds the round either.
    const { b: b2 } = board();
    b2.setCatalog(["P/a", "P/gone"], { lastSyncedAt: (k) => (k === "P/a" ? 1 : undefined) });
    b2.reconcileDone({ durationMs: 20, changed: 1, checked: 1 });
    expect(b2.summary().state).toBe("INITIAL_SYNC");
    b2.setCatalog(["P/a"]);
    expect(b2.summary().state).toBe("SYNCHRONIZED");
  });

  test("a failing repo degrades the mirror, shows its error and retry, and recovers", () => {
    const { b, tick } = board();
    b.setCatalog(["P/a", "P/b"]);
    b.reconcileDone({ durationMs: 5, changed: 2, checked: 0 });
    b.syncSucceeded("P/a", { durationMs: 10, changed: true });
    b.syncSucceeded("P/b", { durationMs: 10, changed: true });
    b.syncStarted("P/b");
    b.syncFailed("P/b", new Error("git@primary: Permission denied (publickey)."), { nextRetryAt: 1_700_000_030_000 });
    expect(b.summary().state).toBe("DEGRADED");
    expect(b.repo("P/b")).toMatchObject({ state: "failing", consecutiveFailures: 1, lastError: "git@primary: Permission denied (publickey).", nextRetryAt: 1_700_000_030_000 });
    // Failing makes the mirror DEGRADED at once; the delayed list takes it after the tolerance.
    expect(b.delayed()).toEqual([]);
    tick(59_999);
    expect(b.delayed()).toEqual([]);
    tick(1);
    expect(b.delayed().map((d) => [d.key, d.reason, d.since])).toEqual([["P/b", "failing", b.summary().now - 60_000]]);

    b.syncStarted("P/b"); // the retry: "syncing", but still failing (and delayed) until it succeeds
    expect(b.listRepos({ state: "syncing" }).values.map((r) => r.key)).toEqual(["P/b"]);
    expect(b.delayed().map((d) => [d.key, d.reason])).toEqual([["P/b", "failing"]]);
    expect(b.summary()).toMatchObject({ state: "DEGRADED", facts: { failing: 1 } });
    b.syncFailed("P/b", "still denied");
    expect(b.repo("P/b")?.consecutiveFailures).toBe(2);

    expect(b.repo("P/b")?.failingSince).toBe(b.summary().now - 60_000); // from the first failure of the streak
    tick(1000);
    b.syncStarted("P/b");
    b.syncSucceeded("P/b", { durationMs: 5, changed: false });
    expect(b.repo("P/b")).toEqual({ key: "P/b", state: "synced", consecutiveFailures: 0, lastSyncedAt: b.summary().now });
    expect(b.summary().state).toBe("SYNCHRONIZED");
    expect(b.delayed()).toEqual([]);
  });

  test("nothing works: primary down before anything synced is ERROR; after, DEGRADED", () => {
    const { b } = board();
    b.primaryReachable(false, new Error("connect ECONNREFUSED 10.0.0.5:7999"));
    expect(b.summary().state).toBe("ERROR");
    b.setCatalog(["P/a"]);
    expect(b.summary().state).toBe("ERROR");
    expect(b.snapshot().primary).toMatchObject({ reachable: false, lastError: "connect ECONNREFUSED 10.0.0.5:7999" });
    b.primaryReachable(true);
    b.syncSucceeded("P/a", { durationMs: 1, changed: true });
    b.primaryReachable(false);
    expect(b.summary().state).toBe("DEGRADED");
    // The last error stays visible after recovery, with its time.
    b.primaryReachable(true);
    expect(b.snapshot().primary.lastError).toContain("ECONNREFUSED");
  });

  test("behind: delayed after the threshold, cleared only by a fetch that started after the change", () => {
    const { b, clock, tick } = board(60_000);
    b.setCatalog(["P/a"]);
    b.syncSucceeded("P/a", { durationMs: 1, changed: true });

    const pushedAt = clock.t;
    b.markBehind("P/a", pushedAt);
    tick(59_999);
    expect(b.delayed()).toEqual([]);
    tick(1);
    expect(b.delayed()).toEqual([expect.objectContaining({ key: "P/a", reason: "behind", lagMs: 60_000 })]);
    expect(b.summary()).toMatchObject({ state: "DEGRADED", maxLagMs: 60_000 });

    // A later markBehind does not move the start of the lag forward.
    b.markBehind("P/a", clock.t);
    expect(b.repo("P/a")?.behindSince).toBe(pushedAt);

    // A fetch that started before a second push does not clear the second one.
    b.syncStarted("P/a");
    tick(10);
    b.syncSucceeded("P/a", { durationMs: 10, changed: true });
    expect(b.repo("P/a")?.behindSince).toBeUndefined();
    b.syncStarted("P/a");
    tick(5);
    b.markBehind("P/a", clock.t); // pushed while the fetch runs
    tick(5);
    b.syncSucceeded("P/a", { durationMs: 10, changed: true });
    expect(b.repo("P/a")?.behindSince).toBe(clock.t - 5);
  });

  test("catalog changes: removed repos are forgotten, updates for unknown repos are ignored", () => {
    const { b } = board();
    b.setCatalog(["P/a", "P/b"]);
    b.reconcileDone({ durationMs: 5, changed: 2, checked: 0 });
    b.syncSucceeded("P/a", { durationMs: 1, changed: true });
    b.setCatalog(["P/a"]);
    expect(b.snapshot()).toMatchObject({ state: "SYNCHRONIZED", initialSync: { done: 1, total: 1, complete: true } });
    b.syncStarted("X/gone");
    b.syncFailed("X/gone", "nope");
    b.syncSucceeded("X/gone", { durationMs: 1, changed: true });
    b.markBehind("X/gone");
    expect(b.repo("X/gone")).toBeUndefined();
    expect(b.summary().facts.totalRepos).toBe(1);
  });

  test("listRepos pages in key order and filters by state", () => {
    const { b } = board();
    b.setCatalog(Array.from({ length: 25 }, (_, i) => `P/r${String(i).padStart(2, "0")}`));
    for (let i = 0; i < 25; i += 2) b.syncSucceeded(`P/r${String(i).padStart(2, "0")}`, { durationMs: 1, changed: true });
    const p = b.listRepos({ start: 10, limit: 5 });
    expect(p.matched).toBe(25);
    expect(p.values.map((r) => r.key)).toEqual(["P/r10", "P/r11", "P/r12", "P/r13", "P/r14"]);
    const synced = b.listRepos({ state: "synced", limit: 3 });
    expect(synced.matched).toBe(13);
    expect(synced.values.map((r) => r.key)).toEqual(["P/r00", "P/r02", "P/r04"]);
  });

  test("reconcile result is recorded", () => {
    const { b, clock } = board();
    b.reconcileDone({ durationMs: 1500, changed: 3, checked: 100 });
    expect(b.snapshot().lastReconcile).toEqual({ at: clock.t, durationMs: 1500, changed: 3, checked: 100, result: "ok" });
    b.reconcileDone({ durationMs: 20, changed: 0, checked: 0, error: new Error("ssh: connect to host primary port 7999: Connection refused") });
    expect(b.snapshot().lastReconcile).toMatchObject({ result: "error", error: expect.stringContaining("Connection refused") });
  });

  test("metrics: names, label values, scrape-time gauges", async () => {
    const { b, clock, tick } = board(60_000);
    b.setCatalog(["P/a", "P/b", "P/c"]);
    b.syncSucceeded("P/a", { durationMs: 250, changed: true, bytes: 4096 });
    b.syncSucceeded("P/b", { durationMs: 20, changed: false, bytes: 100 });
    b.syncFailed("P/c", new Error("connect ECONNREFUSED 127.0.0.1:22"), { durationMs: 5 });
    tick(60_000); // P/c has been failing for the tolerance
    b.markBehind("P/a", clock.t);
    tick(2_000);
    b.syncStarted("P/a");
    b.syncSucceeded("P/a", { durationMs: 10, changed: true });
    b.markBehind("P/b", clock.t - 90_000);
    b.primaryReachable(true);
    b.reconcileDone({ durationMs: 3000, changed: 1, checked: 3 });
    b.metrics.webhook("accepted");
    b.metrics.webhook("unauthorized");
    b.metrics.webhook("unauthorized");

    const { contentType, body } = await b.metrics.exposition();
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    for (const name of Object.values(METRIC_NAMES)) expect(body).toContain(`# TYPE ${name} `);
    expect(sample(body, `${METRIC_NAMES.repos}{state="synced"}`)).toBe(2);
    expect(sample(body, `${METRIC_NAMES.repos}{state="failing"}`)).toBe(1);
    expect(sample(body, `${METRIC_NAMES.repos}{state="new"}`)).toBe(0);
    expect(sample(body, METRIC_NAMES.reposDelayed)).toBe(2); // P/c failing, P/b behind 90 s
    expect(sample(body, METRIC_NAMES.syncLagMax)).toBe(90);
    expect(sample(body, `${METRIC_NAMES.syncFailures}{kind="network"}`)).toBe(1);
    expect(sample(body, METRIC_NAMES.fetchBytes)).toBe(4196);
    expect(sample(body, `${METRIC_NAMES.syncDuration}_count{outcome="changed"}`)).toBe(2);
    expect(sample(body, `${METRIC_NAMES.syncDuration}_count{outcome="unchanged"}`)).toBe(1);
    expect(sample(body, `${METRIC_NAMES.syncDuration}_count{outcome="failed"}`)).toBe(1);
    // Lag of the incremental sync of P/a: pushed, fetched 2 s later.
    expect(sample(body, `${METRIC_NAMES.syncLag}_count`)).toBe(1);
    expect(sample(body, `${METRIC_NAMES.syncLag}_sum`)).toBe(2);
    expect(sample(body, `${METRIC_NAMES.webhooks}{result="unauthorized"}`)).toBe(2);
    expect(sample(body, `${METRIC_NAMES.reconcileDuration}_count{result="ok"}`)).toBe(1);
    expect(sample(body, METRIC_NAMES.reconcileLastSuccess)).toBe(clock.t / 1000);
    expect(sample(body, METRIC_NAMES.primaryUp)).toBe(1);
    expect(sample(body, `${METRIC_NAMES.state}{state="DEGRADED"}`)).toBe(1);
    expect(sample(body, `${METRIC_NAMES.state}{state="SYNCHRONIZED"}`)).toBe(0);
    // No per-repo series anywhere.
    expect(body).not.toMatch(/P\/[abc]/);
  });

  test("gauges of things not known yet are absent, not 0: the primary before its first probe, the disk before its first measure", async () => {
    const b = new StatusBoard({ defaultMetrics: false });
    let body = (await b.metrics.exposition()).body;
    for (const name of [METRIC_NAMES.primaryUp, METRIC_NAMES.diskFree, METRIC_NAMES.diskSize, METRIC_NAMES.diskLow]) expect([name, sample(body, name)]).toEqual([name, undefined]);
    b.primaryReachable(false);
    b.setDisk({ state: "low", freeBytes: 5 * 2 ** 20, totalBytes: 100 * 2 ** 30, minFreeBytes: 2 ** 30 });
    body = (await b.metrics.exposition()).body;
    expect(sample(body, METRIC_NAMES.primaryUp)).toBe(0);
    expect(sample(body, METRIC_NAMES.diskFree)).toBe(5 * 2 ** 20);
    expect(sample(body, METRIC_NAMES.diskSize)).toBe(100 * 2 ** 30);
    expect(sample(body, METRIC_NAMES.diskLow)).toBe(1);
  });

  test("default process metrics are on by default, in the board's own registry", async () => {
    const b = new StatusBoard();
    const { body } = await b.metrics.exposition();
    expect(body).toContain("process_cpu_user_seconds_total");
    expect(body).toContain("nodejs_heap_size_used_bytes");
    const other = new StatusBoard({ defaultMetrics: false });
    expect((await other.metrics.exposition()).body).not.toContain("process_cpu_user_seconds_total");
  });
});
