/**
 * A plain node:http client for tests of the daemon's server, over a unix socket or TCP.
 * No mocks: requests go through the kernel to the real server.
 */
import * as http from "node:http";
import type { Duplex } from "node:stream";
import { ListenAddress } from "../sync/serve/listen";

export interface TestResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json(): unknown;
}

export interface TestRequest {
  method?: string;
  path: string;
  headers?: http.OutgoingHttpHeaders;
  body?: string | Buffer;
  /**
   * Send only the headers (and this many body bytes), then wait for the answer: proves the
   * server answered without reading the body.
   */
  partialBody?: Buffer;
}

export function request(to: ListenAddress, r: TestRequest): Promise<TestResponse> {
  return new Promise((resolve, reject) => {
    const target = to.kind === "unix" ? { socketPath: to.path } : { host: to.host, port: to.port };
    let answered = false;
    const req = http.request({ ...target, method: r.method ?? "GET", path: r.path, headers: { ...r.headers }, agent: false }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) });
      });
      res.on("error", reject);
    });
    // Once the server refused a half-sent body it closes the socket; a write may then fail
    // after the answer arrived, which is fine.
    req.on("error", (e) => (answered ? undefined : reject(e)));
    if (r.partialBody) {
      req.flushHeaders();
      req.write(r.partialBody);
      return; // never end(): the rest of the body never comes
    }
    req.end(r.body);
  });
}

/** What a server wrote on a raw connection until it closed: the text, and its status line's code (0: none). */
export function rawResponse(s: Duplex): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on("data", (c: Buffer) => chunks.push(c));
    s.on("error", reject);
    s.on("close", () => {
      const text = Buffer.concat(chunks).toString("latin1");
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text });
    });
  });
}
