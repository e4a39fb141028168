import { StatusBoard } from "../state/statusBoard";
import type { MirrorState } from "../types";
import { isReady, readinessDocument, READY_MARKER, statusDocument } from "./statusDocument";

const MIRROR_STATES: MirrorState[] = ["STARTING", "INITIAL_SYNC", "SYNCHRONIZED", "DEGRADED", "ERROR"];

describe("readiness on the public /status", () => {
  test.each(MIRROR_STATES.map((s) => [s, s === "SYNCHRONIZED" || s === "DEGRADED"] as const))("%s: ready %s", (state, ready) => {
    expect(isReady(state)).toBe(ready);
  });

  test("the serialized document holds the health check's marker exactly when ready", () => {
    const board = new StatusBoard({ defaultMetrics: false });
    const snap = board.snapshot();
    for (const state of MIRROR_STATES) {
      // As respond.ts sends it: JSON.stringify, no spaces (Route53 matches the raw bytes).
      const body = JSON.stringify(statusDocument({ ...snap, state })) + "\n";
      expect(`${state}: ${body.includes(READY_MARKER)}`).toBe(`${state}: ${isReady(state)}`);
      expect(body.length).toBeLessThan(5120); // Route53 searches the first 5,120 bytes only
    }
  });
});

describe("GET /status/ready and draining", () => {
  test.each(MIRROR_STATES)("%s: 200 only when ready and not draining", (state) => {
    expect(readinessDocument({ state, draining: false })).toEqual({ code: isReady(state) ? 200 : 503, body: { ready: isReady(state), state, draining: false } });
    expect(readinessDocument({ state, draining: true })).toEqual({ code: 503, body: { ready: false, state, draining: true } });
  });

  test("a draining mirror's /status loses the health check's marker and says why", () => {
    const snap = new StatusBoard({ defaultMetrics: false }).snapshot();
    const body = JSON.stringify(statusDocument({ ...snap, state: "SYNCHRONIZED", draining: true }));
    expect(body).not.toContain(READY_MARKER);
    expect(body).toContain('"draining":true');
  });
});
