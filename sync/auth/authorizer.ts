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
import { PrimaryBreaker } from "./breaker";
import { FailureBudget, FailureBudgetOptions } from "./failureBudget";

/** throttled: this client made too many checks that failed lately (429, no call to the primary). */
export type AuthDenial = "no_credentials" | "bad_credentials" | "forbidden" | "unavailable" | "throttled";

export type AuthResult =
  | { allowed: true; principal?: string; via: "anonymous" | "token" | "primary" | "cache" | "grace" }
  | { allowed: false; reason: AuthDenial; principal?: string; retryAfterSeconds?: number };

export interface Authorizer {
  readonly mode: ServeAuth;
  /**
   * `authorization` is the raw Authorization header; `repo` has been validated (isValidRepoId);
   * `client` names the client (its address) for per-client limits.
   */
  authorize(authorization: string | string[] | undefined, repo: RepoId, client?: string): Promise<AuthResult>;
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
  /** How long "the primary does not answer" is remembered (breaker.ts; default 30 s). */
  breakerOpenMs?: number;
  /** Per-client budget of checks that end in a denial (failureBudget.ts). */
  failures?: FailureBudgetOptions;
  now?: () => number;
  /** Called once per real call to the primary (metrics, logs). */
  onCheck?(result: CheckResult, repo: RepoId, principal: string): void;
  close?(): void;
}

/** The scope under which "these credentials are wrong" is remembered for every repository. */
const ANY_REPO = "\0any";

/**
 * In order: credentials the primary recently called wrong are refused for every repository
 * without asking again; a fresh remembered decision is used; a client over its failure budget
 * is refused (429) before anything is asked; else the primary is asked (coalesced per key),
 * unless the breaker remembers it as unavailable, in which case the outage grace applies at once.
 */
export function primaryAuthorizer(o: PrimaryAuthorizerOptions): Authorizer & { readonly cache: DecisionCache; readonly breaker: PrimaryBreaker } {
  const cache = new DecisionCache({ now: o.now, ...o.cache });
  const breaker = new PrimaryBreaker({ openMs: o.breakerOpenMs, now: o.now ?? o.cache.now });
  const failures = new FailureBudget({ now: o.now ?? o.cache.now, ...o.failures });
  return {
    mode: "primary",
    cache,
    breaker,
    async authorize(header, repo, client) {
      const c = credentialsOrDenial(header);
      if ("allowed" in c) return c;
      const principal = principalOf(c);
      const anyRepo = credentialsFingerprint(c, ANY_REPO);
      if (cache.peek(anyRepo) === "bad_credentials") return { allowed: false, reason: "bad_credentials", principal };
      const key = credentialsFingerprint(c, repoKey(repo));
      if (client !== undefined && cache.peek(key) === undefined && !failures.allows(client)) {
        return { allowed: false, reason: "throttled", principal, retryAfterSeconds: failures.retryAfterSeconds(client) };
      }
      const d = await cache.decide(key, async (): Promise<Verdict> => {
        const r = await breaker.run(() => o.check(c, repo));
        if (!r.skipped) o.onCheck?.(r, repo, principal);
        return r.verdict;
      });
      if (d.source === "check" && (d.verdict === "bad_credentials" || d.verdict === "forbidden") && client !== undefined) failures.charge(client);
      if (d.source === "check" && d.verdict === "bad_credentials") cache.rememberDenial(anyRepo, "bad_credentials");
      if (d.verdict === "allow") return { allowed: true, principal, via: d.source === "check" ? "primary" : d.source };
      return { allowed: false, reason: d.verdict, principal };
    },
    close: () => o.close?.(),
  };
}
