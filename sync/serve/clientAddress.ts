/**
 * Who a request comes from, for per-client limits (upload-pack slots, failed auth checks). Pure.
 *
 * The daemon listens for nginx only (a unix socket, or loopback TCP), and nginx sets X-Real-IP
 * to the client's address (`$remote_addr`, never a client-sent header). So X-Real-IP is taken
 * when the peer is that proxy (unix socket or loopback); from any other peer it could be forged,
 * and the peer's own address is used.
 */
import type { IncomingMessage } from "node:http";
import * as net from "node:net";

const LOOPBACK = /^(127\.|::1$|::ffff:127\.)/;

export function clientAddress(req: Pick<IncomingMessage, "headers" | "socket">): string {
  const peer = req.socket?.remoteAddress;
  const viaProxy = peer === undefined || LOOPBACK.test(peer); // undefined: a unix socket
  const real = req.headers["x-real-ip"];
  if (viaProxy && typeof real === "string" && net.isIP(real.trim()) !== 0) return real.trim();
  return peer ?? "local";
}
