import { StatusBoard } from "../state/statusBoard";
import type { MirrorState } from "../types";
import { isReady } from "../state/mirrorState";
import { readinessDocument, READY_MARKER, statusDocument } from "./statusDocument";

/** Facts of a mirror whose first sync is done: readiness then follows the state alone. */
const done = { initialSyncComplete: true, firstCopiesPending: 0 };
const MIRROR_STATES: MirrorState[] = ["STARTING", "INITIAL_SYNC", "SYNCHRONIZED", "DEGRADED", "ERROR"];

describe("readiness on the public /status", () => {
  test.each(MIRROR_STATES.map((s) => [s, s === "SYNCHRONIZED" || s === "DEGRADED"] as const))("%s after the first sync: ready %s", (state, ready) => {
    expect(isReady(state, done)).toBe(ready);
  });

  test("a first sync with a failing repository and copies still to make is DEGRADED but not ready", () => {
    const board = new StatusBoard({ defaultMetrics: false });
    board.setCatalog(["P/a", "P/b", "P/c"]);
    board.syncFailed("P/a", new Error("boom"));
    board.syncSucceeded("P/b", { durationMs: 1, changed: true });
    const snap = board.snapshot();
    expect(snap.state).toBe("DEGRADED");
    expect(readinessDocument(snap).code).toBe(503);
    expect(JSON.stringify(statusDocument(snap))).not.toContain(READY_MARKER);
    // The last copy made: only the failing one is left, the node serves what it has.
    board.syncSucceeded("P/c", { durationMs: 1, changed: true });
    expect(readinessDocument(board.snapshot()).code).toBe(200);
  });

  test("the serialized document holds the health check's marker exactly when ready", () => {
    const board = new StatusBoard({ defaultMetrics: false });
    const snap = board.snapshot();
    for (const state of MIRROR_STATES) {
      // As respond.ts sends it: JSON.stringify, no spaces (Route53 matches the raw bytes).
      const body = JSON.stringify(statusDocument({ ...snap, state })) + "\n";
      expect(`${state}: ${body.includes(READY_MARKER)}`).toBe(`${state}: ${isReady(state, snap.facts)}`);
      expect(body.length).toBeLessThan(5120); // Route53 searches the first 5,120 bytes only
    }
  });
});

describe("GET /status/ready and draining", () => {
  test.each(MIRROR_STATES)("%s: 200 only when ready and not draining", (state) => {
    const facts = { ...new StatusBoard({ defaultMetrics: false }).snapshot().facts, ...done };
    expect(readinessDocument({ state, facts, draining: false })).toEqual({ code: isReady(state, done) ? 200 : 503, body: { ready: isReady(state, done), state, draining: false } });
    expect(readinessDocument({ state, facts, draining: true })).toEqual({ code: 503, body: { ready: false, state, draining: true } });
  });

  test("a draining mirror's /status loses the health check's marker and says why", () => {
    const snap = new StatusBoard({ defaultMetrics: false }).snapshot();
    const body = JSON.stringify(statusDocument({ ...snap, state: "SYNCHRONIZED", draining: true }));
    expect(body).not.toContain(READY_MARKER);
    expect(body).toContain('"draining":true');
  });
});
