/**
 * What a client sent in its Authorization header, parsed; and the one-way fingerprint used to
 * remember decisions about it. Pure.
 *
 * git sends HTTP Basic (user:password, or user:token as Bitbucket's HTTP access tokens are used)
 * after a 401; tools and CI often send `Authorization: Bearer <token>` (git's
 * `http.extraHeader`). Anything else is "malformed": answered like missing credentials (401),
 * so git asks again instead of failing with a confusing message.
 */
import { createHmac, randomBytes } from "node:crypto";

export type Credentials = { scheme: "basic"; user: string; secret: string } | { scheme: "bearer"; token: string };

/** Far above any real user name, password or token; keeps hashing and forwarding bounded. */
const MAX_HEADER = 8192;
// Printable ASCII for bearer tokens (RFC 6750 b64token is stricter; Bitbucket tokens fit both).
const TOKEN_RE = /^[\x21-\x7e]{1,4096}$/;
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\x00-\x1f\x7f]/;

/**
 * undefined: no Authorization header; "malformed": a header we cannot use (unknown scheme,
 * bad base64, no colon, control characters in the user name, empty secret).
 */
export function parseAuthorization(header: string | string[] | undefined): Credentials | undefined | "malformed" {
  if (header === undefined) return undefined;
  if (Array.isArray(header) || header.length > MAX_HEADER) return "malformed";
  const m = /^\s*([A-Za-z]+)\s+(\S+)\s*$/.exec(header);
  if (!m) return "malformed";
  const scheme = m[1].toLowerCase();
  if (scheme === "bearer") return TOKEN_RE.test(m[2]) ? { scheme: "bearer", token: m[2] } : "malformed";
  if (scheme !== "basic" || !/^[A-Za-z0-9+/]+={0,2}$/.test(m[2])) return "malformed";
  const decoded = Buffer.from(m[2], "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon <= 0) return "malformed";
  const user = decoded.slice(0, colon);
  const secret = decoded.slice(colon + 1);
  // A user name ends up in logs: no control characters (log injection). Secrets never do.
  if (secret === "" || CONTROL_RE.test(user) || user.length > 255) return "malformed";
  return { scheme: "basic", user, secret };
}

/** The header to forward to the primary (re-encoded from the parsed form, never the raw input). */
export function authorizationHeader(c: Credentials): string {
  return c.scheme === "bearer" ? `Bearer ${c.token}` : `Basic ${Buffer.from(`${c.user}:${c.secret}`, "utf8").toString("base64")}`;
}

/** Who to name in logs: the Basic user name, or "(token)"; never the secret. */
export function principalOf(c: Credentials): string {
  return c.scheme === "basic" ? c.user : "(token)";
}

/**
 * A per-process random key: fingerprints are HMAC-SHA256(key, credentials), so a memory dump of
 * the decision cache cannot be brute-forced offline for weak passwords without also finding the
 * key, and fingerprints are useless after a restart. Never written anywhere.
 */
const FINGERPRINT_KEY = randomBytes(32);

/** One-way, domain-separated fingerprint of credentials plus a scope (e.g. "PROJ/repo"). */
export function credentialsFingerprint(c: Credentials, scope: string, key: Buffer = FINGERPRINT_KEY): string {
  const h = createHmac("sha256", key);
  // NUL separators: no user name, secret or scope can contain one in a parsed credential,
  // so ("a","b:c") and ("a:b","c") never collide.
  if (c.scheme === "basic") h.update(`basic\0${c.user}\0${c.secret}\0${scope}`);
  else h.update(`bearer\0${c.token}\0${scope}`);
  return h.digest("hex");
}
