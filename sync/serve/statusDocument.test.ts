import { StatusBoard } from "../state/statusBoard";
import type { MirrorState } from "../types";
import { isReady, READY_MARKER, statusDocument } from "./statusDocument";

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
