/**
 * Draining: how a node leaves a load balancer's rotation without cutting a clone.
 *
 *   1. readiness turns 503 at once (GET /status/ready; /status says "draining": true), so the
 *      load balancer's health checks take the node out;
 *   2. every request that still arrives is served as usual: a load balancer needs its health
 *      check interval x unhealthy threshold to notice, and keeps sending until then;
 *   3. the drain ends when no new request has arrived for mirror.drain.quietPeriod (counted
 *      from the drain's start or the last arrival, whichever is later) AND no request is in
 *      flight (an upload-pack stream, an LFS transfer, a relayed push, a long-poll);
 *   4. mirror.drain.timeout bounds the whole drain, from readiness turning 503: past it the
 *      drain ends with the requests still running (a stop then closes them and counts them cut).
 *
 * Requests are counted where the HTTP server sees them (track() wraps the request listener),
 * so every route is covered, present and future. Probes (PROBE_PATHS: the load balancer's
 * health checks, /status, /metrics) are not arrivals: a balancer probing every few seconds
 * would otherwise keep the quiet period from ever ending.
 *
 * decide() is the pure rule; RequestDrain is the shell with the timers, the counters and the
 * metrics. The clock is injectable for the unit tests (no timed assertions).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { Counter, Gauge, Registry } from "prom-client";
import { ANNOUNCE_PATH } from "../farm/announce";
import { splitTarget } from "./router";

export const DRAIN_METRIC_NAMES = {
  draining: "smart_mirror_draining",
  inFlight: "smart_mirror_http_requests_in_flight",
  duration: "smart_mirror_drain_duration_seconds",
  cut: "smart_mirror_drain_requests_cut_total",
} as const;

export const DEFAULT_DRAIN_TIMEOUT_MS = 5 * 60_000;
export const DEFAULT_DRAIN_QUIET_PERIOD_MS = 0;

/** The drain control route (drainRoute.ts): internal, and never counted (it waits for the drain). */
export const DRAIN_PATH = "/drain";

/**
 * Health checks, observation reads, the drain control itself and the farm's peer traffic on
 * /farm/announce (each peer probes it every few seconds and POSTs its announcements there; a
 * draining node owes peers nothing, and counting them would keep a farm node's quiet period
 * from ever ending): served while draining, never counted as client arrivals or in flight.
 */
export const PROBE_PATHS: ReadonlySet<string> = new Set(["/status", "/status/ready", "/status/detail", "/healthz", "/metrics", DRAIN_PATH, ANNOUNCE_PATH]);

export function isProbe(rawTarget: string | undefined): boolean {
  return PROBE_PATHS.has(splitTarget(rawTarget).path);
}

export interface DrainFacts {
  now: number;
  /** Readiness 503 since (the first drain() of this state). */
  notReadySince: number;
  /** This drain's start (a drain asked again after one ended starts a new bound). */
  startedAt: number;
  /** Last arrival of a counted request (undefined: none so far). */
  lastArrivalAt: number | undefined;
  inFlight: number;
  quietPeriodMs: number;
  timeoutMs: number;
}

export type DrainDecision = { kind: "done" } | { kind: "timeout" } | { kind: "wait"; ms?: number };

/**
 * Whether the drain is over. `wait.ms`: when the quiet period ends (re-decide then); absent: only
 * a request ending (or the timeout) can change the answer.
 */
export function decide(f: DrainFacts): DrainDecision {
  const deadline = f.startedAt + f.timeoutMs;
  const quietUntil = Math.max(f.notReadySince, f.lastArrivalAt ?? f.notReadySince) + f.quietPeriodMs;
  const quiet = f.now >= quietUntil;
  if (quiet && f.inFlight === 0) return { kind: "done" };
  if (f.now >= deadline) return { kind: "timeout" };
  return quiet ? { kind: "wait" } : { kind: "wait", ms: Math.min(quietUntil, deadline) - f.now };
}

export interface DrainResult {
  /** From this drain's start to its end. */
  durationMs: number;
  /** Requests still running when the drain ended (timeout or skip): a stop cuts them (countCut). */
  remaining: number;
  timedOut: boolean;
  /** Ended early by cancel() or a second stop signal (skip). */
  skipped: boolean;
}

export interface RequestDrainOptions {
  quietPeriodMs: number;
  timeoutMs: number;
  registry?: Registry;
  now?: () => number;
}

export class RequestDrain {
  private inFlight = 0;
  /** The counted requests' responses, for cut(). */
  private readonly running = new Set<ServerResponse>();
  private lastArrivalAt: number | undefined;
  private notReadySince: number | undefined;
  private current: { startedAt: number; timeoutMs: number; done: Promise<DrainResult>; finish?: (r: DrainResult) => void; skip: boolean } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly drainingGauge: Gauge;
  private readonly durationGauge: Gauge;
  private readonly cutCounter: Counter;
  private readonly listeners = new Set<(draining: boolean) => void>();

  constructor(private readonly o: RequestDrainOptions) {
    this.now = o.now ?? Date.now;
    const registers = o.registry ? [o.registry] : [];
    this.drainingGauge = new Gauge({ name: DRAIN_METRIC_NAMES.draining, help: "1 while the node drains or is drained (readiness 503, still serving what arrives), else 0.", registers });
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    new Gauge({
      name: DRAIN_METRIC_NAMES.inFlight,
      help: "Client requests being answered now (health checks and /metrics excluded): what a drain waits for.",
      registers,
      collect() {
        this.set(self.inFlight);
      },
    });
    this.durationGauge = new Gauge({ name: DRAIN_METRIC_NAMES.duration, help: "How long the last drain took, from its start to drained (or cut by mirror.drain.timeout).", registers });
    this.cutCounter = new Counter({ name: DRAIN_METRIC_NAMES.cut, help: "Requests still running when mirror.drain.timeout (or a second stop signal) ended a drain; their connections were closed.", registers });
  }

  /** Readiness is 503 (a drain runs or has ended; until cancel()). */
  get draining(): boolean {
    return this.notReadySince !== undefined;
  }

  get requestsInFlight(): number {
    return this.inFlight;
  }

  /** Be told when draining starts (true) or is cancelled (false): the status board listens. */
  onChange(listener: (draining: boolean) => void): void {
    this.listeners.add(listener);
  }

  /** Count one request (wrap the server's request listener with this). */
  readonly track = (req: IncomingMessage, res: ServerResponse): void => {
    if (isProbe(req.url)) return;
    this.inFlight++;
    this.running.add(res);
    this.lastArrivalAt = this.now();
    // "close" fires once, when the response finished or the connection went away.
    res.once("close", () => {
      this.inFlight--;
      this.running.delete(res);
      this.evaluate();
    });
    this.evaluate();
  };

  /**
   * Drain: readiness 503 now, resolve when drained or cut. A call while a drain runs joins it;
   * a call after one ended (a `smart-mirror drain`, then SIGTERM) drains again under a new
   * bound, the quiet period still counted from when readiness turned 503.
   */
  drain(timeoutMs = this.o.timeoutMs): Promise<DrainResult> {
    if (this.current?.finish) return this.current.done;
    const now = this.now();
    if (this.notReadySince === undefined) {
      this.notReadySince = now;
      this.drainingGauge.set(1);
      for (const l of this.listeners) l(true);
    }
    let finish: ((r: DrainResult) => void) | undefined;
    const done = new Promise<DrainResult>((resolve) => (finish = resolve));
    this.current = { startedAt: now, timeoutMs, done, finish, skip: false };
    this.evaluate();
    return done;
  }

  /** End a running drain now (a second stop signal): what is in flight is left to the caller, counted as cut. */
  skip(): void {
    if (!this.current?.finish) return;
    this.current.skip = true;
    this.evaluate();
  }

  /** Ready again (`smart-mirror drain --cancel`); a running drain ends as skipped. */
  cancel(): boolean {
    if (!this.draining) return false;
    this.skip();
    this.current = undefined;
    this.notReadySince = undefined;
    this.drainingGauge.set(0);
    for (const l of this.listeners) l(false);
    return true;
  }

  private evaluate(): void {
    const c = this.current;
    const notReadySince = this.notReadySince;
    if (!c?.finish || notReadySince === undefined) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const now = this.now();
    const d: DrainDecision | { kind: "skip" } = c.skip ? { kind: "skip" } : decide({ now, notReadySince, startedAt: c.startedAt, lastArrivalAt: this.lastArrivalAt, inFlight: this.inFlight, quietPeriodMs: this.o.quietPeriodMs, timeoutMs: c.timeoutMs });
    if (d.kind === "wait") {
      // ms absent: a request ending re-evaluates; the timeout still needs its own timer.
      // Ref'd on purpose: a drain holds the process until it ends.
      this.timer = setTimeout(() => this.evaluate(), Math.max(1, d.ms ?? c.startedAt + c.timeoutMs - now));
      return;
    }
    const finish = c.finish;
    c.finish = undefined;
    const durationMs = now - c.startedAt;
    this.durationGauge.set(durationMs / 1000);
    finish({ durationMs, remaining: d.kind === "done" ? 0 : this.inFlight, timedOut: d.kind === "timeout", skipped: d.kind === "skip" });
  }

  /**
   * Close the connections of every counted request still running (the stop after a drain that
   * timed out or was skipped), count them cut, and resolve with how many once their "close"
   * handlers have run (bounded by `settleMs`). Explicit rather than left to
   * server.closeAllConnections(): these are the ones the drain was waiting for, and a hand-off
   * (git writing straight into the socket, git/handOff.ts) kills git's process group only on
   * its response's "close": git's own copy of the socket would otherwise carry the transfer on
   * after the daemon exited.
   */
  async cut(settleMs = 2000): Promise<number> {
    const responses = [...this.running];
    if (responses.length === 0) return 0;
    this.cutCounter.inc(responses.length);
    const closed = responses.map((res) => new Promise<void>((resolve) => (res.closed ? resolve() : res.once("close", () => resolve()))));
    for (const res of responses) res.destroy();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(closed), new Promise<void>((r) => (timer = setTimeout(r, settleMs)))]);
    clearTimeout(timer);
    // The handlers' own "close" listeners ran in the same emit; one more turn for what they started.
    await new Promise<void>((r) => setImmediate(r));
    return responses.length;
  }
}
