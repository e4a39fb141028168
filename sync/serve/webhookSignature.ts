/**
 * Bitbucket Data Center webhook signatures: with a secret set on the webhook, each request
 * carries `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed by the secret>`
 * (Atlassian, "Manage webhooks" / "Event payload" — Webhook secrets, e.g.
 * confluence.atlassian.com/bitbucketserver089/event-payload-1236435931.html#Eventpayload-HTTPheaders).
 */
import { createHmac, timingSafeEqual } from "node:crypto";

const HEADER = /^sha256=([0-9a-f]{64})$/i;

/** The header value Bitbucket would send for `body` (used by tests and the demo primary). */
export function signBody(secret: string, body: Buffer | string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/** The 32-byte MAC from a well-formed header value, else undefined (other algorithms are refused). */
export function parseSignatureHeader(header: string | string[] | undefined): Buffer | undefined {
  if (typeof header !== "string") return undefined; // absent, or sent twice: refuse
  const m = HEADER.exec(header.trim());
  return m ? Buffer.from(m[1], "hex") : undefined;
}

/**
 * True if `header` is the HMAC of `body` under one of `secrets` (several allow rotating the
 * secret without a window of rejected webhooks). Constant-time compare of equal-length MACs;
 * every secret is tried, so timing does not reveal which one matched.
 */
export function verifySignature(secrets: readonly string[], body: Buffer, header: string | string[] | undefined): boolean {
  const given = parseSignatureHeader(header);
  if (!given) return false;
  let ok = false;
  for (const secret of secrets) {
    const want = createHmac("sha256", secret).update(body).digest();
    if (timingSafeEqual(want, given)) ok = true;
  }
  return ok;
}
