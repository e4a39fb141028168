/**
 * The farm token: peers present it as `Authorization: Bearer <token>`. Compared in constant
 * time; never logged. farmAuthorizer lets its holder read every repository over /scm/ (a
 * joining node seeds its first clones from a peer), whatever mirror.serve.auth says for users.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { Authorizer } from "../auth/authorizer";
import { parseAuthorization } from "../auth/credentials";

/** The principal peers appear as in logs. */
export const FARM_PRINCIPAL = "farm-peer";

export function farmTokenCheck(token: string): (header: string | string[] | undefined) => boolean {
  // Digests of equal length: timingSafeEqual needs it, and the token's length stays hidden too.
  const want = createHash("sha256").update(token).digest();
  return (header) => {
    const c = parseAuthorization(header);
    if (c === undefined || c === "malformed" || c.scheme !== "bearer") return false;
    return timingSafeEqual(createHash("sha256").update(c.token).digest(), want);
  };
}

/** `inner`, except that the farm token is allowed everything (checked first, no primary call). */
export function farmAuthorizer(inner: Authorizer, token: string): Authorizer {
  const isFarm = farmTokenCheck(token);
  return {
    mode: inner.mode,
    authorize: async (header, repo, client) => (isFarm(header) ? { allowed: true, principal: FARM_PRINCIPAL, via: "token" } : inner.authorize(header, repo, client)),
    close: () => inner.close(),
  };
}
