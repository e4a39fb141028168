/**
 * What the reconcile remembers to decide whom to ask (scheduler/scanPlan.ts): per repository,
 * when the mirror last compared it with the primary and when its refs last moved. Two numbers
 * per repository (a few MB at 100,000); the decisions stay pure in scanPlan, the pacing in
 * scheduler/pace.ts.
 *
 * The times survive restarts (`serialize`/`restore`, data/scan-ledger.json): a restart then
 * asks only whom the plan says is due, not all 100,000 at once. Without the file (a first
 * start, or an unreadable one) every repository on disk counts as never compared.
 */
import type { RepoKey } from "../types";
import { Pace, PaceClock, realPaceClock } from "../scheduler/pace";
import { planRound, ScanFacts, ScanPolicy, ScanTargets, worstCaseNoticeMs } from "../scheduler/scanPlan";

/** A round's rate may use this many seconds of saved budget at once: a small catalog's round is one burst. */
const BURST_SECONDS = 10;
/** Never a burst smaller than this many scans (a 10-repository catalog is asked at once at any budget). */
const MIN_BURST = 64;
const LEDGER_VERSION = 1;

export interface ScanRound {
  scan: RepoKey[];
  targets: ScanTargets;
  active: number;
  idle: number;
  /** Repositories not yet compared since the start, left for later rounds. */
  unasked: number;
  notice: { activeMs: number; idleMs: number };
}

export class ScanLedger {
  private readonly facts = new Map<RepoKey, ScanFacts>();
  private readonly pace: Pace;

  constructor(
    readonly policy: ScanPolicy,
    clock: PaceClock = realPaceClock,
  ) {
    const rate = policy.maxPerSecond;
    this.pace = new Pace(rate, Number.isFinite(rate) ? Math.max(MIN_BURST, rate * BURST_SECONDS) : MIN_BURST, clock);
  }

  /** Compared with the primary (a scan, or a sync, which reads the primary's refs). */
  scanned(key: RepoKey, at: number): void {
    const f = this.facts.get(key);
    if (f) f.scannedAt = at;
    else this.facts.set(key, { scannedAt: at, changedAt: 0 });
  }

  /** Its refs moved (a webhook, a scan that found a difference, a sync that fetched). */
  changed(key: RepoKey, at: number): void {
    const f = this.facts.get(key);
    if (f) f.changedAt = at;
    else this.facts.set(key, { scannedAt: 0, changedAt: at });
  }

  /** Drop what left the catalog (bounded by the catalog). */
  retain(keep: (key: RepoKey) => boolean): void {
    for (const k of this.facts.keys()) if (!keep(k)) this.facts.delete(k);
  }

  /**
   * This round's choice among `keys` (the repositories on disk), and the rate to ask them at. A
   * key new to the ledger is never compared yet; `lastChangedAt` (its last sync) tells whether it
   * is active.
   */
  plan(keys: readonly RepoKey[], now: number, lastChangedAt: (key: RepoKey) => number | undefined = () => undefined): ScanRound {
    const entries = keys.map((k) => {
      let f = this.facts.get(k);
      if (!f) this.facts.set(k, (f = { scannedAt: 0, changedAt: lastChangedAt(k) ?? 0 }));
      return [k, f] as const;
    });
    const r = planRound(entries, now, this.policy);
    // The bound beats the budget (scanPlan.ts): when the targets need more, pace at that.
    this.pace.setRate(Math.max(this.policy.maxPerSecond, r.targets.perSecond));
    return { ...r, notice: worstCaseNoticeMs(this.policy, r.targets) };
  }

  /** The times as a small JSON document (two numbers per repository). */
  serialize(now: number): string {
    const repos: Record<string, [number, number]> = {};
    for (const [k, f] of this.facts) if (f.scannedAt > 0 || f.changedAt > 0) repos[k] = [f.scannedAt, f.changedAt];
    return JSON.stringify({ version: LEDGER_VERSION, savedAt: now, repos });
  }

  /**
   * Take the times from `serialize`'s document; returns how many, or why nothing was taken (the
   * caller logs it; the repositories are then compared as after a first start, nothing is lost).
   * A time in the future (a clock that went back) is dropped.
   */
  restore(text: string, now: number): { restored: number } | { problem: string } {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (e) {
      return { problem: `not JSON (${(e as Error).message})` };
    }
    const d = doc as { version?: unknown; repos?: unknown };
    if (d.version !== LEDGER_VERSION || typeof d.repos !== "object" || d.repos === null) return { problem: `not a version ${LEDGER_VERSION} scan ledger` };
    let restored = 0;
    for (const [k, v] of Object.entries(d.repos as Record<string, unknown>)) {
      if (!Array.isArray(v) || v.length !== 2) continue;
      const [scannedAt, changedAt] = v as unknown[];
      if (typeof scannedAt !== "number" || typeof changedAt !== "number" || scannedAt > now || changedAt > now) continue;
      this.facts.set(k as RepoKey, { scannedAt, changedAt });
      restored++;
    }
    return { restored };
  }

  /** Wait for the budget to allow one more scan. */
  take(signal?: AbortSignal): Promise<void> {
    return this.pace.take(signal);
  }
}
