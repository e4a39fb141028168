/**
 * Fresh by construction: a CI job that clones or fetches a commit right after it was pushed
 * gets it from the mirror, even before any webhook or reconcile brought it.
 *
 * Two checks run between admission and execution (gitHandler.ts), before any upload-pack slot
 * is taken, each bounded by `waitMs` (mirror.serve.onDemandWait) per request:
 *
 * 1. Advertisements (v0/v1 GET info/refs, v2 ls-refs), when `advertisement` is "always"
 *    (mirror.serve.freshness): a clone only gets what is advertised, so the mirror's refs are
 *    compared with the primary's (one ref scan over the daemon's kept SSH connections) and,
 *    when they differ, the repository is synced (coalesced with a queued or running sync)
 *    before git advertises. Single-flight per repository with "next flight" semantics: a
 *    request joins the check that starts after it arrived (one running + one waiting at most),
 *    so 100 concurrent clones cost two scans, and none is answered from a scan that read the
 *    primary before the request came. Past the bound, or with the primary unreachable, the
 *    mirror advertises what it has: serving the last good copy is what a mirror is for.
 * 2. Wants (v0 POST, v2 fetch; shallow and partial too): the wanted objects (and v2 want-refs)
 *    are looked up in the mirror's copy (objectCheck.ts). Missing ones start an on-demand
 *    sync and the request waits for it; past the bound, or with the primary down, the client
 *    gets git's own error form (an ERR pkt-line: "fatal: remote error: ...") saying the mirror
 *    is behind the primary and why. A want the primary does not have either is left to git
 *    ("not our ref"), and remembered (negativeCache.ts: per repository state, 30 s at most)
 *    so repeating it does not ask the primary again; on-demand syncs of one repository start
 *    at most once per DEMAND_INTERVAL_MS.
 *
 * After the primary was found out of reach (isPrimaryUnreachable: refused, reset, handshake
 * timeout, host key), checks are skipped for PRIMARY_DOWN_COOLDOWN_MS: while the primary is
 * down every clone is served at once from the mirror's copy instead of waiting out the bound.
 *
 * The pack cache needs nothing special: its key holds the repository's ref-state token, which
 * the sync rewrites, so an answer cached before the sync is never served after it.
 */
import type { ServerResponse } from "node:http";
import { Counter, Registry } from "prom-client";
import type { SyncResult } from "../../daemon/syncWaiters";
import { isPrimaryUnreachable } from "../../upstream/openssh";
import type { Log } from "../http";
import { silentLog } from "../http";
import type { Admitted } from "./admission";
import { CheckOptions, missingObjects } from "./objectCheck";
import { refStateToken } from "./packCache";
import { CONTENT_TYPES } from "./protocol";
import type { GitRecord } from "./record";
import { primaryRepoUrl } from "./replies";
import { NegativeCache } from "./negativeCache";
import { NextFlight } from "./nextFlight";
import { errPacket, printable } from "./requestCheck";
import type { ServedRepo } from "./resolver";
import { requestedObjects } from "./wants";

/** always: every advertisement checks the primary first; never: advertise the last sync. */
export type FreshnessMode = "always" | "never";

/** What the daemon offers the serving side (sync/main.ts wires its Daemon in). */
export interface PrimaryLink {
  /** Sync the repository now (coalesced); settles when the first run starting after the call ended. */
  syncNow(repo: ServedRepo): Promise<SyncResult>;
  /** Do the mirror's refs differ from the primary's right now? Rejects when it cannot be told. */
  refsBehind(repo: ServedRepo, signal: AbortSignal): Promise<boolean>;
  /**
   * A farm (sync/farm): wait, at most `waitMs`, for the sync a peer's announcement of this
   * repository started ("none": nothing announced is outstanding). Counted by the farm.
   */
  catchUp?(repo: ServedRepo, waitMs: number): Promise<"none" | "caught_up" | "timeout" | "failed">;
}

export interface FreshnessOptions {
  link: PrimaryLink;
  /** Longest a request waits for the primary (> 0). */
  waitMs: number;
  advertisement: FreshnessMode;
  /** For the "fetch from the primary instead" hint. */
  primaryUrl: string;
  check: CheckOptions;
  registry?: Registry;
  log?: Log;
  now?: () => number;
}

export const FRESHNESS_METRIC_NAMES = {
  adverts: "smart_mirror_git_freshness_checks_total",
  wants: "smart_mirror_git_on_demand_total",
} as const;

/** On-demand syncs for missing wants start at most this often per repository. */
export const DEMAND_INTERVAL_MS = 1_000;
/** After the primary failed us, serve from the mirror's copy without asking it for this long. */
export const PRIMARY_DOWN_COOLDOWN_MS = 10_000;

export type AdvertResult = "fresh" | "synced" | "sync_failed" | "timeout" | "primary_down" | "error";
export type WantResult = "present" | "fetched" | "not_on_primary" | "negative_cached" | "timeout" | "primary_down" | "sync_failed" | "error";

/** Settles with `p`, or with `onTimeout` after `ms` (p keeps running). */
function within<T>(p: Promise<T>, ms: number, onTimeout: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((resolve) => (timer = setTimeout(() => resolve(onTimeout), Math.max(0, ms))))]).finally(() => clearTimeout(timer));
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

/** The one-line error the client prints after "fatal: remote error: ". Pure. */
export function behindMessage(what: string, why: string, primaryRepo: string): string {
  return printable(`the mirror is behind the primary: it does not have ${what} yet, and ${why}. Retry in a moment, or fetch it from the primary: ${primaryRepo}`, 600);
}

function describeWants(missing: readonly string[]): string {
  const first = missing[0];
  return missing.length === 1 ? first : `${first} (and ${missing.length - 1} more wanted object${missing.length === 2 ? "" : "s"})`;
}

export class Freshness {
  private readonly flights = new NextFlight<AdvertResult>();
  private readonly negative = new NegativeCache();
  private readonly lastDemand = new Map<string, number>();
  private downUntil = 0;
  private downReason = "";
  private readonly log: Log;
  private readonly now: () => number;
  private readonly adverts?: Counter<"result">;
  private readonly wants?: Counter<"result">;

  constructor(private readonly o: FreshnessOptions) {
    this.log = o.log ?? silentLog;
    this.now = o.now ?? Date.now;
    const r = o.registry;
    if (r) {
      this.adverts =
        (r.getSingleMetric(FRESHNESS_METRIC_NAMES.adverts) as Counter<"result"> | undefined) ??
        new Counter({ name: FRESHNESS_METRIC_NAMES.adverts, help: "Ref advertisements checked against the primary first (mirror.serve.freshness=always), by result: fresh, synced (was behind, synced in time), timeout, sync_failed, primary_down (skipped: the primary failed recently), error.", labelNames: ["result"], registers: [r] });
      this.wants =
        (r.getSingleMetric(FRESHNESS_METRIC_NAMES.wants) as Counter<"result"> | undefined) ??
        new Counter({ name: FRESHNESS_METRIC_NAMES.wants, help: "Upload-pack requests whose wants were checked, by result: present, fetched (missing, then fetched on demand in time), not_on_primary, negative_cached, timeout, primary_down, sync_failed, error.", labelNames: ["result"], registers: [r] });
    }
  }

  /** Keys with a freshness check going (tests). */
  get checksInFlight(): number {
    return this.flights.size;
  }

  /**
   * Make the request's repository fresh enough to answer it (see the module comment).
   * False: the request was answered here (git's error form) and must not run.
   */
  async prepare(a: Admitted, res: ServerResponse, record: GitRecord): Promise<boolean> {
    if (a.advertise) {
      // v2's info/refs lists capabilities only; its ls-refs POST is the advertisement.
      if (a.protocol.version === 2) return true;
      await this.farmCatchUp(a.served, record);
      if (this.o.advertisement === "always") await this.freshAdvertisement(a.served, record);
      return true;
    }
    if (!a.body || !("input" in a.body)) return true; // too big to hold: streamed to git as is
    const asked = requestedObjects(a.body.input);
    if (asked.lsRefs) {
      await this.farmCatchUp(a.served, record);
      if (this.o.advertisement === "always") await this.freshAdvertisement(a.served, record);
      return true;
    }
    const names = [...asked.oids, ...asked.refs];
    if (names.length === 0) return true;
    const verdict = await this.wantsPresent(a.served, names, record);
    if (verdict === undefined) return true;
    record.count(200);
    res.writeHead(200, { "Content-Type": CONTENT_TYPES.result(a.service), "Cache-Control": "no-cache", Connection: "close" });
    res.end(errPacket(verdict));
    return false;
  }

  /**
   * Farm: catch up before advertising. A peer announced new refs of this repository (it is
   * about to serve them, or already does): wait for the sync that announcement started, so a
   * client that saw them there never sees older refs here. Bounded by waitMs; past it, serve
   * what this node has (the farm counts it).
   */
  private async farmCatchUp(repo: ServedRepo, record: GitRecord): Promise<"none" | "caught_up" | "timeout" | "failed"> {
    if (!this.o.link.catchUp) return "none";
    const t0 = this.now();
    const r = await this.o.link.catchUp(repo, this.o.waitMs);
    if (r !== "none") record.note(r === "caught_up" ? "info" : "warn", { result: r, ms: this.now() - t0 }, "farm: waited for a sync a peer announced");
    return r;
  }

  private primaryDown(): boolean {
    return this.now() < this.downUntil;
  }

  private markDown(reason: string): void {
    this.downUntil = this.now() + PRIMARY_DOWN_COOLDOWN_MS;
    this.downReason = reason;
  }

  /** Wait (bounded) until the repository's refs are the primary's, as far as one check can tell. */
  private async freshAdvertisement(repo: ServedRepo, record: GitRecord): Promise<void> {
    const t0 = this.now();
    const result = this.primaryDown() ? "primary_down" : await within(this.flights.run(repo.dir, () => this.checkRefs(repo)), this.o.waitMs, "timeout" as const);
    this.adverts?.inc({ result });
    if (result !== "fresh" && result !== "primary_down") record.note("info", { result, ms: this.now() - t0 }, result === "synced" ? "advertisement: synced from the primary first" : "advertisement: serving the mirror's copy, the primary could not be checked in time");
  }

  /** One flight: scan the primary, and when the refs differ, sync and wait (all bounded). */
  private async checkRefs(repo: ServedRepo): Promise<AdvertResult> {
    if (this.primaryDown()) return "primary_down";
    const t0 = this.now();
    let behind: boolean;
    try {
      behind = await this.o.link.refsBehind(repo, AbortSignal.timeout(this.o.waitMs));
    } catch (e) {
      const msg = (e as Error).message;
      // Only a primary out of reach pauses the checks: a scan past the bound may just have
      // waited for a channel behind a big reconcile's scans.
      const unreachable = isPrimaryUnreachable(e);
      if (unreachable) this.markDown(msg);
      this.log.warn({ repo: `${repo.project}/${repo.slug}`, error: msg }, "freshness check: cannot read the primary's refs; serving the mirror's copy");
      return unreachable ? "primary_down" : /aborted|timed out/i.test(msg) ? "timeout" : "error";
    }
    if (!behind) return "fresh";
    const left = this.o.waitMs - (this.now() - t0);
    const r = await within(this.o.link.syncNow(repo), left, undefined);
    if (r === undefined) return "timeout";
    if (!r.ok) {
      if (isPrimaryUnreachable(r.error)) this.markDown(r.error.message);
      return "sync_failed";
    }
    return "synced";
  }

  /** undefined: serve (all wants present, or left to git); else the error for the client. */
  private async wantsPresent(repo: ServedRepo, names: string[], record: GitRecord): Promise<string | undefined> {
    const count = (result: WantResult) => void this.wants?.inc({ result });
    const deadline = this.now() + this.o.waitMs;
    let missing: string[];
    try {
      missing = await missingObjects(repo.dir, names, this.o.check);
    } catch (e) {
      // Let git itself meet the request (and report whatever is wrong with the repository).
      this.log.warn({ repo: `${repo.project}/${repo.slug}`, error: (e as Error).message }, "cannot check the wanted objects");
      count("error");
      return undefined;
    }
    if (missing.length === 0) return void count("present");
    // Farm: a peer announced new refs of this repository; the sync that announcement started
    // brings them (the client may have read the advertisement on that peer). Then look again.
    if ((await this.farmCatchUp(repo, record)) === "caught_up") {
      try {
        missing = await missingObjects(repo.dir, missing, this.o.check);
      } catch {
        return undefined;
      }
      if (missing.length === 0) return void count("fetched");
    }
    const state = refStateToken(repo.dir);
    const unknown = missing.filter((n) => !this.negative.has(repo.dir, state, n, this.now()));
    if (unknown.length === 0) return void count("negative_cached"); // git answers "not our ref"
    const primaryRepo = primaryRepoUrl(this.o.primaryUrl, repo);
    const what = describeWants(unknown);
    if (this.primaryDown()) {
      count("primary_down");
      record.note("info", { missing: unknown.length }, "wanted objects missing; the primary is down");
      return behindMessage(what, `the primary cannot be reached (${printable(this.downReason, 200)})`, primaryRepo);
    }
    // At most one on-demand sync start per repository per DEMAND_INTERVAL_MS (the scheduler
    // coalesces the rest): random wants cannot keep the primary busy.
    const last = this.lastDemand.get(repo.dir) ?? -Infinity;
    const at = Math.max(this.now(), last + DEMAND_INTERVAL_MS);
    if (at >= deadline) {
      count("timeout");
      return behindMessage(what, `fetching it from the primary did not finish within ${formatSeconds(this.o.waitMs)}`, primaryRepo);
    }
    if (at > this.now()) await sleep(at - this.now());
    this.lastDemand.set(repo.dir, this.now());
    const t0 = this.now();
    const r = await within(this.o.link.syncNow(repo), deadline - this.now(), undefined);
    if (r === undefined) {
      count("timeout");
      record.note("warn", { missing: unknown.length, ms: this.now() - t0 }, "on-demand fetch did not finish within the bound");
      return behindMessage(what, `fetching it from the primary did not finish within ${formatSeconds(this.o.waitMs)}`, primaryRepo);
    }
    if (!r.ok) {
      const unreachable = isPrimaryUnreachable(r.error);
      if (unreachable) this.markDown(r.error.message);
      count(unreachable ? "primary_down" : "sync_failed");
      record.note("warn", { missing: unknown.length, error: r.error.message }, "on-demand fetch failed");
      return behindMessage(what, `fetching it from the primary failed (${printable(r.error.message.split("\n")[0], 200)})`, primaryRepo);
    }
    let still: string[];
    try {
      still = await missingObjects(repo.dir, unknown, this.o.check);
    } catch {
      return undefined;
    }
    record.note("info", { missing: unknown.length, notOnPrimary: still.length, ms: this.now() - t0 }, "on-demand fetch from the primary");
    if (still.length === 0) return void count("fetched");
    // On neither side: remember it against the state the sync left, and let git say "not our ref".
    const after = refStateToken(repo.dir);
    if (after !== undefined) for (const n of still) this.negative.add(repo.dir, after, n, this.now());
    count("not_on_primary");
    return undefined;
  }
}

function formatSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}
