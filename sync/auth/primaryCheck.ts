/**
 * "May these credentials read PROJECT/repo?", asked of the primary itself: a GET of the
 * repository resource with the client's own credentials, the same permission check Bitbucket
 * applies to a clone. 200 means yes.
 *
 *   GET {upstream}/rest/api/1.0/projects/{KEY}/repos/{slug}
 *     200            -> allow
 *     401            -> bad_credentials, unless Bitbucket says the user is known but not
 *                       permitted (AuthorisationException in the error body) -> forbidden
 *     403, 404       -> forbidden (Bitbucket answers 404 for repositories a user may not see)
 *     anything else, connection errors, timeouts -> unavailable (the caller may use its grace)
 *
 * TLS is always verified: the system roots plus the operator's CA file (mirror.upstream.caFile)
 * for a primary with a private CA. The credentials go to the configured https URL and nowhere
 * else: redirects are not followed.
 */
import * as fs from "node:fs";
import * as https from "node:https";
import * as tls from "node:tls";
import type { IncomingMessage } from "node:http";
import type { RepoId } from "../types";
import { authorizationHeader, Credentials } from "./credentials";
import type { Verdict } from "./decisionCache";

export interface PrimaryCheckOptions {
  /** The primary's https base URL (may carry a context path, e.g. https://host/bitbucket). */
  baseUrl: string;
  /** Extra trusted CA certificates (PEM), added to the system roots. */
  caPem?: string;
  /** Per check (default 10 s). */
  timeoutMs?: number;
  /** Parallel connections to the primary (default 16); checks are coalesced before they get here. */
  maxSockets?: number;
}

export interface CheckResult {
  verdict: Verdict;
  /** HTTP status, when the primary answered. */
  status?: number;
  /** Why it was "unavailable" (for logs; never contains credentials). */
  error?: string;
  /** Not asked: the breaker remembers the primary as unavailable (breaker.ts). */
  skipped?: boolean;
}

/** The repository resource URL (pure). Names were validated by the caller; encoded anyway. */
export function repoResourceUrl(baseUrl: string, id: RepoId): string {
  return `${baseUrl.replace(/\/+$/, "")}/rest/api/1.0/projects/${encodeURIComponent(id.project)}/repos/${encodeURIComponent(id.slug)}`;
}

/** Map the primary's answer to a verdict (pure). `body` is the start of the error body, if any. */
export function verdictFor(status: number, body: string): Verdict {
  if (status === 200) return "allow";
  if (status === 401) {
    // Bitbucket's RestErrors: {"errors":[{"exceptionName":"com.atlassian.bitbucket.AuthorisationException",...}]}
    // means "authenticated, but not allowed to see this"; any other 401 is an authentication failure.
    return /AuthorisationException/.test(body) ? "forbidden" : "bad_credentials";
  }
  if (status === 403 || status === 404) return "forbidden";
  return "unavailable";
}

/** Read the CA file named by mirror.upstream.caFile (if any) for PrimaryCheckOptions.caPem. */
export function readCaFile(file: string | undefined): string | undefined {
  return file ? fs.readFileSync(file, "utf8") : undefined;
}

const MAX_BODY = 16 * 1024;

/**
 * The one way the daemon's HTTPS clients reach the primary: TLS always verified, against the
 * system roots plus the operator's CA (mirror.upstream.caFile). Node replaces its roots when
 * `ca` is given, so they are kept and the operator's CA added. Shared by the credential checks
 * here and the push proxy (sync/serve/push).
 */
export function primaryAgent(o: { caPem?: string; maxSockets?: number; keepAlive?: boolean }): https.Agent {
  return new https.Agent({
    keepAlive: o.keepAlive ?? true,
    maxSockets: o.maxSockets,
    ca: o.caPem ? [...tls.rootCertificates, o.caPem] : undefined,
    rejectUnauthorized: true,
  });
}

export class PrimaryRepoCheck {
  private readonly agent: https.Agent;
  private readonly timeoutMs: number;

  constructor(private readonly o: PrimaryCheckOptions) {
    const u = new URL(o.baseUrl);
    // Never send a user's password over plain HTTP (config validation says the same; this is the last line).
    if (u.protocol !== "https:") throw new Error(`the primary's URL must be https:// to check credentials against it, got ${o.baseUrl}`);
    this.timeoutMs = o.timeoutMs ?? 10_000;
    this.agent = primaryAgent({ caPem: o.caPem, maxSockets: o.maxSockets ?? 16 });
  }

  check(creds: Credentials, id: RepoId): Promise<CheckResult> {
    return new Promise((resolve) => {
      let settled = false;
      const done = (r: CheckResult) => {
        if (!settled) {
          settled = true;
          resolve(r);
        }
      };
      const req = https.request(
        repoResourceUrl(this.o.baseUrl, id),
        { method: "GET", agent: this.agent, headers: { Authorization: authorizationHeader(creds), Accept: "application/json", "User-Agent": "smart-mirror-auth" } },
        (res: IncomingMessage) => {
          const status = res.statusCode ?? 0;
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => {
            if (body.length < MAX_BODY) body += c.slice(0, MAX_BODY - body.length);
          });
          res.on("end", () => done({ verdict: verdictFor(status, body), status }));
          res.on("error", (e) => done({ verdict: "unavailable", status, error: e.message }));
        },
      );
      req.setTimeout(this.timeoutMs, () => req.destroy(new Error(`no answer from the primary within ${this.timeoutMs} ms`)));
      req.on("error", (e) => done({ verdict: "unavailable", error: e.message }));
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
