/**
 * Admission of a Git request: every decision that can turn it down, in the order gitHandler.ts
 * lists (path, push, credentials, access, served, body checks), each answered before any later
 * work is done. What passes is an `Admitted` request: a repository on disk, the client's
 * protocol, and for a POST its body, read and decoded whole when small. No slot is taken and
 * no git runs here (execution.ts does that).
 */
import type { Readable, Transform } from "node:stream";
import { createGunzip } from "node:zlib";
import type { Authorizer } from "../../auth/authorizer";
import type { BodyBudget } from "../bodyBudget";
import type { RequestContext } from "../http";
import { decode, DecodedTooLarge, readUpTo, replay } from "./bufferedBody";
import { ByteLimit, RequestTooLarge } from "./byteLimit";
import { GitService, parseGitRequest } from "./gitPath";
import { PktSniffer, RequestSummary } from "./pktSniffer";
import { CONTENT_TYPES, GitProtocol, parseGitProtocol } from "./protocol";
import type { GitRecord } from "./record";
import { authRequiredMessage, busyMessage, notFoundMessage, pushRefusedMessage, REALM, throttledMessage, unavailableMessage } from "./replies";
import { framingProblem } from "./requestCheck";
import type { RepoResolver, ServedRepo } from "./resolver";
import type { PushProxy } from "../push/pushProxy";

export interface AdmissionDeps {
  resolve: RepoResolver;
  authorizer: Authorizer;
  /** The primary's https base URL (push refusals name it). */
  primaryUrl: string;
  maxRequestBytes: number;
  /** Bytes of request bodies held at once, across requests (bodyBudget.ts). */
  bodyBudget: BodyBudget;
  /** A request body idle this long is answered 408. */
  bodyIdleMs: number;
  /** mirror.push=proxy: pushes go to the primary (push/pushProxy.ts); without it they are refused. */
  push?: PushProxy;
}

/** Bodies read whole before git starts (raw, and decoded); bigger ones stream to git, relayed and uncached. */
export const MAX_WHOLE_RAW_BODY = 1024 * 1024;
export const MAX_WHOLE_DECODED_BODY = 8 * 1024 * 1024;

/** A POST's body read whole: the decoded bytes, and what the sniffer saw. */
export interface WholeBody {
  input: Buffer;
  summary: RequestSummary | undefined;
}

/** A request that passed every check: what execution needs to answer it. */
export interface Admitted {
  served: ServedRepo;
  service: GitService;
  /** info/refs (GET): a ref advertisement; else a POST to the service. */
  advertise: boolean;
  endpoint: "info-refs" | "rpc";
  protocol: GitProtocol;
  /** The POST body's Content-Encoding (identity, gzip, x-gzip). */
  encoding: string;
  /** A POST's body: whole, or (too big to hold) a stream from where reading stopped. */
  body: WholeBody | { stream: Readable } | undefined;
}

/**
 * The request body on its way to git: the limit counts decoded bytes, since a small gzip body
 * may inflate to gigabytes; that bounds the raw bytes too (gzip adds at most a few bytes per
 * 64 KiB to stored data).
 */
export function bodyStages(encoding: string, maxRequestBytes: number): { stages: Transform[]; sniffer: PktSniffer } {
  const sniffer = new PktSniffer();
  return { sniffer, stages: [...(encoding === "identity" ? [] : [createGunzip()]), new ByteLimit(maxRequestBytes), sniffer] };
}

/** Admit the request, or answer it (refusal, error, HEAD) and return undefined. */
export async function admit(d: AdmissionDeps, ctx: RequestContext, record: GitRecord): Promise<Admitted | undefined> {
  const { req, res } = ctx;
  const method = (req.method ?? "GET").toUpperCase();
  const parsed = parseGitRequest(method, req.url ?? "/");
  if (!parsed.ok) return void record.reply(parsed.status, parsed.message, parsed.allow ? { Allow: parsed.allow } : {});
  const { repo, service } = parsed;
  record.endpoint = service === "git-receive-pack" ? "receive_pack" : parsed.endpoint === "info-refs" ? "info_refs" : "upload_pack";
  record.repo = `${repo.project}/${repo.slug}`;

  if (service === "git-receive-pack") {
    // Forwarded before any of the mirror's own checks: the primary alone decides who may push.
    if (d.push) return void (await d.push.handle(ctx, repo, parsed.endpoint, record));
    record.note("info", {}, "push refused (read-only mirror)");
    return void record.reply(403, pushRefusedMessage(d.primaryUrl, repo));
  }

  const served = d.resolve(repo.project, repo.slug);
  const auth = await d.authorizer.authorize(req.headers.authorization, served ?? repo, record.client);
  record.authorized(d.authorizer.mode, auth);
  record.repo = `${served?.project ?? repo.project}/${repo.slug}`;
  if (!auth.allowed) {
    record.note("info", { principal: auth.principal, reason: auth.reason }, "git request denied");
    switch (auth.reason) {
      case "no_credentials":
      case "bad_credentials":
        return void record.reply(401, authRequiredMessage(d.authorizer.mode === "tokens" ? "tokens" : "primary"), { "WWW-Authenticate": `Basic realm="${REALM}", charset="UTF-8"` });
      case "forbidden":
        return void record.reply(404, notFoundMessage());
      case "unavailable":
        return void record.reply(503, unavailableMessage(d.primaryUrl), { "Retry-After": "30" });
      case "throttled":
        return void record.reply(429, throttledMessage(), { "Retry-After": String(Math.max(1, auth.retryAfterSeconds ?? 30)) });
    }
  }
  if (!served) return void record.reply(404, notFoundMessage());
  if (res.destroyed) return; // the client left while we asked the primary

  const protocol = parseGitProtocol(req.headers["git-protocol"]);
  record.protocol = protocol.version;
  const advertise = parsed.endpoint === "info-refs";
  const encoding = (req.headers["content-encoding"] ?? "identity").trim().toLowerCase();
  const admitted = { served, service, advertise, endpoint: parsed.endpoint, protocol, encoding };
  if (advertise) {
    if (method !== "HEAD") return { ...admitted, body: undefined };
    record.count(200);
    res.writeHead(200, { "Content-Type": CONTENT_TYPES.advertisement(service), "Cache-Control": "no-cache" });
    return void res.end();
  }

  const type = (req.headers["content-type"] ?? "").trim().toLowerCase();
  if (type !== CONTENT_TYPES.request(service)) return void record.reply(415, `Expected POST with Content-Type '${CONTENT_TYPES.request(service)}'`);
  if (!["identity", "gzip", "x-gzip"].includes(encoding)) return void record.reply(415, `unsupported Content-Encoding '${encoding}'`);
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > d.maxRequestBytes) return void record.reply(413, `request body larger than ${d.maxRequestBytes} bytes`);
  const body = await readBody(d, ctx, record, encoding);
  return body && { ...admitted, body };
}

/**
 * The POST body, read whole and decoded when small (a clone's and most fetches' are a few KB
 * of want/have lines), so a bad one gets its 400/413 before any 200 goes out. `stream`: too
 * big to hold, to be streamed from where reading stopped; undefined: answered or gone.
 */
async function readBody(d: AdmissionDeps, ctx: RequestContext, record: GitRecord, encoding: string): Promise<WholeBody | { stream: Readable } | undefined> {
  const { req, res } = ctx;
  const overBudget = () => {
    d.bodyBudget.refused();
    record.note("warn", { held: d.bodyBudget.held }, "git request refused: request-body budget spent");
    record.reply(503, busyMessage(), { "Retry-After": "5" });
  };
  // Held bytes count against the daemon-wide budget until the answer is done.
  const reservation = d.bodyBudget.reserve();
  res.once("close", () => reservation.release());
  const raw = await readUpTo(req, MAX_WHOLE_RAW_BODY, { reservation, idleMs: d.bodyIdleMs });
  if (!raw.complete) {
    if ("overBudget" in raw) return void overBudget();
    if ("timedOut" in raw) return void record.reply(408, `no part of the request body came for ${Math.round(d.bodyIdleMs / 1000)} s`);
    return "aborted" in raw ? undefined : { stream: replay(raw.head, req) };
  }
  const body = bodyStages(encoding, d.maxRequestBytes);
  try {
    const input = await decode(raw.raw, body.stages, MAX_WHOLE_DECODED_BODY);
    if (!reservation.ensure(input.length)) return void overBudget();
    // Not pkt-lines at all: the client's fault, told before git (and a slot) is spent on it.
    const problem = framingProblem(input);
    if (problem !== undefined) {
      record.note("info", { endpoint: record.endpoint, problem }, "git request refused: malformed upload-pack request");
      return void record.reply(400, `malformed upload-pack request: ${problem}`);
    }
    return { input, summary: body.sniffer.summary };
  } catch (e) {
    if (e instanceof RequestTooLarge) return void record.reply(413, e.message);
    if (e instanceof DecodedTooLarge) return { stream: replay([raw.raw]) };
    return void record.reply(400, "the request body is not valid gzip");
  }
}
