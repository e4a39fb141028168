/**
 * Who may read what through the mirror, one Authorizer per mirror.serve.auth mode:
 *
 *   anonymous  everyone (must be chosen explicitly in the configuration)
 *   tokens     holders of a token from mirror.serve.tokensFile (see tokensFile.ts); any repository
 *   primary    whoever the primary lets read the repository, asked through its REST API with the
 *              client's own credentials (primaryCheck.ts), remembered by DecisionCache
 *
 * In every mode but anonymous a request without credentials is refused before anything else is
 * looked at (git always asks without credentials first and retries with them after the 401), so
 * an anonymous caller learns nothing about which repositories exist. The primary is never asked
 * about requests without credentials; public repositories on the primary therefore still need
 * credentials on the mirror.
 */
import type { ServeAuth } from "../config/schema";
import type { RepoId } from "../types";
import { repoKey } from "../types";
import { credentialsFingerprint, Credentials, parseAuthorization, principalOf } from "./credentials";
import { DecisionCache, DecisionCacheOptions, Verdict } from "./decisionCache";
import type { CheckResult } from "./primaryCheck";
import { TokenStore } from "./tokensFile";

export type AuthDenial = "no_credentials" | "bad_credentials" | "forbidden" | "unavailable";

export type AuthResult =
  | { allowed: true; principal?: string; via: "anonymous" | "token" | "primary" | "cache" | "grace" }
  | { allowed: false; reason: AuthDenial; principal?: string };

export interface Authorizer {
  readonly mode: ServeAuth;
  /** `authorization` is the raw Authorization header; `repo` has been validated (isSafeRepoId). */
  authorize(authorization: string | string[] | undefined, repo: RepoId): Promise<AuthResult>;
  close(): void;
}

export function anonymousAuthorizer(): Authorizer {
  return { mode: "anonymous", authorize: async () => ({ allowed: true, via: "anonymous" }), close() {} };
}

function credentialsOrDenial(header: string | string[] | undefined): Credentials | AuthResult {
  const c = parseAuthorization(header);
  return c === undefined || c === "malformed" ? { allowed: false, reason: "no_credentials" } : c;
}

export function tokensAuthorizer(store: TokenStore): Authorizer {
  return {
    mode: "tokens",
    async authorize(header) {
      const c = credentialsOrDenial(header);
      if ("allowed" in c) return c;
      const e = store.verify(c);
      return e ? { allowed: true, principal: e.name, via: "token" } : { allowed: false, reason: "bad_credentials", principal: c.scheme === "basic" ? c.user : undefined };
    },
    close() {},
  };
}

export interface PrimaryAuthorizerOptions {
  check(creds: Credentials, repo: RepoId): Promise<CheckResult>;
  cache: DecisionCacheOptions;
  /** Called once per real call to the primary (metrics, logs). */
  onCheck?(result: CheckResult, repo: RepoId, principal: string): void;
  close?(): void;
}

export function primaryAuthorizer(o: PrimaryAuthorizerOptions): Authorizer & { readonly cache: DecisionCache } {
  const cache = new DecisionCache(o.cache);
  return {
    mode: "primary",
    cache,
    async authorize(header, repo) {
      const c = credentialsOrDenial(header);
      if ("allowed" in c) return c;
      const principal = principalOf(c);
      const d = await cache.decide(credentialsFingerprint(c, repoKey(repo)), async (): Promise<Verdict> => {
        const r = await o.check(c, repo);
        o.onCheck?.(r, repo, principal);
        return r.verdict;
      });
      if (d.verdict === "allow") return { allowed: true, principal, via: d.source === "check" ? "primary" : d.source };
      return { allowed: false, reason: d.verdict, principal };
    },
    close: () => o.close?.(),
  };
}
