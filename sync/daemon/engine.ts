/**
 * One repository's sync, start to end: scan the primary's refs over a pooled SSH connection,
 * compare fingerprints, fetch only if something changed, record what we now hold, and do
 * maintenance when it is due. Everything the daemon does to one repository happens inside
 * one scheduler job, so fetches and maintenance of a repository never overlap.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { DiskSpace } from "../store/diskSpace";
import { CloneTooLargeError, RefMove, RepoStore } from "../store/repoStore";
import { GitError } from "../store/runGit";
import { RepoId, SyncReason } from "../types";
import { Advertisement } from "../upstream/advertisement";
import { diffRefs, RefChange } from "../events/payload";
import { fingerprint } from "../upstream/refFilter";
import { upstreamPath } from "../upstream/upstreamPool";
import { V2Session, V2UnavailableError } from "../upstream/protocolV2";
import { clearIndexPending, dueTasks, markIndexPending, recordRun, recordRunAsync } from "./maintenance";
import { movesBetween } from "../farm/announce";

/** Beyond this many packs (one per fetch), merge them: serving slows with many packs. */
const MAX_PACKS = 32;

export interface Scanner {
  scan(path: string, signal?: AbortSignal): Promise<Advertisement>;
}

/** Protocol v2 sessions to the primary (upstream/sessionCache.ts). */
export interface SessionSource {
  take(path: string, signal?: AbortSignal): Promise<V2Session>;
  put(session: V2Session): void;
}

export interface EngineDeps {
  store: RepoStore;
  scanner: Scanner;
  keep: (ref: string) => boolean;
  env: NodeJS.ProcessEnv;
  /** ssh://user@host:port — repositories are at `${sshBase}/${PROJECT}/${slug}.git`. */
  sshBase: string;
  maintenance: { repackIntervalMs: number; fsckIntervalMs: number };
  /** Free-space guard: syncs that grow the disk wait while it is low (first clones are refused). */
  disk?: DiskSpace;
  now?: () => number;
  random?: () => number;
  /**
   * Report each fetch's ref changes (SyncOutcome.refChanges) for the synced event: costs one
   * local `for-each-ref` per fetch, so only on when events are configured.
   */
  trackRefChanges?: boolean;
  /**
   * v2 sessions: first clones over one channel and one process, webhook moves fetched by
   * their tips. Without them (or when the primary does not speak v2) every sync runs git fetch.
   */
  sessions?: SessionSource;
  /** The ref moves webhooks announced since the last job started (taken, so cleared). */
  takeMoves?: (id: RepoId) => RefMove[] | "unknown" | undefined;
  /** Why a fast path fell back to git fetch (for the log). */
  onFallback?: (id: RepoId, why: string) => void;
  /**
   * Announced moves are on disk and recorded (the ref-state fingerprint too), before the job's
   * convergence check: a pushed ref is served from here on (read-your-writes, sync/serve/push).
   */
  onMovesApplied?: (id: RepoId, moves: readonly RefMove[]) => void;
  /**
   * Called (and awaited) right before new refs of a repository already served become visible:
   * with the moves when known, undefined for a full fetch. A farm announces them to its peers
   * here (sync/farm). First clones are not announced: nobody served the repository from here.
   */
  beforePublish?: (id: RepoId, moves: RefMove[] | undefined) => Promise<void>;
  /**
   * Where a first clone may come from instead of the primary (a farm's ready peer): a URL and
   * the environment git needs for it. The primary then sends only the delta.
   */
  seedSource?: (id: RepoId) => SeedSource | undefined;
  /**
   * Other syncs are queued or running besides this one (the initial sync of many repositories):
   * a big first clone then leaves its bitmap and commit-graph to its next job (see afterFirstClone).
   */
  othersWaiting?: () => boolean;
}

/** A first clone's other source (sync/farm/seed.ts). */
export interface SeedSource {
  url: string;
  env: NodeJS.ProcessEnv;
  /** Names the source in logs and outcomes (never holds credentials). */
  peer: string;
}

export interface SyncOutcome {
  /** True when a fetch ran (the fingerprints differed or the repo was new). */
  fetched: boolean;
  created: boolean;
  bytes: number;
  /** Fingerprint of what the mirror now holds equals the primary's at scan time. */
  converged: boolean;
  recloned: boolean;
  maintenance: string[];
  /** A first clone that continued what earlier (killed or failed) attempts received. */
  resumedFromBytes?: number;
  /** A first clone's fetches (resumableClone.ts), when it took more than one. */
  steps?: string[];
  /** The kept refs that a fetch changed (old/new), when EngineDeps.trackRefChanges is on. */
  refChanges?: RefChange[];
  /**
   * How the objects came: "v2-clone" (a first clone over one v2 session), "v2-moves" (the
   * webhook's tips over a warm v2 session), "git-fetch"; absent when nothing was fetched.
   */
  via?: "v2-clone" | "v2-moves" | "git-fetch";
  /** A first clone seeded from a farm peer: which, and its bytes (`bytes` is then the primary's delta). */
  seed?: { peer: string; bytes: number };
}

/**
 * A first clone at least this big gets a bitmap and commit-graph before its scheduled
 * maintenance (repoStore.ts indexFirstClone): at once, or, while other syncs wait, in its next
 * job. A smaller one waits for its scheduled maintenance. Below ~1 MiB packed (a few thousand
 * objects) git counts a clone's objects in milliseconds without a bitmap, while the two extra
 * git runs would make up a good part of a small repository's initial sync.
 */
export const FIRST_CLONE_INDEX_MIN_BYTES = 1024 * 1024;

function keptOnly(refs: ReadonlyMap<string, string>, keep: (ref: string) => boolean): Map<string, string> {
  return new Map([...refs].filter(([name]) => keep(name)));
}

/** Errors from git that mean the local repository is damaged: the cure is a fresh clone. */
export function looksCorrupt(message: string): boolean {
  return /corrupt|bad object|missing (blob|tree|commit|object)|did not send all necessary objects|fatal: (loose object|packfile)|unable to read|invalid (sha1|object)|broken link|not a git repository|index-pack failed|bad packed object/i.test(message);
}

export class SyncEngine {
  constructor(private readonly d: EngineDeps) {}

  url(id: RepoId): string {
    return `${this.d.sshBase}${upstreamPath(id.project, id.slug)}`;
  }

  /** Fingerprint of the primary's state, or throws (unreachable, host key, missing repo). */
  async scan(id: RepoId, signal?: AbortSignal): Promise<{ adv: Advertisement; fp: string }> {
    const adv = await this.d.scanner.scan(upstreamPath(id.project, id.slug), signal);
    return { adv, fp: fingerprint(adv.refs, adv.headTarget, this.d.keep) };
  }

  /**
   * Do the mirror's refs differ from the primary's right now? One scan over the kept SSH
   * connections. HEAD's target is taken from the mirror's own copy: a default-branch change
   * is the reconcile's business, and the fetch that follows a "true" here (the fast path,
   * which leaves HEAD alone) could never make it go away.
   */
  async refsBehind(id: RepoId, signal?: AbortSignal): Promise<boolean> {
    const adv = await this.d.scanner.scan(upstreamPath(id.project, id.slug), signal);
    const held = this.d.store.readFingerprint(id);
    return held === undefined || fingerprint(adv.refs, this.d.store.headTarget(id), this.d.keep) !== held;
  }

  /** Cheap check used by reconcile: does the mirror differ from the primary's advertisement? */
  differs(id: RepoId, remoteFp: string): boolean {
    return !this.d.store.exists(id) || this.d.store.readFingerprint(id) !== remoteFp;
  }

  maintenanceDue(id: RepoId): boolean {
    return this.d.store.exists(id) && dueTasks(this.d.store.dir(id), this.d.maintenance, this.now()).length > 0;
  }

  async sync(id: RepoId, reason: SyncReason, signal: AbortSignal): Promise<SyncOutcome> {
    const out: SyncOutcome = { fetched: false, created: false, bytes: 0, converged: true, recloned: false, maintenance: [] };
    // Every job takes what webhooks announced: a full fetch below covers those moves too.
    const moves = this.d.takeMoves?.(id);
    // Announced at most once per job: a fast path that falls back to a full fetch was announced already.
    let announced = false;
    const announce = async (m: RefMove[] | undefined) => {
      if (announced || !this.d.beforePublish) return;
      announced = true;
      await this.d.beforePublish(id, m);
    };
    // A first clone from a farm peer when one is ready; then the scan below fetches the delta.
    const seeded = !this.d.store.exists(id) && !this.d.store.hasIncoming(id) && (await this.seedFromPeer(id, signal, out));
    if (seeded) {
      // Fall through to the scan: the primary's refs, and only what the peer did not have.
    } else if ((reason === "webhook" || reason === "demand") && this.d.store.exists(id)) {
      // The fast path: the primary just told us this repository changed (webhook), or a client
      // needs what the primary has now (demand: serve/git/freshness.ts found a want missing or
      // the refs behind), so skip the ref scan (a round trip and a process on the primary) and
      // fetch at once: the announced tips over a warm v2 session when we can, else a full git
      // fetch. HEAD's target is left as is; a default-branch change arrives with the next
      // reconcile's scan.
      if (!(await this.applyMoves(id, moves, signal, out, announce))) {
        await announce(undefined);
        await this.fetchAndRecord(id, { refs: new Map() }, signal, out);
      }
    } else if (!this.d.store.exists(id) && !this.d.store.hasIncoming(id) && (await this.cloneOverSession(id, signal, out))) {
      // A new repository, cloned over one v2 session: ls-refs (the fingerprint and HEAD) and the
      // pack on the same channel, no separate scan.
    }
    if (seeded || out.via === undefined) await this.scanAndFetch(id, reason, signal, out, announce);
    if (seeded) out.created = true;
    // A reclone on the fast path is a first clone like any other: scheduled maintenance, not now.
    if (out.created) await this.afterFirstClone(id, signal, out);
    // A first clone's deferred index waits for a later job, not this one.
    await this.maintain(id, signal, out, out.created);
    return out;
  }

  /** Scan the primary; fetch when the mirror differs (or always for "manual"). */
  private async scanAndFetch(id: RepoId, reason: SyncReason, signal: AbortSignal, out: SyncOutcome, announce: (m: RefMove[] | undefined) => Promise<void>): Promise<void> {
    const { adv, fp } = await this.scan(id, signal);
    signal.throwIfAborted();
    // The primary may have moved between our scan and our fetch: we then hold something
    // newer than the scan, and the next trigger (or reconcile) converges.
    // "manual" (verify --resync) fetches even when the fingerprints agree: the copy on disk may
    // have drifted from what the fingerprint file recorded, which is what verify found.
    if (reason !== "manual" && !this.differs(id, fp)) return;
    // The moves are known before the fetch: the mirror's refs against the advertisement.
    if (this.d.beforePublish && this.d.store.exists(id)) {
      const moves = await this.movesTo(id, adv);
      // No ref moves (HEAD only, a missing fingerprint after a seed, verify's resync): nothing new to announce.
      if (moves === undefined || moves.length > 0) await announce(moves);
    }
    out.converged = (await this.fetchAndRecord(id, adv, signal, out)) === fp;
  }

  /** From the kept refs held to the advertisement's kept refs (undefined when the copy cannot be read). */
  private async movesTo(id: RepoId, adv: Advertisement): Promise<RefMove[] | undefined> {
    try {
      const held = keptOnly((await this.d.store.localRefs(id, this.d.env)).refs, this.d.keep);
      return movesBetween(held, keptOnly(adv.refs, this.d.keep));
    } catch {
      return undefined;
    }
  }

  /**
   * A first clone from the seed source (a farm peer), through the same resumable first-clone
   * path as the primary's. False when there is none or it failed (the primary then clones).
   */
  private async seedFromPeer(id: RepoId, signal: AbortSignal, out: SyncOutcome): Promise<boolean> {
    const src = this.d.seedSource?.(id);
    if (!src) return false;
    this.assertRoomFor(id);
    try {
      const r = await this.d.store.fetch(id, src.url, src.env, signal);
      out.seed = { peer: src.peer, bytes: r.bytes };
      if (r.resumedFromBytes > 0) out.resumedFromBytes = r.resumedFromBytes;
      return true;
    } catch (e) {
      if (signal.aborted) throw e;
      this.d.onFallback?.(id, `seeding from farm peer ${src.peer} failed (${(e as Error).message.split("\n")[0]}); cloning from the primary`);
      return false;
    }
  }

  /**
   * The moves a webhook announced, fetched by their tips over a warm session and applied with
   * a check of their old values (RepoStore.applyMoves). False when this path cannot be used or
   * did not apply (then the caller runs a full fetch, which is always right).
   */
  private async applyMoves(id: RepoId, moves: RefMove[] | "unknown" | undefined, signal: AbortSignal, out: SyncOutcome, announce: (m: RefMove[]) => Promise<void>): Promise<boolean> {
    const sessions = this.d.sessions;
    if (!sessions || moves === undefined || moves === "unknown") return false;
    const kept = moves.filter((m) => this.d.keep(m.ref));
    if (kept.length === 0) return false;
    this.assertRoomFor(id);
    const before = this.d.trackRefChanges ? await this.keptRefsBefore(id) : undefined;
    let session: V2Session | undefined;
    try {
      session = await sessions.take(upstreamPath(id.project, id.slug), signal);
      await announce(kept);
      const r = await this.d.store.applyMoves(id, session, kept, this.d.env, signal);
      if (r === false) {
        sessions.put(session);
        this.d.onFallback?.(id, "the mirror did not hold the announced old values");
        return false;
      }
      Object.assign(out, { fetched: true, bytes: r.bytes, via: "v2-moves" });
      if (r.packs > MAX_PACKS) {
        await this.d.store.consolidate(id, this.d.env, signal);
        out.maintenance.push("consolidate");
      }
      const held = await this.recordHeld(id);
      this.d.onMovesApplied?.(id, kept);
      if (before) out.refChanges = diffRefs(before, keptOnly(held.refs, this.d.keep));
      // The announced refs are visible now. Then check the whole repository: ls-refs on a
      // fresh session, since a long-lived upload-pack keeps answering ls-refs from the loose
      // refs it read at its start (git caches them per process; wants by object id are not
      // affected). A webhook that did not name every change (a truncated list, a new HEAD, a
      // push racing ours) leaves us unconverged, and the daemon follows up with a scan and a
      // full fetch. The fresh session stays warm for the next push.
      session.close();
      session = undefined;
      try {
        session = await sessions.take(upstreamPath(id.project, id.slug), signal);
        const adv = await session.lsRefs(signal);
        out.converged = fingerprint(adv.refs, adv.headTarget, this.d.keep) === held.fp;
        sessions.put(session);
      } catch (e) {
        session?.close();
        if (signal.aborted) throw e;
        out.converged = false;
      }
      return true;
    } catch (e) {
      session?.close();
      if (signal.aborted) throw e;
      this.d.onFallback?.(id, (e as Error).message);
      return false;
    }
  }

  /**
   * A first clone over one v2 session (RepoStore.cloneFromSession). False when the primary
   * does not speak v2, or the repository is large (the resumable steps take over).
   */
  private async cloneOverSession(id: RepoId, signal: AbortSignal, out: SyncOutcome): Promise<boolean> {
    const sessions = this.d.sessions;
    if (!sessions) return false;
    this.assertRoomFor(id);
    let session: V2Session | undefined;
    try {
      session = await sessions.take(upstreamPath(id.project, id.slug), signal);
      const adv = await session.lsRefs(signal);
      const kept = new Map([...adv.refs].filter(([name]) => this.d.keep(name)));
      const r = await this.d.store.cloneFromSession(id, session, kept, adv.headTarget, this.d.env, signal);
      Object.assign(out, { fetched: true, created: true, bytes: r.bytes, via: "v2-clone" });
      // What we wrote is exactly the kept refs and HEAD of this listing: its fingerprint, no git run.
      await this.d.store.writeFingerprintAsync(id, fingerprint(kept, adv.headTarget, this.d.keep));
      // A first clone: every kept ref is new (the synced event's snapshot).
      if (this.d.trackRefChanges) out.refChanges = diffRefs(new Map(), kept);
      return true;
    } catch (e) {
      if (e instanceof V2UnavailableError || e instanceof CloneTooLargeError) {
        this.d.onFallback?.(id, e.message);
        return false;
      }
      throw e;
    } finally {
      session?.close();
    }
  }

  /** Fetch (recloning a damaged copy), then record what we now hold; returns its fingerprint. */
  private async fetchAndRecord(id: RepoId, adv: Advertisement, signal: AbortSignal, out: SyncOutcome): Promise<string> {
    this.assertRoomFor(id);
    const before = this.d.trackRefChanges ? await this.keptRefsBefore(id) : undefined;
    await this.fetchWithReclone(id, adv, signal, out);
    const held = await this.recordHeld(id);
    if (before) out.refChanges = diffRefs(before, keptOnly(held.refs, this.d.keep));
    return held.fp;
  }

  /** The kept refs the mirror serves before a fetch (none before a first clone, or when unreadable). */
  private async keptRefsBefore(id: RepoId): Promise<Map<string, string>> {
    if (!this.d.store.exists(id)) return new Map();
    try {
      return keptOnly((await this.d.store.localRefs(id, this.d.env)).refs, this.d.keep);
    } catch {
      return new Map(); // a damaged copy: it is recloned, and every ref is reported as added
    }
  }

  /** A fetch grows the disk: below the free-space threshold it waits, a first clone with its own reason. */
  private assertRoomFor(id: RepoId): void {
    this.d.disk?.assertCanGrow(this.d.store.exists(id) ? `fetch of ${id.project}/${id.slug}` : `first clone of ${id.project}/${id.slug}`);
  }

  private async fetchWithReclone(id: RepoId, adv: Advertisement, signal: AbortSignal, out: SyncOutcome): Promise<void> {
    try {
      const r = await this.d.store.fetch(id, this.url(id), this.d.env, signal, adv.headTarget);
      Object.assign(out, { fetched: true, created: r.created, bytes: r.bytes, via: "git-fetch" });
      if (r.resumedFromBytes > 0) out.resumedFromBytes = r.resumedFromBytes;
      if (r.steps && r.steps.length > 1) out.steps = r.steps;
      if (r.packs > MAX_PACKS) {
        await this.d.store.consolidate(id, this.d.env, signal);
        out.maintenance.push("consolidate");
      }
    } catch (e) {
      if (signal.aborted || !(e instanceof GitError) || !looksCorrupt(e.message) || !this.d.store.exists(id)) throw e;
      // A damaged local copy: move it out of service and clone afresh (grokmirror's reclone).
      // The webhook path has no advertisement: ask the primary for its HEAD, or the new copy's
      // HEAD would be git's default branch instead of the primary's.
      this.d.store.remove(id);
      const headTarget = adv.headTarget ?? (await this.scan(id, signal)).adv.headTarget;
      const r = await this.d.store.fetch(id, this.url(id), this.d.env, signal, headTarget);
      Object.assign(out, { fetched: true, created: true, bytes: r.bytes, recloned: true, via: "git-fetch" });
    }
  }

  /**
   * A new copy: a big one gets its bitmap and commit-graph at once, or, while other syncs wait
   * (an initial sync), a mark that makes them due in its next job (the next reconcile round
   * finds the maintenance due): two git runs of a few hundred ms of CPU each on a busy machine
   * would delay every repository still to be mirrored, and the copy is complete and correct
   * without them (clones of it are served meanwhile, counting objects without a bitmap).
   * Either way its scheduled maintenance is spread, not due.
   */
  private async afterFirstClone(id: RepoId, signal: AbortSignal, out: SyncOutcome): Promise<void> {
    if (out.bytes + (out.seed?.bytes ?? 0) >= FIRST_CLONE_INDEX_MIN_BYTES) {
      if (this.d.othersWaiting?.()) await markIndexPending(this.d.store.dir(id));
      else await this.d.store.indexFirstClone(id, this.d.env, signal);
    }
    await this.spreadSchedule(id);
  }

  private async maintain(id: RepoId, signal: AbortSignal, out: SyncOutcome, skipIndex = false): Promise<void> {
    const dir = this.d.store.dir(id);
    // fsck first: repacking a damaged repository would fail (or spread the damage).
    const tasks = dueTasks(dir, this.d.maintenance, this.now())
      .filter((t) => !(skipIndex && t === "index"))
      .sort((a, b) => (a === "fsck" ? -1 : b === "fsck" ? 1 : 0));
    for (const task of tasks) {
      signal.throwIfAborted();
      let problem: string | undefined;
      if (task === "fsck") {
        problem = await this.d.store.fsck(id, this.d.env, signal);
      } else if (task === "index") {
        await this.d.store.indexFirstClone(id, this.d.env, signal);
        clearIndexPending(dir);
        out.maintenance.push(task);
        continue;
      } else {
        try {
          await this.d.store.maintain(id, this.d.env, signal);
        } catch (e) {
          if (signal.aborted || !(e instanceof GitError) || !looksCorrupt(e.message)) throw e;
          problem = e.message;
        }
      }
      if (problem !== undefined) {
        signal.throwIfAborted();
        await this.reclone(id, signal);
        out.recloned = true;
        out.maintenance.push(`${task} found damage (${problem.split("\n")[0]}): recloned`);
        return;
      }
      recordRun(dir, task, this.now());
      if (task === "repack") clearIndexPending(dir);
      out.maintenance.push(task);
    }
  }

  /** Grokmirror's cure for a damaged copy: out of service, fresh clone, fresh fingerprint. */
  private async reclone(id: RepoId, signal: AbortSignal): Promise<void> {
    this.d.store.remove(id);
    const { adv } = await this.scan(id, signal);
    await this.d.store.fetch(id, this.url(id), this.d.env, signal, adv.headTarget);
    await this.recordHeld(id);
    await this.spreadSchedule(id);
  }

  /**
   * After every fetch: read the refs we now hold, fingerprint them like the primary's, and
   * store the fingerprint (the next scan compares against it). Returns it.
   */
  private async recordHeld(id: RepoId): Promise<{ fp: string; refs: Map<string, string> }> {
    const local = await this.d.store.localRefs(id, this.d.env);
    const fp = fingerprint(local.refs, local.headTarget, this.d.keep);
    this.d.store.writeFingerprint(id, fp);
    return { fp, refs: local.refs };
  }

  /**
   * A fresh clone is already packed well and was just checked by index-pack: mark both tasks
   * as done at a random point in the last interval, so a fleet's schedules spread out.
   */
  private async spreadSchedule(id: RepoId): Promise<void> {
    const dir = this.d.store.dir(id);
    const rnd = this.d.random ?? Math.random;
    const now = this.now();
    await recordRunAsync(dir, "repack", now - rnd() * this.d.maintenance.repackIntervalMs * 0.9);
    await recordRunAsync(dir, "fsck", now - rnd() * this.d.maintenance.fsckIntervalMs * 0.9);
    await fs.promises.mkdir(path.join(dir, "objects", "info"), { recursive: true });
  }


  private now(): number {
    return (this.d.now ?? Date.now)();
  }
}
