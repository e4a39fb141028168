/**
 * A node of a mirror farm and what it knows about its peers (issue #17, items 3 and 4):
 *
 * - Peers: the peers file (peersFile.ts), each peer probed every PROBE_INTERVAL_MS over its
 *   nginx (peerHttp.ts): who it is (GET /farm/announce answers the node id, so a node finds and
 *   skips its own entry) and whether it is ready (GET /status/ready 200; a node without that
 *   endpoint: GET /status's "ready": true, or its state SYNCHRONIZED/DEGRADED and not draining).
 * - "Announce before publish": before this node makes new refs of a repository visible it tells
 *   every reachable peer (POST /farm/announce, in parallel, bounded by ANNOUNCE_ACK_BOUND_MS in
 *   all). The ack means "recorded", not "applied": no node ever waits for another's sync, so
 *   there is no wait cycle.
 * - "Catch up before advertise": a peer that recorded an announcement syncs exactly those moves
 *   at once (Daemon.syncNow fast path) without announcing again, and an advertisement of that
 *   repository asked meanwhile waits for that sync (bounded by mirror.serve.onDemandWait). A
 *   sync that started after the announcement read the primary after the origin did, so it
 *   brings the announced refs or newer: once any node served new refs, every node asked
 *   afterwards serves them too.
 * - Seeding: a repository's first clone comes from a ready peer over its /scm/ (seed.ts); the
 *   primary only sends the delta.
 */
import { randomUUID } from "node:crypto";
import { Counter, Gauge, Registry } from "prom-client";
import type { SyncResult } from "../daemon/syncWaiters";
import type { RefMove } from "../store/repoStore";
import type { FarmSettings } from "../runtimeOptions";
import type { Log } from "../serve/http";
import { silentLog } from "../serve/http";
import type { RepoKey } from "../types";
import { Announcement, ANNOUNCE_PATH, announcementBody, coveredBy, MAX_INSTANCE_ID_LENGTH, MAX_NODE_ID_LENGTH } from "./announce";
import { PeerHttp } from "./peerHttp";
import { Peer, PeersFile } from "./peersFile";
import { ownsScan, ShareSelf, ShareView, shareView, viewSignature } from "./scanShare";

/** What the farm asks of the daemon. */
export interface FarmLink {
  /** Daemon.syncNow: sync now (coalesced), the moves fetched by their tips when possible. */
  syncNow(key: RepoKey, moves?: RefMove[]): Promise<SyncResult>;
}

export const PROBE_INTERVAL_MS = 2_000;
export const PROBE_TIMEOUT_MS = 1_500;
/** The longest a publish waits for its announcement's receipts, all peers together. */
export const ANNOUNCE_ACK_BOUND_MS = 1_000;
/** Announcements recorded at once (one per repository); beyond it the oldest is forgotten. */
const MAX_PENDING = 10_000;

export const FARM_METRIC_NAMES = {
  sent: "smart_mirror_farm_announcements_sent_total",
  received: "smart_mirror_farm_announcements_received_total",
  ackFailures: "smart_mirror_farm_peer_ack_failures_total",
  skippedPeers: "smart_mirror_farm_announce_skipped_peers_total",
  catchUps: "smart_mirror_farm_catchups_total",
  catchUpTimeouts: "smart_mirror_farm_catchup_timeouts_total",
  peers: "smart_mirror_farm_peers",
  peersHealthy: "smart_mirror_farm_peers_healthy",
  seedBytes: "smart_mirror_farm_seed_bytes_total",
  seedRepos: "smart_mirror_farm_seed_repos_total",
  scanShare: "smart_mirror_farm_scan_share_repos",
} as const;

export interface PeerState {
  url: string;
  /** Its mirror.farm.nodeId, once it told us. */
  node?: string;
  self: boolean;
  /** Answered over HTTPS at the last probe (a reachable peer gets announcements, even while not ready). */
  reachable: boolean;
  /** Ready at the last probe: it serves clients (and seeds). */
  healthy: boolean;
  checkedAt?: number;
  error?: string;
}

export type CatchUpResult = "none" | "caught_up" | "timeout" | "failed";

interface Pending {
  origin: string;
  moves?: RefMove[];
  at: number;
  done: Promise<SyncResult>;
}

export interface FarmDeps {
  link: FarmLink;
  log?: Log;
  registry?: Registry;
  now?: () => number;
  http?: PeerHttp;
}

function counter(r: Registry | undefined, name: string, help: string, labelNames: string[] = []): Counter<string> | undefined {
  if (!r) return undefined;
  return (r.getSingleMetric(name) as Counter<string> | undefined) ?? new Counter({ name, help, labelNames, registers: [r] });
}

export class Farm {
  readonly nodeId: string;
  /**
   * This daemon's run, random per start: how a node recognizes its own entry in the peers file
   * and its own announcements, even when two nodes were given the same node id (netns nodes
   * share a host name). The node id stays the name in logs and announcements.
   */
  readonly instance = randomUUID();
  private readonly file: PeersFile;
  private readonly http: PeerHttp;
  private readonly log: Log;
  private readonly now: () => number;
  private readonly state = new Map<string, PeerState>();
  private readonly pending = new Map<RepoKey, Pending>();
  private timer?: NodeJS.Timeout;
  private probing?: Promise<void>;
  private nextSeed = 0;
  private readonly seeded = { peer: { repos: 0, bytes: 0 }, primary: { repos: 0, bytes: 0 } };
  /** The last reconcile's scan share (scanShare.ts): the view it used, how many it owned of how many. */
  private share?: { view: ShareView; signature: string; owned: number; of: number };
  /** Owners under `share.signature`, memoized: sha256 per node and key only when the view changes. */
  private owns = new Map<RepoKey, boolean>();
  /** Per peer URL: repositories whose announcement it did not acknowledge, to tell it again. */
  private readonly owed = new Map<string, Set<RepoKey>>();
  private readonly retelling = new Set<string>();
  private readonly m: {
    sent?: Counter<string>;
    received?: Counter<string>;
    ackFailures?: Counter<string>;
    skippedPeers?: Counter<string>;
    catchUps?: Counter<string>;
    catchUpTimeouts?: Counter<string>;
    seedBytes?: Counter<string>;
    seedRepos?: Counter<string>;
  };

  constructor(
    private readonly s: FarmSettings,
    private readonly d: FarmDeps,
  ) {
    this.nodeId = s.nodeId;
    this.log = d.log ?? silentLog;
    this.now = d.now ?? Date.now;
    this.file = new PeersFile(s.peersFile, { warn: (msg, fields) => this.log.warn(fields ?? {}, msg), now: this.now });
    this.http = d.http ?? new PeerHttp({ serverName: s.serverName, caPem: s.caPem }, s.token);
    const r = d.registry;
    this.m = {
      sent: counter(r, FARM_METRIC_NAMES.sent, "Announcements this node sent before publishing new refs (one per publish, whatever the number of peers)."),
      received: counter(r, FARM_METRIC_NAMES.received, "Announcements this node recorded from peers (each starts a sync of the repository)."),
      ackFailures: counter(r, FARM_METRIC_NAMES.ackFailures, "Announcements a reachable peer did not acknowledge within the bound (1 s) or refused."),
      skippedPeers: counter(r, FARM_METRIC_NAMES.skippedPeers, "Announcements not sent to a peer because its last probe could not reach it."),
      catchUps: counter(r, FARM_METRIC_NAMES.catchUps, "Advertisements and wants that waited for an announced sync, by result: caught_up, timeout (served what the node had, past mirror.serve.onDemandWait), failed.", ["result"]),
      catchUpTimeouts: counter(r, FARM_METRIC_NAMES.catchUpTimeouts, "Advertisements and wants served past mirror.serve.onDemandWait before an announced sync ended (what the node had was served)."),
      seedBytes: counter(r, FARM_METRIC_NAMES.seedBytes, "Pack bytes received by first clones and their catch-up, by source: peer (seeded from a farm peer), primary (a first clone from the primary, or the delta after a seed).", ["source"]),
      seedRepos: counter(r, FARM_METRIC_NAMES.seedRepos, "First clones of repositories, by source: peer or primary.", ["source"]),
    };
    if (r && !r.getSingleMetric(FARM_METRIC_NAMES.peersHealthy)) {
      const others = () => this.peers().filter((p) => !p.self);
      new Gauge({ name: FARM_METRIC_NAMES.peersHealthy, help: "Peers (this node excluded) ready at their last probe.", registers: [r], collect() { this.set(others().filter((p) => p.healthy).length); } });
      new Gauge({ name: FARM_METRIC_NAMES.peers, help: "Peers listed in mirror.farm.peersFile, this node excluded.", registers: [r], collect() { this.set(others().length); } });
      const owned = () => this.share?.owned ?? 0;
      new Gauge({ name: FARM_METRIC_NAMES.scanShare, help: "Repositories whose change-detection scan this node owns (its share of the farm's reconcile: every repository when no peer is up or while this node starts).", registers: [r], collect() { this.set(owned()); } });
    }
  }

  start(): void {
    void this.probe();
    this.timer = setInterval(() => void this.probe(), PROBE_INTERVAL_MS);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.http.close();
  }

  /** Every listed peer with what the last probe found (this node's own entry flagged self). */
  peers(): PeerState[] {
    return this.file.list().map((p) => this.state.get(p.url) ?? { url: p.url, self: false, reachable: true, healthy: false });
  }

  /** Probe every listed peer once (a running round is joined). */
  probe(): Promise<void> {
    this.probing ??= this.probeAll().finally(() => (this.probing = undefined));
    return this.probing;
  }

  private async probeAll(): Promise<void> {
    const listed = this.file.list();
    const urls = new Set(listed.map((p) => p.url));
    for (const url of [...this.state.keys()]) if (!urls.has(url)) this.state.delete(url);
    for (const url of [...this.owed.keys()]) if (!urls.has(url)) this.owed.delete(url);
    await Promise.all(listed.map((p) => this.probeOne(p)));
  }

  private async probeOne(peer: Peer): Promise<void> {
    const before = this.state.get(peer.url);
    const st: PeerState = { url: peer.url, node: before?.node, self: before?.self ?? false, reachable: false, healthy: false, checkedAt: this.now() };
    try {
      if (st.node === undefined) {
        // Who is it? Asked until it answers; an old peer without the route stays anonymous.
        const who = await this.http.request(peer, "GET", ANNOUNCE_PATH, { timeoutMs: PROBE_TIMEOUT_MS });
        if (who.status === 401) throw new Error("the peer refused the farm token (401): is mirror.farm.tokenFile the same on every node?");
        const id = who.status === 200 ? identityOf(who.body) : undefined;
        st.node = id?.node;
        st.self = id?.instance !== undefined ? id.instance === this.instance : st.node === this.nodeId;
        if (!st.self && st.node === this.nodeId) this.log.warn({ peer: peer.url, node: st.node }, "a farm peer has this node's mirror.farm.nodeId: give every node its own id (logs and announcements name nodes by it)");
      }
      st.reachable = true;
      if (!st.self) st.healthy = await this.ready(peer);
    } catch (e) {
      st.error = (e as Error).message;
      st.reachable = !/no answer|ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ECONNRESET|socket hang up/i.test(st.error);
    }
    if (before?.healthy !== st.healthy && !st.self) this.log.info({ peer: peer.url, node: st.node, healthy: st.healthy, error: st.error }, st.healthy ? "farm peer is ready" : "farm peer is not ready");
    this.state.set(peer.url, st);
    if (st.reachable && !st.self && this.owed.has(peer.url)) void this.retell(peer);
  }

  /** GET /status/ready: 200 = ready; a node without it (404): /status's ready flag or state. */
  private async ready(peer: Peer): Promise<boolean> {
    const r = await this.http.request(peer, "GET", "/status/ready", { timeoutMs: PROBE_TIMEOUT_MS, auth: false });
    if (r.status === 200) return true;
    if (r.status !== 404) return false;
    const s = await this.http.request(peer, "GET", "/status", { timeoutMs: PROBE_TIMEOUT_MS, auth: false });
    return s.status === 200 && readyFromStatus(s.body);
  }

  /** Peers (not this node) a publish tells: every one the last probe reached, ready or not. */
  private announceTargets(): { targets: Peer[]; unreachable: number } {
    const targets: Peer[] = [];
    let unreachable = 0;
    for (const p of this.file.list()) {
      const st = this.state.get(p.url);
      if (st?.self) continue;
      if (st && !st.reachable) unreachable++;
      else targets.push(p);
    }
    return { targets, unreachable };
  }

  /**
   * Before publishing new refs of `key`: tell every reachable peer and wait for their receipts
   * (bounded). `moves` undefined = not known (a full fetch). Never rejects; a peer that does not
   * ack is counted and skipped (clients may briefly see it behind, as without a farm).
   */
  async announce(key: RepoKey, moves: readonly RefMove[] | undefined): Promise<{ announced: boolean; acked: number; failed: number; skipped: number }> {
    const told = this.pending.get(key);
    if (told && coveredBy(told.moves, moves)) return { announced: false, acked: 0, failed: 0, skipped: 0 };
    const { targets, unreachable } = this.announceTargets();
    this.m.sent?.inc();
    if (unreachable > 0) this.m.skippedPeers?.inc(unreachable);
    const body = announcementBody(key, moves, this.nodeId, this.instance);
    const results = await Promise.all(
      targets.map((p) =>
        this.http.request(p, "POST", ANNOUNCE_PATH, { json: body, timeoutMs: ANNOUNCE_ACK_BOUND_MS }).then(
          (r) => r.status === 200 || (this.noteAckFailure(p, key, `HTTP ${r.status}`), false),
          (e: Error) => (this.noteAckFailure(p, key, e.message), false),
        ),
      ),
    );
    const acked = results.filter(Boolean).length;
    return { announced: true, acked, failed: results.length - acked, skipped: unreachable };
  }

  /**
   * A reachable peer did not acknowledge: it may not sync this change, and with shared scans
   * (scanShare.ts) it does not scan a repository it does not own. So it is owed the news: told
   * again ("something changed": a full sync) at the next probe that reaches it.
   */
  private noteAckFailure(p: Peer, key: RepoKey, why: string): void {
    this.m.ackFailures?.inc();
    this.log.warn({ peer: p.url, repo: key, error: why }, "farm peer did not acknowledge an announcement; telling it again at the next probe");
    const owed = this.owed.get(p.url) ?? new Set<RepoKey>();
    owed.delete(key);
    owed.add(key);
    // Bounded: beyond it the oldest is dropped (that node's own scans, when it owns the
    // repository, or the next change, bring it; its restart compares everything).
    if (owed.size > MAX_PENDING) owed.delete(owed.values().next().value as RepoKey);
    this.owed.set(p.url, owed);
  }

  /** Tell a peer the probe just reached again what it did not acknowledge (one at a time, in order). */
  private async retell(peer: Peer): Promise<void> {
    const owed = this.owed.get(peer.url);
    if (!owed || owed.size === 0 || this.retelling.has(peer.url)) return;
    this.retelling.add(peer.url);
    let told = 0;
    try {
      for (const key of [...owed]) {
        const r = await this.http.request(peer, "POST", ANNOUNCE_PATH, { json: announcementBody(key, undefined, this.nodeId, this.instance), timeoutMs: ANNOUNCE_ACK_BOUND_MS }).catch(() => undefined);
        if (r?.status !== 200) break;
        owed.delete(key);
        told++;
      }
    } finally {
      this.retelling.delete(peer.url);
      if (owed.size === 0) this.owed.delete(peer.url);
      if (told > 0) this.log.info({ peer: peer.url, repos: told, left: owed.size }, "farm: told a peer again of announcements it had not acknowledged");
    }
  }

  /** A peer announced: record it and sync those moves now (not announced again, see announce()). */
  receive(a: Announcement): void {
    this.m.received?.inc();
    const prev = this.pending.get(a.repo);
    const moves = prev && prev.moves && a.moves ? [...prev.moves.filter((m) => !a.moves!.some((n) => n.ref === m.ref)), ...a.moves] : prev ? undefined : a.moves;
    // Recorded before the sync is asked for, so the sync's own publish finds it (no re-announce).
    const entry: Pending = { origin: a.origin, moves, at: this.now(), done: Promise.resolve({ ok: true }) };
    this.pending.delete(a.repo);
    this.pending.set(a.repo, entry);
    if (this.pending.size > MAX_PENDING) this.pending.delete(this.pending.keys().next().value as RepoKey);
    entry.done = this.d.link.syncNow(a.repo, a.moves).then((r) => {
      if (this.pending.get(a.repo) === entry) this.pending.delete(a.repo);
      if (!r.ok) this.log.warn({ repo: a.repo, origin: a.origin, error: r.error.message }, "farm: the sync an announcement asked for failed");
      return r;
    });
  }

  /** Is an announced sync of `key` still running? (the serving side asks before it waits). */
  hasPending(key: RepoKey): boolean {
    return this.pending.has(key);
  }

  /**
   * Before advertising `key` (or looking for a want): wait for the sync a peer's announcement
   * started, at most `waitMs`. "none": nothing announced is outstanding.
   */
  async catchUp(key: RepoKey, waitMs: number): Promise<CatchUpResult> {
    const p = this.pending.get(key);
    if (!p) return "none";
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([p.done.then((x) => (x.ok ? ("caught_up" as const) : ("failed" as const))), new Promise<"timeout">((res) => (timer = setTimeout(() => res("timeout"), Math.max(0, waitMs))))]).finally(() => clearTimeout(timer));
    this.m.catchUps?.inc({ result: r });
    if (r === "timeout") {
      this.m.catchUpTimeouts?.inc();
      this.log.warn({ repo: key, origin: p.origin, waitMs }, "farm: an announced sync did not finish within mirror.serve.onDemandWait; serving what this node has");
    }
    return r;
  }

  /**
   * This reconcile round's share of `keys` (the repositories on disk): those whose scan this
   * node owns among the nodes up now (scanShare.ts). `self`: this node's own readiness. Logs
   * when the share changes (a peer joined, left, or this node became ready or started draining).
   */
  scanShare(keys: readonly RepoKey[], self: Omit<ShareSelf, "id">): RepoKey[] {
    const view = shareView({ id: this.nodeId, ...self }, this.peers());
    const signature = viewSignature(view);
    const known = this.share?.signature === signature ? this.owns : new Map<RepoKey, boolean>();
    // Rebuilt each round from `keys`: bounded by the catalog, keys that left it are forgotten.
    const next = new Map<RepoKey, boolean>();
    const mine = keys.filter((k) => {
      const o = known.get(k) ?? ownsScan(view, k);
      next.set(k, o);
      return o;
    });
    this.owns = next;
    const before = this.share;
    this.share = { view, signature, owned: mine.length, of: keys.length };
    if (!before || before.signature !== signature || before.owned !== mine.length) {
      const nodes = view.mode === "share" ? view.nodes : [this.nodeId];
      this.log.info({ owned: mine.length, of: keys.length, mode: view.mode, ...(view.mode === "all" ? { why: view.why } : { nodes, counted: view.counted }), before: before ? { owned: before.owned, mode: before.view.mode } : null }, "farm: this node's scan share changed");
    }
    return mine;
  }

  /** A ready peer to take a first clone from (round robin), or undefined. */
  seedPeer(): Peer | undefined {
    const ready = this.file.list().filter((p) => {
      const st = this.state.get(p.url);
      return st !== undefined && !st.self && st.healthy;
    });
    if (ready.length === 0) return undefined;
    return ready[this.nextSeed++ % ready.length];
  }

  /** A first clone ended: where its bytes came from (metrics, /status/detail). */
  recordFirstClone(source: "peer" | "primary", bytes: number, deltaFromPrimary = 0): void {
    this.seeded[source].repos++;
    this.seeded[source].bytes += bytes;
    this.m.seedRepos?.inc({ source });
    this.m.seedBytes?.inc({ source }, bytes);
    if (deltaFromPrimary > 0) {
      this.seeded.primary.bytes += deltaFromPrimary;
      this.m.seedBytes?.inc({ source: "primary" }, deltaFromPrimary);
    }
  }

  /** /status/detail's `farm` section. */
  status(): FarmStatus {
    const peers = this.peers();
    return {
      nodeId: this.nodeId,
      peersFile: this.s.peersFile,
      peers: peers.map((p) => ({ url: p.url, node: p.node ?? null, self: p.self, reachable: p.reachable, healthy: p.healthy, checkedAt: p.checkedAt ? new Date(p.checkedAt).toISOString() : null, ...(p.error ? { error: p.error } : {}) })),
      healthyPeers: peers.filter((p) => !p.self && p.healthy).length,
      pendingAnnouncements: [...this.pending].slice(0, 100).map(([repo, p]) => ({ repo, origin: p.origin, moves: p.moves?.length ?? null, since: new Date(p.at).toISOString() })),
      pendingCount: this.pending.size,
      owedAnnouncements: [...this.owed.values()].reduce((n, o) => n + o.size, 0),
      seed: { fromPeers: { ...this.seeded.peer }, fromPrimary: { ...this.seeded.primary } },
      scanShare: this.share ? { repos: this.share.owned, of: this.share.of, mode: this.share.view.mode, ...(this.share.view.mode === "all" ? { why: this.share.view.why } : { nodes: this.share.view.nodes, counted: this.share.view.counted }) } : null,
    };
  }
}

export interface FarmStatus {
  nodeId: string;
  peersFile: string;
  peers: Array<{ url: string; node: string | null; self: boolean; reachable: boolean; healthy: boolean; checkedAt: string | null; error?: string }>;
  healthyPeers: number;
  pendingAnnouncements: Array<{ repo: string; origin: string; moves: number | null; since: string }>;
  pendingCount: number;
  /** Announcements reachable peers did not acknowledge, to be told again at their next probe. */
  owedAnnouncements: number;
  /** First clones and their bytes, by source (the primary's count includes the delta after a seed). */
  seed: { fromPeers: { repos: number; bytes: number }; fromPrimary: { repos: number; bytes: number } };
  /**
   * The last reconcile's scan share: `repos` this node scans of `of` on disk; mode "all" (why:
   * no_peer_up, starting) or "share" among `nodes` (counted: this node among them). null before
   * the first round.
   */
  scanShare: { repos: number; of: number; mode: "all" | "share"; why?: string; nodes?: string[]; counted?: boolean } | null;
}

/** The node id and run a GET /farm/announce answered. Pure. */
export function identityOf(body: string): { node?: string; instance?: string } | undefined {
  try {
    const j = JSON.parse(body) as { node?: unknown; instance?: unknown };
    // A peer's answer is logged, shown and hashed per repository: the node id's own bound
    // (mirror.farm.nodeId, as the announce schema's origin), else the peer stays anonymous.
    if (typeof j.node !== "string" || j.node.length > MAX_NODE_ID_LENGTH) return undefined;
    return { node: j.node, ...(typeof j.instance === "string" && j.instance.length <= MAX_INSTANCE_ID_LENGTH ? { instance: j.instance } : {}) };
  } catch {
    return undefined;
  }
}

/** /status JSON -> ready: its "ready" flag when present, else SYNCHRONIZED/DEGRADED and not draining. Pure. */
export function readyFromStatus(body: string): boolean {
  try {
    const j = JSON.parse(body) as { ready?: unknown; state?: unknown; draining?: unknown };
    if (typeof j.ready === "boolean") return j.ready;
    return (j.state === "SYNCHRONIZED" || j.state === "DEGRADED") && j.draining !== true;
  } catch {
    return false;
  }
}
