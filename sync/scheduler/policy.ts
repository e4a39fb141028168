/**
 * The scheduler's small decisions, kept pure so they read (and test) as tables:
 * which reason is more urgent, and what a trigger does to a repository in each phase.
 */
import type { SyncReason } from "../types";

/**
 * Lower runs first. A webhook, an operator's manual sync or a client's demand (a clone waiting
 * on the mirror) names one repository someone is waiting for, so it jumps ahead of an initial-sync or reconcile backlog of thousands;
 * initial syncs come before retries (a repo never synced is worse off than one behind);
 * reconcile is the background sweep that only catches what webhooks missed.
 */
const PRIORITY: Readonly<Record<SyncReason, number>> = {
  webhook: 0,
  manual: 0,
  demand: 0,
  initial: 1,
  retry: 2,
  reconcile: 3,
};

/** How many distinct priorities there are (the scheduler keeps one FIFO per priority). */
export const PRIORITY_LEVELS = 4;

export function priorityOf(reason: SyncReason): number {
  return PRIORITY[reason];
}

/** The more urgent of two reasons; on a tie the one we already have wins (keeps FIFO place). */
export function moreUrgent(current: SyncReason | undefined, incoming: SyncReason): SyncReason {
  if (current === undefined) return incoming;
  return priorityOf(incoming) < priorityOf(current) ? incoming : current;
}

/**
 * Whether a trigger cuts a backoff short. Webhook and manual do: the primary (or a person) just
 * told us something changed, so waiting out a long backoff would serve stale data for minutes
 * while the cause of the failure may well be gone. Routine reasons (initial, reconcile, retry)
 * do not: the pending retry already covers them, and letting a reconcile sweep bypass backoff
 * would defeat it for every failing repository on every sweep.
 */
export function overridesBackoff(reason: SyncReason): boolean {
  // "demand" too: a clone is waiting; the serving side rate-limits its demands per repository.
  return reason === "webhook" || reason === "manual" || reason === "demand";
}

/** Where a repository is in its life: exactly one of these at any time. */
export type Phase = "idle" | "queued" | "running" | "backoff";

export type TriggerDecision =
  /** Put it in the queue for `reason` (from idle, or from a backoff the reason overrides). */
  | { action: "enqueue"; reason: SyncReason }
  /** Already queued: keep one entry, with the more urgent reason (moves it if that changed). */
  | { action: "merge"; reason: SyncReason }
  /** Running: remember one follow-up run, with the more urgent of all reasons asked meanwhile. */
  | { action: "followUp"; reason: SyncReason }
  /** Backing off and the reason does not override it: the pending retry will do the work. */
  | { action: "defer" };

/**
 * What a trigger does. `pending` is the reason already waiting: the queued reason when
 * queued, the follow-up reason (if any) when running; ignored otherwise.
 */
export function decideTrigger(phase: Phase, incoming: SyncReason, pending?: SyncReason): TriggerDecision {
  switch (phase) {
    case "idle":
      return { action: "enqueue", reason: incoming };
    case "queued":
      return { action: "merge", reason: moreUrgent(pending, incoming) };
    case "running":
      // A trigger during a run may describe a change the run started too early to see,
      // so it must not be dropped; but any number of them need only one more run.
      return { action: "followUp", reason: moreUrgent(pending, incoming) };
    case "backoff":
      return overridesBackoff(incoming) ? { action: "enqueue", reason: incoming } : { action: "defer" };
  }
}
