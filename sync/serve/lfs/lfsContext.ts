/**
 * What every LFS route shares: its dependencies, the admission of a request (the clones'
 * per-repository authorization, answered in LFS's JSON form), and the JSON answer writer.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Authorizer } from "../../auth/authorizer";
import { Credentials, parseAuthorization } from "../../auth/credentials";
import type { RepoId } from "../../types";
import { clientAddress } from "../clientAddress";
import { authRequiredMessage, notFoundMessage, REALM, throttledMessage, unavailableMessage } from "../git/replies";
import type { RepoResolver } from "../git/resolver";
import type { Log } from "../http";
import { LFS_MEDIA_TYPE } from "./lfsPath";
import type { LfsMetrics } from "./lfsMetrics";
import type { LfsStore } from "./lfsStore";
import type { UpstreamLfs } from "./upstreamLfs";
import type { BodyBudget } from "../bodyBudget";
import { BodyOverBudget, BodyTimedOut, BodyTooLarge, readBody } from "../readBody";

export interface LfsDeps {
  resolve: RepoResolver;
  authorizer: Authorizer;
  store: LfsStore;
  upstream: UpstreamLfs;
  metrics: LfsMetrics;
  log: Log;
  /** The primary's base URL (named in messages). */
  primaryUrl: string;
  /** The mirror's public base URL (setup.baseUrl): hrefs use it when no proxy headers say otherwise. */
  baseUrl: string;
  /** Largest object the mirror fetches and stores; 0 = no limit. */
  maxObjectBytes: number;
  /** Whether `bytes` more fit on the data volume above mirror.disk.minFreeMb. */
  diskRoom(bytes: number): boolean;
  /**
   * Credentials for the primary's LFS endpoint when fetching for this client: in auth=primary
   * the client's own; otherwise the mirror's catalog token, if any.
   */
  upstreamCredentials(client: Credentials | undefined): Credentials | undefined;
  /** The mirror's own upstream credentials (the catalog token), for fetches without a client (prefetch). */
  serviceCredentials: Credentials | undefined;
  /** Uploads and locks are relayed with the client's own credentials: only when they are the primary's (auth=primary). */
  relayWrites: boolean;
  /** Client bodies (batch, verify, locks) are held through the daemon-wide budget, with its idle timeout. */
  bodyBudget?: BodyBudget;
  bodyIdleMs?: number;
}

export interface LfsAdmitted {
  /** As the catalog spells it. */
  repo: RepoId;
  /** The client's parsed credentials, if any (the Authorization header the mirror hands back in actions). */
  creds: Credentials | undefined;
  principal?: string;
}

export function sendLfs(res: ServerResponse, status: number, body: Record<string, unknown>, headers: Record<string, string> = {}): void {
  if (res.headersSent) return void res.destroy();
  const text = JSON.stringify(body) + "\n";
  res.writeHead(status, { "Content-Type": LFS_MEDIA_TYPE, "Content-Length": Buffer.byteLength(text), "Cache-Control": "no-store", ...headers });
  res.end(text);
}

/** An LFS error body (batch.md "Response Errors"): message and the request id. */
export function lfsError(res: ServerResponse, requestId: string, status: number, message: string, headers: Record<string, string> = {}): void {
  sendLfs(res, status, { message, request_id: requestId }, headers);
}

/**
 * A client's small JSON body (batch, verify, locks), read as the webhook's and the Git routes'
 * bodies are (serve/readBody.ts): within `limit`, reserved in the daemon-wide body budget, given
 * up when idle. Answers 413, 503 (budget spent) or 408, or drops a client that went away, and
 * returns undefined.
 */
export async function readClientBody(d: LfsDeps, req: IncomingMessage, res: ServerResponse, requestId: string, limit: number): Promise<Buffer | undefined> {
  const reservation = d.bodyBudget?.reserve();
  if (reservation) res.once("close", () => reservation.release());
  try {
    return await readBody(req, limit, { reservation, idleMs: d.bodyIdleMs });
  } catch (e) {
    if (e instanceof BodyTooLarge) lfsError(res, requestId, 413, e.message, { Connection: "close" });
    else if (e instanceof BodyOverBudget) {
      d.bodyBudget?.refused();
      lfsError(res, requestId, 503, "the mirror is receiving too many request bodies; retry shortly", { Connection: "close", "Retry-After": "5" });
    } else if (e instanceof BodyTimedOut) lfsError(res, requestId, 408, e.message, { Connection: "close" });
    else res.destroy();
    return undefined;
  }
}

/**
 * The same decisions, in the same order, as a clone's (git/admission.ts steps 3-5): credentials,
 * access to the repository (asked of the primary in auth=primary, remembered), served. Answers
 * a refusal and returns undefined.
 */
export async function admitLfs(d: LfsDeps, req: IncomingMessage, res: ServerResponse, requestId: string, repo: RepoId): Promise<LfsAdmitted | undefined> {
  const served = d.resolve(repo.project, repo.slug);
  const auth = await d.authorizer.authorize(req.headers.authorization, served ?? repo, clientAddress(req));
  if (!auth.allowed) {
    d.log.info({ requestId, repo: `${repo.project}/${repo.slug}`, principal: auth.principal, reason: auth.reason }, "lfs request denied");
    switch (auth.reason) {
      case "no_credentials":
      case "bad_credentials": {
        // git-lfs reads LFS-Authenticate (batch.md); WWW-Authenticate too for other clients.
        const challenge = `Basic realm="${REALM}", charset="UTF-8"`;
        lfsError(res, requestId, 401, authRequiredMessage(d.authorizer.mode === "tokens" ? "tokens" : "primary"), { "LFS-Authenticate": challenge, "WWW-Authenticate": challenge });
        return undefined;
      }
      case "forbidden":
        return void lfsError(res, requestId, 404, notFoundMessage());
      case "unavailable":
        return void lfsError(res, requestId, 503, unavailableMessage(d.primaryUrl), { "Retry-After": "30" });
      case "throttled":
        return void lfsError(res, requestId, 429, throttledMessage(), { "Retry-After": String(Math.max(1, auth.retryAfterSeconds ?? 30)) });
    }
  }
  if (!served) return void lfsError(res, requestId, 404, notFoundMessage());
  const c = parseAuthorization(req.headers.authorization);
  return { repo: { project: served.project, slug: served.slug }, creds: c === undefined || c === "malformed" ? undefined : c, principal: auth.principal };
}

const HOST_RE = /^[A-Za-z0-9.-]{1,253}$/;

/**
 * The mirror's own base URL for action hrefs, as the client reached it: behind the rendered
 * nginx site the X-Forwarded-Host/-Port headers (set there from nginx's own variables, never
 * the client's) say which name and port; else setup.baseUrl. Pure.
 */
export function publicBase(headers: IncomingMessage["headers"], fallback: string): string {
  const host = headers["x-forwarded-host"];
  const port = headers["x-forwarded-port"];
  const proto = headers["x-forwarded-proto"];
  if (typeof host !== "string" || !HOST_RE.test(host) || proto !== "https") return fallback.replace(/\/+$/, "");
  const p = typeof port === "string" && /^\d{1,5}$/.test(port) && port !== "443" ? `:${port}` : "";
  return `https://${host}${p}`;
}
