import type { SyncReason } from "../types";
import { decideTrigger, moreUrgent, overridesBackoff, Phase, priorityOf, PRIORITY_LEVELS } from "./policy";

const ALL: SyncReason[] = ["webhook", "manual", "demand", "initial", "retry", "reconcile"];

describe("priority", () => {
  it("orders webhook = manual > initial > retry > reconcile", () => {
    const sorted = [...ALL].reverse().sort((a, b) => priorityOf(a) - priorityOf(b));
    expect(sorted.map(priorityOf)).toEqual([0, 0, 0, 1, 2, 3]);
    expect(sorted.slice(3)).toEqual(["initial", "retry", "reconcile"]);
    expect(priorityOf("webhook")).toBe(priorityOf("manual"));
  });

  it("gives every reason a level inside [0, PRIORITY_LEVELS)", () => {
    for (const r of ALL) {
      expect(priorityOf(r)).toBeGreaterThanOrEqual(0);
      expect(priorityOf(r)).toBeLessThan(PRIORITY_LEVELS);
    }
  });

  it.each([
    [undefined, "reconcile", "reconcile"],
    ["reconcile", "webhook", "webhook"],
    ["webhook", "reconcile", "webhook"],
    ["initial", "retry", "initial"],
    ["retry", "initial", "initial"],
    ["webhook", "manual", "webhook"], // tie: keep what we have
    ["manual", "webhook", "manual"],
  ] as const)("moreUrgent(%p, %p) = %p", (current, incoming, expected) => {
    expect(moreUrgent(current, incoming)).toBe(expected);
  });
});

describe("decideTrigger", () => {
  it.each<[Phase, SyncReason, SyncReason | undefined, ReturnType<typeof decideTrigger>]>([
    ["idle", "reconcile", undefined, { action: "enqueue", reason: "reconcile" }],
    ["queued", "webhook", "reconcile", { action: "merge", reason: "webhook" }],
    ["queued", "reconcile", "initial", { action: "merge", reason: "initial" }],
    ["running", "reconcile", undefined, { action: "followUp", reason: "reconcile" }],
    ["running", "webhook", "reconcile", { action: "followUp", reason: "webhook" }],
    ["running", "reconcile", "webhook", { action: "followUp", reason: "webhook" }],
    ["backoff", "webhook", undefined, { action: "enqueue", reason: "webhook" }],
    ["backoff", "manual", undefined, { action: "enqueue", reason: "manual" }],
    ["backoff", "demand", undefined, { action: "enqueue", reason: "demand" }],
    ["backoff", "reconcile", undefined, { action: "defer" }],
    ["backoff", "initial", undefined, { action: "defer" }],
    ["backoff", "retry", undefined, { action: "defer" }],
  ])("%s + %s (pending %p) -> %j", (phase, incoming, pending, expected) => {
    expect(decideTrigger(phase, incoming, pending)).toEqual(expected);
  });

  it("lets exactly webhook, manual and demand cut a backoff short", () => {
    expect(ALL.filter(overridesBackoff)).toEqual(["webhook", "manual", "demand"]);
  });
});
