/**
 * The WAN simulator: every round trip through it costs 2 * delayMs (plus one for the TCP
 * handshake when connectRtt is on), bulk data arrives intact under backpressure, FIN travels
 * behind the data, and resets close both sides.
 */
import { createHash, randomBytes } from "node:crypto";
import * as net from "node:net";
import { performance } from "node:perf_hooks";
import { startLatencyProxy } from "./latencyProxy";
import { onCleanup } from "./resources";

/** A loopback TCP server, closed at cleanup (connections included). */
async function tcpServer(onConn: (s: net.Socket) => void): Promise<number> {
  const conns = new Set<net.Socket>();
  const srv = net.createServer({ allowHalfOpen: true }, (s) => {
    conns.add(s);
    s.on("close", () => conns.delete(s));
    s.on("error", () => undefined);
    onConn(s);
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  onCleanup(
    () =>
      new Promise<void>((r) => {
        for (const c of conns) c.destroy();
        srv.close(() => r());
      }),
  );
  return (srv.address() as net.AddressInfo).port;
}

const echoServer = () => tcpServer((s) => s.pipe(s));

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: "127.0.0.1", port, allowHalfOpen: true }, () => resolve(s));
    s.setNoDelay(true);
    s.once("error", reject);
    onCleanup(() => void s.destroy());
  });
}

/** Send one byte, resolve when the echo is back. */
function ping(s: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    s.once("data", () => resolve());
    s.write("x");
  });
}

jest.setTimeout(60000);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

// Scheduling noise on a busy 2-core box only ever adds time, so the lower bounds are exact
// and the upper bound is generous; the median of several pings absorbs the odd slow one.
const DELAY = 100;
const SLACK = 150;

describe("latency proxy", () => {
  test("every round trip costs 2 * delay (per-chunk delay, not a delayed connect)", async () => {
    const proxy = await startLatencyProxy({ targetHost: "127.0.0.1", targetPort: await echoServer(), delayMs: DELAY, connectRtt: false });
    const s = await connect(proxy.port);
    const rtts: number[] = [];
    for (let i = 0; i < 7; i++) {
      const t = performance.now();
      await ping(s);
      rtts.push(performance.now() - t);
    }
    for (const r of rtts) expect(r).toBeGreaterThanOrEqual(2 * DELAY);
    expect(median(rtts)).toBeLessThan(2 * DELAY + SLACK);
  });

  test("with connectRtt (the default) the first reply after connect() takes two round trips", async () => {
    const target = await echoServer();
    const firstReply = async (connectRtt?: boolean) => {
      const proxy = await startLatencyProxy({ targetHost: "127.0.0.1", targetPort: target, delayMs: DELAY, connectRtt });
      const t = performance.now();
      const s = await connect(proxy.port);
      await ping(s);
      const first = performance.now() - t;
      const t2 = performance.now();
      await ping(s);
      return { first, second: performance.now() - t2 };
    };
    const withRtt = [await firstReply(), await firstReply(), await firstReply()];
    for (const r of withRtt) {
      expect(r.first).toBeGreaterThanOrEqual(4 * DELAY);
      expect(r.second).toBeGreaterThanOrEqual(2 * DELAY);
    }
    expect(median(withRtt.map((r) => r.first))).toBeLessThan(4 * DELAY + SLACK);
    expect(median(withRtt.map((r) => r.second))).toBeLessThan(2 * DELAY + SLACK);
    const without = [await firstReply(false), await firstReply(false), await firstReply(false)];
    expect(median(without.map((r) => r.first))).toBeLessThan(2 * DELAY + SLACK);
  });

  test("20 MB echoed through the proxy arrives intact and in order", async () => {
    const proxy = await startLatencyProxy({ targetHost: "127.0.0.1", targetPort: await echoServer(), delayMs: 20 });
    const data = randomBytes(20 * 1024 * 1024);
    const s = await connect(proxy.port);
    const chunks: Buffer[] = [];
    const done = new Promise<void>((r) => s.on("end", r));
    s.on("data", (c: Buffer) => chunks.push(c));
    // Uneven writes, so chunk boundaries differ on each hop.
    for (let off = 0; off < data.length; ) {
      const n = 1 + Math.floor(Math.random() * 200000);
      s.write(data.subarray(off, off + n));
      off += n;
    }
    s.end();
    await done;
    const got = Buffer.concat(chunks);
    expect(got.length).toBe(data.length);
    expect(sha256(got)).toBe(sha256(data));
    expect(proxy.stats().peakInFlightBytes).toBeLessThanOrEqual(4 * 1024 * 1024 + 256 * 1024);
  });

  test("backpressure: a stalled receiver makes the proxy stop reading, holding at most its window", async () => {
    const window = 1024 * 1024;
    const hash = createHash("sha256");
    let received = 0;
    let stalled: net.Socket | undefined;
    let allReceived!: () => void;
    const gotAll = new Promise<void>((r) => (allReceived = r));
    const port = await tcpServer((s) => {
      stalled = s;
      s.on("data", (c: Buffer) => {
        hash.update(c);
        received += c.length;
      });
      s.pause(); // read nothing until the test says so
      s.on("end", () => {
        s.end();
        allReceived();
      });
    });
    const proxy = await startLatencyProxy({ targetHost: "127.0.0.1", targetPort: port, delayMs: 10, maxInFlightBytes: window });
    const data = randomBytes(20 * 1024 * 1024);
    const client = await connect(proxy.port);
    client.write(data);
    client.end();
    // Let the kernel buffers and the proxy's window fill while the receiver is stalled.
    await new Promise((r) => setTimeout(r, 1000));
    expect(received).toBe(0);
    // The sender is blocked: most of the 20 MB is still in its own userspace buffer.
    expect(client.writableLength).toBeGreaterThan(10 * 1024 * 1024);
    const peak = proxy.stats().peakInFlightBytes;
    expect(peak).toBeGreaterThanOrEqual(window / 2); // the window did fill ...
    expect(peak).toBeLessThanOrEqual(window + 256 * 1024); // ... and never overflowed
    stalled?.resume();
    await gotAll;
    expect(received).toBe(data.length);
    expect(hash.digest("hex")).toBe(sha256(data));
    expect(proxy.stats().peakInFlightBytes).toBeLessThanOrEqual(window + 256 * 1024);
  });

  test("half-close: the client's FIN reaches the server after its data, and the reply still comes back", async () => {
    let serverSawEndAfter = -1;
    const port = await tcpServer((s) => {
      let n = 0;
      s.on("data", (c: Buffer) => (n += c.length));
      s.on("end", () => {
        serverSawEndAfter = n;
        s.end(`got ${n}`);
      });
    });
    const proxy = await startLatencyProxy({ targetHost: "127.0.0.1", targetPort: port, delayMs: 50 });
    const s = await connect(proxy.port);
    let reply = "";
    s.on("data", (c: Buffer) => (reply += c.toString()));
    const ended = new Promise<void>((r) => s.on("end", r));
    const closed = new Promise<void>((r) => s.on("close", () => r()));
    for (let i = 0; i < 10; i++) s.write(Buffer.alloc(10000, i));
    const t = performance.now();
    s.end();
    await ended;
    expect(performance.now() - t).toBeGreaterThanOrEqual(100); // FIN and reply each took the delay
    expect(serverSawEndAfter).toBe(100000);
    expect(reply).toBe("got 100000");
    await closed;
    await new Promise((r) => setTimeout(r, 50));
    expect(proxy.stats().active).toBe(0);
  });

  test("half-close the other way: after the server's FIN the client can still send", async () => {
    let serverGot!: (s: string) => void;
    const got = new Promise<string>((r) => (serverGot = r));
    const port = await tcpServer((s) => {
      let text = "";
      s.on("data", (c: Buffer) => (text += c.toString()));
      s.on("end", () => serverGot(text));
      s.end("bye");
    });
    const proxy = await startLatencyProxy({ targetHost: "127.0.0.1", targetPort: port, delayMs: 20 });
    const s = await connect(proxy.port);
    let fromServer = "";
    s.on("data", (c: Buffer) => (fromServer += c.toString()));
    await new Promise<void>((r) => s.on("end", r));
    expect(fromServer).toBe("bye");
    s.end("still here");
    expect(await got).toBe("still here");
  });

  test("a reset from the target closes the client; an unreachable target does too", async () => {
    const resetter = await tcpServer((s) => s.once("data", () => s.resetAndDestroy()));
    const proxy = await startLatencyProxy({ targetHost: "127.0.0.1", targetPort: resetter, delayMs: 20 });
    const s = await connect(proxy.port);
    const closed = new Promise<void>((r) => s.on("close", () => r()));
    s.on("error", () => undefined);
    s.write("boom");
    await closed;
    await new Promise((r) => setTimeout(r, 50));
    expect(proxy.stats()).toMatchObject({ active: 0, accepted: 1 });

    // A port nothing listens on: take one from a server we then close.
    const dead = await new Promise<number>((resolve) => {
      const srv = net.createServer().listen(0, "127.0.0.1", () => {
        const p = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    const proxy2 = await startLatencyProxy({ targetHost: "127.0.0.1", targetPort: dead, delayMs: 20 });
    const s2 = await connect(proxy2.port);
    s2.on("error", () => undefined);
    await new Promise<void>((r) => s2.on("close", () => r()));
    expect(s2.bytesRead).toBe(0);
  });

  test("stop() closes open connections and the listener", async () => {
    const proxy = await startLatencyProxy({ targetHost: "127.0.0.1", targetPort: await echoServer(), delayMs: 5 });
    const s = await connect(proxy.port);
    await ping(s);
    const closed = new Promise<void>((r) => s.on("close", () => r()));
    s.on("error", () => undefined);
    await proxy.stop();
    await closed;
    await expect(connect(proxy.port)).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });
});
