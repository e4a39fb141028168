/**
 * Routes for the host alone (the operator, `smart-mirror verify`): the daemon listens on a unix
 * socket or loopback for nginx, and nginx sets X-Forwarded-For and X-Real-IP on everything it
 * proxies (and does not proxy these paths at all), so a request carrying either came from
 * outside and gets the same 404 as an unknown path.
 */
import type { IncomingMessage } from "node:http";

export function cameThroughProxy(req: IncomingMessage): boolean {
  return req.headers["x-forwarded-for"] !== undefined || req.headers["x-real-ip"] !== undefined;
}
