/**
 * Which repositories a reconcile round asks the primary about, and how fast: change detection
 * whose cost on the primary is chosen (mirror.scan.maxPerSecond), not repositories x rounds.
 *
 * Webhooks carry the changes; the reconcile only catches what they missed. So a repository
 * whose refs moved recently ("active": within mirror.scan.activeWindow) is checked every round,
 * as before, and an idle one (most of a large primary: grokmirror counts 80-90% of kernel.org
 * repositories unchanged in a day) is checked less often, as rarely as the budget needs but
 * never less than once per mirror.scan.idleBound. The bound is a guarantee: when the budget
 * cannot meet it at this catalog size, the rate needed is used and reported instead
 * (`overBudget`), because a missed push must never stay invisible longer than promised.
 *
 * Pure: numbers in, decisions out; the daemon keeps the clock and the per-repository times.
 */

export interface ScanPolicy {
  /** Average ref scans per second the mirror may cost the primary. Infinity: no budget. */
  maxPerSecond: number;
  /** The reconcile round's period: how often an active repository is checked. */
  roundMs: number;
  /** An idle repository is checked at least this often (the worst-case notice of a missed webhook). */
  idleBoundMs: number;
  /** A repository whose refs moved within this long is active. */
  activeWindowMs: number;
}

export interface ScanTargets {
  /** Check an active repository when its last check is this old. */
  activeEveryMs: number;
  /** Check an idle repository when its last check is this old. */
  idleEveryMs: number;
  /** Average scans per second these targets cost. */
  perSecond: number;
  /** The budget could not meet the bounds; `perSecond` exceeds maxPerSecond. */
  overBudget: boolean;
}

/**
 * Spread the budget: active repositories every round; what is left of the budget goes to the
 * idle ones, never slower than the bound and never faster than a round.
 */
export function scanTargets(p: ScanPolicy, active: number, idle: number): ScanTargets {
  const rounds = 1000 / p.roundMs;
  const activeRate = active * rounds;
  const idleFloorRate = idle * (1000 / p.idleBoundMs);
  let activeEveryMs = p.roundMs;
  let idleEveryMs: number;
  const left = p.maxPerSecond - activeRate;
  if (idle === 0) idleEveryMs = p.roundMs;
  else if (left >= idle * rounds) idleEveryMs = p.roundMs;
  else if (left >= idleFloorRate) idleEveryMs = (idle / left) * 1000;
  else {
    // Not even idle at their bound fits beside active every round: active ones slow down too
    // (down to the idle bound), then the bound wins over the budget.
    idleEveryMs = p.idleBoundMs;
    const forActive = p.maxPerSecond - idleFloorRate;
    activeEveryMs = active === 0 ? p.roundMs : forActive > 0 ? Math.min(p.idleBoundMs, Math.max(p.roundMs, (active / forActive) * 1000)) : p.idleBoundMs;
  }
  const perSecond = (active * 1000) / activeEveryMs + (idle * 1000) / idleEveryMs;
  return { activeEveryMs, idleEveryMs, perSecond, overBudget: perSecond > p.maxPerSecond * (1 + 1e-9) };
}

/** What the daemon remembers of a repository for this decision (times in ms; 0 = never). */
export interface ScanFacts {
  scannedAt: number;
  changedAt: number;
}

export function isActive(f: ScanFacts, now: number, p: ScanPolicy): boolean {
  return f.changedAt > 0 && now - f.changedAt <= p.activeWindowMs;
}

/**
 * One round's choice. Active ones are asked
 * when due, with half a round of slack (rounds come every `roundMs`, so a check that just missed
 * its time would otherwise wait a whole extra round). Idle ones are swept oldest first, as many
 * per round as their target needs: a steady sweep, so checks never bunch up into a wave that a
 * later round could not fit in its budget; any idle repository at its bound is asked regardless.
 * Never-asked repositories (all of them at a start) fill what the round's rate leaves.
 * The result is in the order to ask: due active (most overdue first), idle at their bound,
 * never asked, then the idle sweep (oldest first). `unasked` says how many never-asked remain.
 */
export function planRound<K>(repos: Iterable<readonly [K, ScanFacts]>, now: number, p: ScanPolicy): { scan: K[]; targets: ScanTargets; active: number; idle: number; unasked: number } {
  const never: K[] = [];
  const active: Array<[K, number]> = [];
  const idle: Array<[K, number]> = [];
  for (const [k, f] of repos) {
    if (f.scannedAt <= 0) never.push(k);
    else if (isActive(f, now, p)) active.push([k, f.scannedAt]);
    else idle.push([k, f.scannedAt]);
  }
  const targets = scanTargets(p, active.length, idle.length + never.length);
  // No budget, or a catalog the budget covers whole every round: every repository every round,
  // whenever a round runs (the start's first round, an operator's or a test's reconcile
  // included), as before budgets existed. So a restart of such a mirror compares everything at
  // once, and a push it missed while down is seen in that first round. Only a catalog too large
  // for that trusts its scan ledger's times across a restart (see scanLedger.ts).
  const everyRound = targets.activeEveryMs <= p.roundMs && targets.idleEveryMs <= p.roundMs && !targets.overBudget;
  if (p.maxPerSecond === Number.POSITIVE_INFINITY || everyRound) {
    const all = [...active, ...idle].sort((a, b) => a[1] - b[1]).map(([k]) => k);
    return { scan: [...never, ...all], targets, active: active.length, idle: idle.length + never.length, unasked: 0 };
  }
  const slack = p.roundMs / 2;
  const activeDue = active.filter(([, at]) => now - at >= targets.activeEveryMs - slack).sort((a, b) => a[1] - b[1]);
  idle.sort((a, b) => a[1] - b[1]);
  const share = Math.ceil(((idle.length + never.length) * p.roundMs) / targets.idleEveryMs);
  let atBound = 0;
  while (atBound < idle.length && now - idle[atBound][1] >= p.idleBoundMs - slack) atBound++;
  // A round asks no more than its rate allows in one period, so a start (everything never
  // asked) is spread over several rounds while active repositories keep their every-round check.
  const fits = Math.ceil(Math.max(p.maxPerSecond, targets.perSecond) * (p.roundMs / 1000));
  const room = Math.max(0, fits - activeDue.length - atBound);
  const newOnes = never.slice(0, room);
  const idleTake = Math.min(idle.length, Math.max(atBound, Math.min(share - newOnes.length, atBound + room - newOnes.length)));
  return {
    scan: [...activeDue.map(([k]) => k), ...idle.slice(0, atBound).map(([k]) => k), ...newOnes, ...idle.slice(atBound, idleTake).map(([k]) => k)],
    targets,
    active: active.length,
    idle: idle.length + never.length,
    unasked: never.length - newOnes.length,
  };
}

/**
 * The worst case between a push the webhook missed and the mirror noticing it, for an active
 * and an idle repository.
 */
export function worstCaseNoticeMs(p: ScanPolicy, t: ScanTargets): { activeMs: number; idleMs: number } {
  // A push right after its check waits for the next one (the target), which may be late by
  // half a round of slack and, in a round that the budget spreads over its whole period, by
  // up to one more round.
  const late = p.roundMs / 2 + p.roundMs;
  return { activeMs: t.activeEveryMs + late, idleMs: t.idleEveryMs + late };
}
