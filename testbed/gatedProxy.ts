/**
 * A TCP relay between a client and a server whose server-to-client direction can be held: the
 * bench's "slow reader". A client behind it (a real `git clone` over TLS) is a client that has
 * stopped reading: the relay stops reading from the server, so the server's socket buffers fill
 * and its writes wait, exactly as with a stalled client on a slow link. Releasing lets the bytes
 * flow again. Deterministic (no timers): the test decides when the client reads.
 *
 *     const p = await startGatedProxy({ targetPort: nginxPort, holdAfterBytes: 1 << 20 });
 *     // ... start a clone through p.port; it stalls after 1 MiB ...
 *     await p.whenHeld;
 *     p.release();
 */
import * as net from "node:net";
import { onCleanup } from "./resources";

export interface GatedProxy {
  port: number;
  /** Resolves when the hold took effect (holdAfterBytes passed to the client). */
  whenHeld: Promise<void>;
  held(): boolean;
  /** Bytes passed from the server to clients so far. */
  downstreamBytes(): number;
  /** Hold the server-to-client direction now. */
  hold(): void;
  /** Let it flow again (and never hold automatically again). */
  release(): void;
  /** Close every connection and the listener. */
  stop(): Promise<void>;
}

export async function startGatedProxy(o: { targetPort: number; targetHost?: string; holdAfterBytes?: number }): Promise<GatedProxy> {
  let held = false;
  let released = false;
  let down = 0;
  let markHeld: () => void = () => undefined;
  const whenHeld = new Promise<void>((r) => (markHeld = r));
  const upstreams = new Set<net.Socket>();
  const sockets = new Set<net.Socket>();
  const setHeld = (h: boolean) => {
    held = h;
    for (const u of upstreams) {
      if (h) u.pause();
      else u.resume();
    }
    if (h) markHeld();
  };
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: o.targetHost ?? "127.0.0.1", port: o.targetPort });
    upstreams.add(upstream);
    sockets.add(client).add(upstream);
    const drop = () => {
      upstreams.delete(upstream);
      sockets.delete(client);
      sockets.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.pipe(upstream);
    upstream.on("data", (chunk: Buffer) => {
      down += chunk.length;
      if (!client.write(chunk)) {
        upstream.pause();
        client.once("drain", () => !held && upstream.resume());
      }
      if (!released && !held && o.holdAfterBytes !== undefined && down >= o.holdAfterBytes) setHeld(true);
    });
    upstream.on("end", () => client.end());
    if (held) upstream.pause();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  const stop = onCleanup(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return {
    port,
    whenHeld,
    held: () => held,
    downstreamBytes: () => down,
    hold: () => setHeld(true),
    release: () => {
      released = true;
      setHeld(false);
    },
    stop: () => stop(),
  };
}
