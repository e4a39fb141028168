/**
 * The stalled-body attack of issue 12 (item 3), one place for its test and the reliability
 * benchmark: a POST that declares `length` bytes and sends all but the last 100, then holds the
 * connection open. The server must answer it (503 when the body budget is spent, 408 when the
 * body idles out) and close, and give its memory back.
 */
import * as net from "node:net";

export interface StalledPost {
  /** The status line's code once the server answered and closed (0: closed without an answer). */
  answer: Promise<number>;
  /** Everything the client will send has been written (or the connection is gone). */
  sent: Promise<void>;
}

export function stalledPost(port: number, target: string, length: number, headers: Record<string, string>, host = "127.0.0.1"): StalledPost {
  const s = net.connect(port, host);
  const chunks: Buffer[] = [];
  s.on("data", (c: Buffer) => chunks.push(c));
  s.on("error", () => undefined);
  const answer = new Promise<number>((resolve) => {
    s.on("close", () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(Buffer.concat(chunks).toString("latin1"))?.[1] ?? 0)));
  });
  const head = [`POST ${target} HTTP/1.1`, "Host: mirror", `Content-Length: ${length}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), "", ""].join("\r\n");
  const sent = new Promise<void>((resolve) => {
    // A server that refuses early may close before the body is written: that counts as sent.
    s.once("close", () => resolve());
    s.write(head, () => s.write(Buffer.alloc(length - 100, 0x30), () => resolve()));
  });
  return { answer, sent };
}
