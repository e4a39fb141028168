/**
 * A userspace TCP proxy that adds a fixed one-way delay in each direction: the bench's
 * stand-in for a WAN link (tc netem is unavailable here). Every chunk is delivered delayMs
 * after the proxy received it, in order, so each request/response pays a full round trip,
 * not just the first one. Like a TCP window, the bytes in flight per direction are bounded:
 * the source socket is paused when the queue (including data the destination cannot take
 * yet) reaches maxInFlightBytes, which caps throughput near maxInFlightBytes / delayMs.
 * It runs in the test's own process; stop() is registered with onCleanup.
 */
import * as net from "node:net";
import { performance } from "node:perf_hooks";
import { onCleanup } from "./resources";

export interface LatencyProxyOptions {
  targetHost: string;
  targetPort: number;
  /** One-way delay, applied to each direction: a round trip costs 2 * delayMs. */
  delayMs: number;
  listenHost?: string;
  /** 0 (default) picks a free port. */
  listenPort?: number;
  /**
   * Charge the TCP handshake, as a real WAN does: the client's first byte cannot reach the
   * target before SYN/SYN-ACK/ACK (so a first request costs 2 round trips), and nothing from
   * the target reaches the client before the handshake would have completed there.
   * Default true. The proxy's own connect to the target still starts at once, so a refused
   * target closes the client immediately.
   */
  connectRtt?: boolean;
  /** Per direction; default 4 MiB (about Linux's default maximum TCP receive window). */
  maxInFlightBytes?: number;
}

export interface LatencyProxyStats {
  /** Connections currently open. */
  active: number;
  accepted: number;
  /** Largest number of bytes one direction ever held (queue + destination's write buffer). */
  peakInFlightBytes: number;
}

export interface LatencyProxy {
  host: string;
  port: number;
  stats(): LatencyProxyStats;
  stop(): Promise<void>;
}

interface Pending {
  /** performance.now() at which the chunk may be delivered. */
  at: number;
  /** null marks the source's end (FIN), delivered in order after the data before it. */
  chunk: Buffer | null;
}

/** One direction of one connection: a timestamped FIFO from src to dst. */
class DelayedPipe {
  private readonly queue: Pending[] = [];
  private queuedBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private waitingForDrain = false;
  private ended = false;
  private disposed = false;

  constructor(
    private readonly src: net.Socket,
    private readonly dst: net.Socket,
    private readonly delayMs: number,
    /** Nothing is considered sent before this (the simulated handshake); see connectRtt. */
    private readonly notBefore: number,
    private readonly maxInFlight: number,
    private readonly notePeak: (bytes: number) => void,
  ) {
    src.on("data", (chunk: Buffer) => this.push(chunk));
    src.on("end", () => this.push(null));
    dst.on("drain", () => {
      this.waitingForDrain = false;
      this.flush();
    });
  }

  /** The source went away without a FIN we saw: deliver what we have, then end. */
  sourceClosed(): void {
    if (!this.ended) this.push(null);
  }

  dispose(): void {
    this.disposed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
    // Keep draining a source nobody will deliver for, so its FIN still arrives and it closes.
    if (!this.src.destroyed && this.src.isPaused()) this.src.resume();
  }

  private inFlight(): number {
    return this.queuedBytes + this.dst.writableLength;
  }

  private push(chunk: Buffer | null): void {
    if (this.disposed || this.ended) return;
    if (chunk === null) this.ended = true;
    this.queue.push({ at: Math.max(performance.now(), this.notBefore) + this.delayMs, chunk });
    if (chunk) {
      this.queuedBytes += chunk.length;
      this.notePeak(this.inFlight());
      // Backpressure: stop reading, so the sender's kernel buffers fill and its writes block.
      if (this.inFlight() >= this.maxInFlight) this.src.pause();
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.disposed || this.timer || this.waitingForDrain || this.queue.length === 0) return;
    const wait = Math.max(0, Math.ceil(this.queue[0].at - performance.now()));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, wait);
  }

  private flush(): void {
    if (this.disposed) return;
    // Timers may fire a little early against performance.now(): re-check, never deliver early.
    while (this.queue.length > 0 && this.queue[0].at <= performance.now() && !this.waitingForDrain) {
      const { chunk } = this.queue.shift() as Pending;
      if (chunk === null) {
        if (!this.dst.destroyed) this.dst.end();
        continue;
      }
      this.queuedBytes -= chunk.length;
      if (this.dst.destroyed) continue;
      if (!this.dst.write(chunk)) this.waitingForDrain = true;
    }
    if (this.src.isPaused() && !this.src.destroyed && this.inFlight() < this.maxInFlight / 2) this.src.resume();
    this.schedule();
  }
}

/**
 * Close with RST, as a broken link looks to both ends: a plain FIN would leave an
 * allowHalfOpen peer waiting with its write side open.
 */
function reset(s: net.Socket): void {
  if (s.destroyed) return;
  try {
    s.resetAndDestroy();
  } catch {
    s.destroy();
  }
}

export async function startLatencyProxy(opts: LatencyProxyOptions): Promise<LatencyProxy> {
  const listenHost = opts.listenHost ?? "127.0.0.1";
  const delayMs = opts.delayMs;
  if (!(delayMs >= 0)) throw new Error(`delayMs must be >= 0, got ${delayMs}`);
  const connectRtt = opts.connectRtt ?? true;
  const maxInFlight = opts.maxInFlightBytes ?? 4 * 1024 * 1024;
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  let active = 0;
  let peakInFlightBytes = 0;
  const notePeak = (n: number) => {
    if (n > peakInFlightBytes) peakInFlightBytes = n;
  };

  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    accepted++;
    active++;
    const t0 = performance.now();
    const upstream = net.connect({ host: opts.targetHost, port: opts.targetPort, allowHalfOpen: true });
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    sockets.add(client);
    sockets.add(upstream);
    // Handshake model: client's connect() returns at t0 + RTT, its ACK/data reach the target
    // at t0 + 1.5 RTT; the target's first bytes leave no earlier than that.
    const c2sFrom = connectRtt ? t0 + 2 * delayMs : 0;
    const s2cFrom = connectRtt ? t0 + 3 * delayMs : 0;
    const toServer = new DelayedPipe(client, upstream, delayMs, c2sFrom, maxInFlight, notePeak);
    const toClient = new DelayedPipe(upstream, client, delayMs, s2cFrom, maxInFlight, notePeak);

    let closed = 0;
    const fail = () => {
      toServer.dispose();
      toClient.dispose();
      reset(client);
      reset(upstream);
    };
    const onClose = (which: net.Socket, hadError: boolean) => {
      sockets.delete(which);
      if (++closed === 2) active--;
      if (hadError) return fail();
      // A socket that closed can neither send more nor receive what is still queued for it.
      if (which === client) {
        toServer.sourceClosed();
        toClient.dispose();
      } else {
        toClient.sourceClosed();
        toServer.dispose();
      }
    };
    // Errors (reset, refused, ...) close both sides at once, as a dropped connection would.
    client.on("error", fail);
    upstream.on("error", fail);
    client.on("close", (e) => onClose(client, e));
    upstream.on("close", (e) => onClose(upstream, e));
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.listenPort ?? 0, listenHost, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as net.AddressInfo;

  const stop = onCleanup(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) reset(s);
        server.close(() => resolve());
      }),
  );

  return {
    host: listenHost,
    port: address.port,
    stats: () => ({ active, accepted, peakInFlightBytes }),
    stop: () => stop(),
  };
}
