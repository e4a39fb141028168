/**
 * The Authorizer the configuration asks for (mirror.serve.auth), wired to its files and the
 * primary. Reads files once here (CA) or through TokenStore (tokens, re-read on change).
 */
import type { MirrorConfig } from "../config/schema";
import { anonymousAuthorizer, Authorizer, primaryAuthorizer, tokensAuthorizer } from "./authorizer";
import type { CheckResult } from "./primaryCheck";
import { PrimaryRepoCheck, readCaFile } from "./primaryCheck";
import { TokenStore } from "./tokensFile";
import { DEFAULT_GRACE_MS } from "./decisionCache";
import type { RepoId } from "../types";

export interface AuthDeps {
  /** Problems worth an operator's attention (unreadable tokens file, ...). */
  warn?(message: string): void;
  /** Each real call to the primary. */
  onPrimaryCheck?(result: CheckResult, repo: RepoId, principal: string): void;
  /** Override the outage grace (default 24 h; 0 when mirror.serve.authCacheTtl=0, see below). */
  graceMs?: number;
}

/** The parts of MirrorConfig access control depends on. */
export interface AuthConfig {
  serve: Pick<MirrorConfig["serve"], "auth" | "tokensFile" | "authCacheTtlMs">;
  upstream: Pick<MirrorConfig["upstream"], "url" | "caFile">;
}

export function authorizerFromConfig(config: AuthConfig, deps: AuthDeps = {}): Authorizer {
  const { serve, upstream } = config;
  switch (serve.auth) {
    case "anonymous":
      return anonymousAuthorizer();
    case "tokens": {
      if (!serve.tokensFile) throw new Error("mirror.serve.auth=tokens needs mirror.serve.tokensFile");
      return tokensAuthorizer(new TokenStore(serve.tokensFile, { onProblem: deps.warn }));
    }
    case "primary": {
      const check = new PrimaryRepoCheck({ baseUrl: upstream.url, caPem: readCaFile(upstream.caFile) });
      return primaryAuthorizer({
        check: (c, r) => check.check(c, r),
        // authCacheTtl=0 means "ask the primary every time": then an outage must not turn into
        // 24 h of unchecked access either, so the grace goes too.
        cache: { allowTtlMs: serve.authCacheTtlMs, graceMs: deps.graceMs ?? (serve.authCacheTtlMs === 0 ? 0 : DEFAULT_GRACE_MS) },
        onCheck: deps.onPrimaryCheck,
        close: () => check.close(),
      });
    }
  }
}
