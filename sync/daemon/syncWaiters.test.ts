import { SyncWaiters } from "./syncWaiters";

const started = { type: "started", key: "P/r", reason: "demand", attempt: 1 } as const;
const succeeded = { type: "succeeded", key: "P/r", reason: "demand", durationMs: 1, result: {} } as const;

describe("SyncWaiters", () => {
  it("settles a waiter with the end of the first run that starts after it, not the running one", async () => {
    const w = new SyncWaiters();
    const settled: string[] = [];
    w.onEvent(started); // a run already going when the waiter came
    void w.wait("P/r").then((r) => settled.push(r.ok ? "ok" : r.error.message));
    w.onEvent(succeeded);
    await Promise.resolve();
    expect(settled).toEqual([]);
    w.onEvent(started); // the follow-up
    w.onEvent({ type: "failed", key: "P/r", reason: "demand", error: new Error("primary down"), attempt: 1, durationMs: 1, retryInMs: 100 });
    await Promise.resolve();
    expect(settled).toEqual(["primary down"]);
    expect(w.count("P/r")).toBe(0);
  });

  it("settles every waiter of a repository on drain or forget, and leaves other repositories alone", async () => {
    const w = new SyncWaiters();
    const a = w.wait("P/r");
    const b = w.wait("P/other");
    w.onEvent({ type: "cancelled", key: "P/r", reason: "demand", cause: "drain", wasRunning: false });
    expect(await a).toEqual({ ok: false, error: new Error("the mirror is stopping") });
    expect(w.count("P/other")).toBe(1);
    w.onEvent({ ...started, key: "P/other" });
    w.onEvent({ ...succeeded, key: "P/other" });
    expect(await b).toEqual({ ok: true });
  });
});
