/**
 * A real HTTP receiver for the mirror's synced events: records every request (headers, raw
 * body) and answers as the test says (a status, or hold the answer until released).
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { onCleanup } from "./resources";

export interface Received {
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  at: number;
}

export interface EventReceiver {
  url: string;
  received: Received[];
  /** How the next requests are answered: a status code, or "hold" (answered by release()). */
  answer: (r: Received, n: number) => number | "hold";
  /** Answer every held request with `status`. */
  release(status?: number): void;
  /** Resolves when `n` requests arrived. */
  count(n: number): Promise<Received[]>;
  close(): Promise<void>;
}

export async function startEventReceiver(path = "/hooks/mirror"): Promise<EventReceiver> {
  const held: http.ServerResponse[] = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const r: EventReceiver = {
    url: "",
    received: [],
    answer: () => 200,
    release(status = 200) {
      for (const res of held.splice(0)) res.writeHead(status).end();
    },
    count: (n) =>
      r.received.length >= n ? Promise.resolve(r.received.slice()) : new Promise((resolve) => waiters.push({ n, resolve: () => resolve(r.received.slice()) })),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const got: Received = { headers: req.headers, body: Buffer.concat(chunks), at: Date.now() };
      if (req.url !== path || req.method !== "POST") return void res.writeHead(404).end();
      r.received.push(got);
      const a = r.answer(got, r.received.length);
      if (a === "hold") held.push(res);
      else res.writeHead(a).end();
      for (const w of waiters.filter((w) => r.received.length >= w.n)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`;
  onCleanup(() => {
    r.release(503);
    server.closeAllConnections();
    return r.close();
  });
  return r;
}
