/**
 * Git smart HTTP under /scm/: clones and fetches (protocol v0, v1 and v2, shallow, partial)
 * served by `git upload-pack` from the mirror's bare repositories; pushes refused with the
 * primary's URL.
 *
 * Order of decisions, each answered before any later work is done:
 *   1. the path and method (gitPath.ts)            400/403/404/405, never a file from disk
 *   2. push (receive-pack)                         403 naming the primary's push URL, for any
 *                                                  well-formed name: says nothing about what exists
 *   3. credentials (unless auth=anonymous)         401 + WWW-Authenticate so git asks for them
 *   4. access to the repository                    404 when the primary says no, as for a
 *                                                  repository the mirror does not have (no leak);
 *                                                  503 when the primary cannot be asked
 *   5. the repository is served (catalog + disk)   404
 *   6. request body checks (POST)                  415 content type/encoding, 413 size; a body
 *                                                  up to MAX_WHOLE_RAW_BODY is read and decoded
 *                                                  whole here (400 not gzip, 413 too large)
 *   7. a slot (bounded concurrent upload-packs)    503 + Retry-After when none comes in time
 *   8. git upload-pack: for a POST that wants objects (read whole), with the client's socket
 *      as git's stdout (handOff.ts: the pack never passes through the daemon); for info/refs,
 *      ls-refs and bodies too big to hold, relayed through the daemon (exchange.ts)
 * With the pack cache on (packCache.ts, the default), a repository the daemon synced (it has a
 * ref-state fingerprint) and a request in the cache's scope (cachesTheRequest: by default ref
 * advertisements, ls-refs and clones), steps 7-8 become: key the request (the whole body is
 * part of the key), and stream the answer from the cache, from a run another identical
 * request started, or from a new run (which takes a slot).
 * Step 4 runs before 5 so that with credentials, too, "not on the mirror" and "not yours" look
 * the same: the primary is asked about the name as typed when the mirror does not have it.
 */
import { createGunzip } from "node:zlib";
import type { Socket } from "node:net";
import type { Readable, Transform } from "node:stream";
import type { Authorizer } from "../../auth/authorizer";
import type { PackCacheScope } from "../../config/schema";
import type { Handler, Log, RequestContext } from "../http";
import { decode, DecodedTooLarge, readUpTo, replay } from "./bufferedBody";
import { ByteLimit, RequestTooLarge } from "./byteLimit";
import { exchange, ExchangeOutcome } from "./exchange";
import { handOff } from "./handOff";
import { Endpoint, GitMetrics } from "./gitMetrics";
import { parseGitRequest } from "./gitPath";
import { packBytes } from "../../store/packFiles";
import { cacheKey, cachesTheRequest, PackCache, refStateToken } from "./packCache";
import { PktSniffer, RequestSummary, classify } from "./pktSniffer";
import { advertisementPreamble, CONTENT_TYPES, parseGitProtocol } from "./protocol";
import { authRequiredMessage, busyMessage, notFoundMessage, pushRefusedMessage, REALM, sendText, throttledMessage, unavailableMessage } from "./replies";
import { clientAddress } from "../clientAddress";
import type { BodyBudget } from "../bodyBudget";
import { TransferGuard, TransferLimits } from "./transferGuard";
import { framingProblem, refusalMessage, refusedByGit, stderrForLog } from "./requestCheck";
import type { RepoResolver } from "./resolver";
import { Slots } from "./slots";
import { spawnUploadPack, uploadPackEnv } from "./uploadPack";

export interface GitHandlerDeps {
  resolve: RepoResolver;
  authorizer: Authorizer;
  /** The primary's https base URL (push refusals name it). */
  primaryUrl: string;
  slots: Slots;
  metrics: GitMetrics;
  log: Log;
  maxRequestBytes: number;
  idleTimeoutMs: number;
  gitBinary: string;
  gitEnv: NodeJS.ProcessEnv;
  /** Share upload-pack runs between identical requests (packCache.ts); undefined: every request runs git. */
  packCache?: PackCache;
  /** Which requests go through the pack cache: see mirror.serve.packCacheScope. */
  packCacheScope: PackCacheScope;
  /** Bytes of request bodies held at once, across requests (bodyBudget.ts). */
  bodyBudget: BodyBudget;
  /** A request body idle this long is answered 408. */
  bodyIdleMs: number;
  /** Minimum rate (while others wait) and total time of a transfer holding a slot. */
  transferLimits: TransferLimits;
}

/** Bodies read whole before git starts (raw, and decoded); bigger ones stream to git, relayed and uncached. */
export const MAX_WHOLE_RAW_BODY = 1024 * 1024;
export const MAX_WHOLE_DECODED_BODY = 8 * 1024 * 1024;

/** What readBody holds of a POST: the decoded bytes, and what the sniffer saw. */
interface WholeBody {
  input: Buffer;
  summary: RequestSummary | undefined;
}

const NO_CACHE = { "Cache-Control": "no-cache" };

/** A POST whose answer carries a pack (a fetch with wants), not a ref listing or object info. */
function asksForPack(summary: RequestSummary | undefined): boolean {
  return summary !== undefined && summary.wants > 0;
}

export function gitHandler(d: GitHandlerDeps): Handler {
  return async (ctx: RequestContext) => {
    const { req, res, requestId } = ctx;
    const method = (req.method ?? "GET").toUpperCase();
    const t0 = Date.now();
    let endpoint: Endpoint = "invalid";
    const reply = (status: number, message: string, headers: Record<string, string> = {}) => {
      d.metrics.request(endpoint, status);
      // An unread request body is not worth reading: close after the answer instead.
      sendText(res, status, message, method === "POST" ? { ...headers, Connection: "close" } : headers);
    };

    const parsed = parseGitRequest(method, req.url ?? "/");
    if (!parsed.ok) return reply(parsed.status, parsed.message, parsed.allow ? { Allow: parsed.allow } : {});
    const { repo, service } = parsed;
    endpoint = service === "git-receive-pack" ? "receive_pack" : parsed.endpoint === "info-refs" ? "info_refs" : "upload_pack";

    if (service === "git-receive-pack") {
      d.log.info({ requestId, repo: `${repo.project}/${repo.slug}` }, "push refused (read-only mirror)");
      return reply(403, pushRefusedMessage(d.primaryUrl, repo));
    }

    const served = d.resolve(repo.project, repo.slug);
    const client = clientAddress(req);
    const auth = await d.authorizer.authorize(req.headers.authorization, served ?? repo, client);
    d.metrics.auth(d.authorizer.mode, auth);
    const key = `${served?.project ?? repo.project}/${repo.slug}`;
    if (!auth.allowed) {
      d.log.info({ requestId, repo: key, principal: auth.principal, reason: auth.reason }, "git request denied");
      switch (auth.reason) {
        case "no_credentials":
        case "bad_credentials":
          return reply(401, authRequiredMessage(d.authorizer.mode === "tokens" ? "tokens" : "primary"), { "WWW-Authenticate": `Basic realm="${REALM}", charset="UTF-8"` });
        case "forbidden":
          return reply(404, notFoundMessage());
        case "unavailable":
          return reply(503, unavailableMessage(d.primaryUrl), { "Retry-After": "30" });
        case "throttled":
          return reply(429, throttledMessage(), { "Retry-After": String(Math.max(1, auth.retryAfterSeconds ?? 30)) });
      }
    }
    if (!served) return reply(404, notFoundMessage());
    if (res.destroyed) return; // the client left while we asked the primary

    const protocol = parseGitProtocol(req.headers["git-protocol"]);
    const advertise = parsed.endpoint === "info-refs";
    if (advertise && method === "HEAD") {
      d.metrics.request(endpoint, 200);
      res.writeHead(200, { "Content-Type": CONTENT_TYPES.advertisement(service), ...NO_CACHE });
      return void res.end();
    }

    const encoding = (req.headers["content-encoding"] ?? "identity").trim().toLowerCase();
    if (!advertise) {
      const type = (req.headers["content-type"] ?? "").trim().toLowerCase();
      if (type !== CONTENT_TYPES.request(service)) return reply(415, `Expected POST with Content-Type '${CONTENT_TYPES.request(service)}'`);
      if (!["identity", "gzip", "x-gzip"].includes(encoding)) return reply(415, `unsupported Content-Encoding '${encoding}'`);
      const declared = Number(req.headers["content-length"] ?? 0);
      if (declared > d.maxRequestBytes) return reply(413, `request body larger than ${d.maxRequestBytes} bytes`);
    }
    // The request body on its way to git: the limit counts decoded bytes, since a small gzip body
    // may inflate to gigabytes; that bounds the raw bytes too (gzip adds at most a few bytes per
    // 64 KiB to stored data).
    const bodyStages = (): { stages: Transform[]; sniffer: PktSniffer } => {
      const sniffer = new PktSniffer();
      return { sniffer, stages: [...(encoding === "identity" ? [] : [createGunzip()]), new ByteLimit(d.maxRequestBytes), sniffer] };
    };
    const headers = { "Content-Type": advertise ? CONTENT_TYPES.advertisement(service) : CONTENT_TYPES.result(service), ...NO_CACHE };
    const prefix = advertise ? advertisementPreamble(service, protocol.version) : undefined;
    const env = uploadPackEnv(d.gitEnv, protocol.env);
    const spawnGit = (stdout?: Socket) => spawnUploadPack({ dir: served.dir, advertise, env, gitBinary: d.gitBinary, stdout });
    const logFields = (summary: RequestSummary | undefined) => ({
      requestId,
      repo: key,
      principal: auth.principal,
      endpoint,
      kind: summary ? classify(summary) : undefined,
      protocol: protocol.version,
      shallow: summary?.shallow || undefined,
      filter: summary?.filter || undefined,
      ms: Date.now() - t0,
    });
    const overBudget = () => {
      d.bodyBudget.refused();
      d.log.warn({ requestId, repo: key, held: d.bodyBudget.held }, "git request refused: request-body budget spent");
      return reply(503, busyMessage(), { "Retry-After": "5" });
    };
    const busy = () => {
      d.log.warn({ requestId, repo: key, running: d.slots.running, waiting: d.slots.waiting }, "git request refused: all upload-pack slots busy");
      return reply(503, busyMessage(), { "Retry-After": "10" });
    };

    /** Run git for this request alone, in a slot; log and count what happened. */
    const inSlot = async (run: (guard: TransferGuard) => Promise<{ outcome: ExchangeOutcome; summary?: RequestSummary }>): Promise<void> => {
      const gone = new AbortController();
      const onGone = () => gone.abort();
      res.once("close", onGone);
      const release = await d.slots.acquire(gone.signal, client);
      res.off("close", onGone);
      if (!release) {
        if (res.destroyed) return;
        return busy();
      }
      try {
        // Slow while another client waits for a slot, or too long in all: cut (transferGuard.ts).
        const { outcome, summary } = await run(new TransferGuard(d.transferLimits, () => d.slots.othersWaiting(client)));
        d.metrics.sentBytes(endpoint, outcome.bytes);
        d.metrics.request(endpoint, outcome.result === "aborted" ? 499 : res.statusCode);
        const kind = summary ? classify(summary) : undefined;
        if (kind) d.metrics.uploadPack(kind, protocol.version, outcome.result);
        const fields = {
          ...logFields(summary),
          result: outcome.result,
          bytes: outcome.bytes,
          signal: outcome.signal ?? undefined, // SIGKILL: we stopped it (client gone, idle, bad body)
        };
        if (outcome.result === "ok" || outcome.result === "aborted") d.log.info(fields, "git upload-pack");
        // git echoes the client's bytes: bounded, printable.
        else if (outcome.result === "refused") d.log.info({ ...fields, stderr: stderrForLog(outcome.stderr) }, "git upload-pack refused the request");
        else if (outcome.result === "too_slow") d.log.info({ ...fields, client, limits: d.transferLimits }, "git upload-pack cut: slower than the minimum rate while others waited");
        else d.log.warn({ ...fields, code: outcome.code, stderr: stderrForLog(outcome.stderr) }, "git upload-pack failed");
      } finally {
        release();
      }
    };

    /**
     * git upload-pack relayed through the daemon (exchange.ts). A POST's body is either a stream
     * still to be decoded on its way to git, or one readBody already decoded whole.
     */
    const relayed = (source: Readable | WholeBody | undefined): Promise<void> =>
      inSlot(async (guard) => {
        if (source && "input" in source) {
          const outcome = await relay({ req: replay([source.input]), stages: [] }, guard);
          return { outcome, summary: source.summary };
        }
        const body = source ? bodyStages() : undefined;
        const outcome = await relay(source && body ? { req: source, stages: body.stages } : undefined, guard);
        return { outcome, summary: body?.sniffer.summary };
      });
    const relay = (body: { req: Readable; stages: Transform[] } | undefined, guard: TransferGuard) =>
      exchange({ child: spawnGit(), res, headers, prefix, body, idleTimeoutMs: d.idleTimeoutMs, guard, fail: (status, message, h) => sendText(res, status, message, h) });

    /**
     * A POST read whole first. One that asks for a pack: git writes its answer straight into the
     * socket (handOff.ts). Anything else (ls-refs, object-info): a small answer, relayed, so the
     * connection stays open for the next request (a hand-off has to close it).
     */
    const direct = (body: WholeBody): Promise<void> =>
      asksForPack(body.summary)
        ? inSlot(async (guard) => ({
            outcome: await handOff({ res, headers, input: body.input, idleTimeoutMs: d.idleTimeoutMs, guard, spawn: (stdout) => spawnGit(stdout) }),
            summary: body.summary,
          }))
        : relayed(body);

    /**
     * The POST body, read whole and decoded when small (a clone's and most fetches' are a few KB
     * of want/have lines), so a bad one gets its 400/413 before any 200 goes out. `stream`: too
     * big to hold, to be streamed from where reading stopped; undefined: answered or gone.
     */
    const readBody = async (): Promise<WholeBody | { stream: Readable } | undefined> => {
      // Held bytes count against the daemon-wide budget until the answer is done.
      const reservation = d.bodyBudget.reserve();
      res.once("close", () => reservation.release());
      const raw = await readUpTo(req, MAX_WHOLE_RAW_BODY, { reservation, idleMs: d.bodyIdleMs });
      if (!raw.complete) {
        if ("overBudget" in raw) return void overBudget();
        if ("timedOut" in raw) return void reply(408, `no part of the request body came for ${Math.round(d.bodyIdleMs / 1000)} s`);
        return "aborted" in raw ? undefined : { stream: replay(raw.head, req) };
      }
      const body = bodyStages();
      try {
        const input = await decode(raw.raw, body.stages, MAX_WHOLE_DECODED_BODY);
        if (!reservation.ensure(input.length)) return void overBudget();
        // Not pkt-lines at all: the client's fault, told before git (and a slot) is spent on it.
        const problem = framingProblem(input);
        if (problem !== undefined) {
          d.log.info({ requestId, repo: key, endpoint, problem }, "git request refused: malformed upload-pack request");
          return void reply(400, `malformed upload-pack request: ${problem}`);
        }
        return { input, summary: body.sniffer.summary };
      } catch (e) {
        if (e instanceof RequestTooLarge) return void reply(413, e.message);
        if (e instanceof DecodedTooLarge) return { stream: replay([raw.raw]) };
        return void reply(400, "the request body is not valid gzip");
      }
    };

    /** Through the pack cache (the whole body is part of the key). */
    const fromCache = async (cache: PackCache, state: string, body: WholeBody | undefined): Promise<void> => {
      const summary = body?.summary;
      const kind = summary ? classify(summary) : undefined;
      const k = cacheKey({ repoDir: served.dir, state, endpoint: parsed.endpoint, protocol: protocol.env ?? "", body: body?.input ?? Buffer.alloc(0) });
      const cached = await cache.serve(k, res, {
        headers,
        prefix,
        input: body?.input,
        idleTimeoutMs: d.idleTimeoutMs,
        start: async (signal) => {
          const release = await d.slots.acquire(signal, client);
          return release ? { child: spawnGit(), release } : undefined;
        },
        stillValid: () => refStateToken(served.dir) === state,
        // A pack is coming: at most about what the repository holds.
        expectedBytes: asksForPack(summary) ? () => packBytes(served.dir) : undefined,
        fail: (f) => {
          if (f.kind === "busy") busy();
          else if (f.kind === "git" && refusedByGit(f.code ?? null, f.signal ?? null, f.stderr ?? "")) reply(400, refusalMessage(f.stderr ?? ""), { Connection: "close" });
          else if (f.kind !== "abandoned") reply(500, "git upload-pack failed on the mirror (see the mirror's log)", { Connection: "close" });
        },
      });
      if (cached.result === "bypass") return body ? direct(body) : relayed(undefined);
      d.metrics.sentBytes(endpoint, cached.bytes);
      if (cached.result === "aborted") d.metrics.request(endpoint, 499);
      else if (cached.result === "ok" || res.headersSent) d.metrics.request(endpoint, res.statusCode);
      const refused = cached.failure?.kind === "git" && refusedByGit(cached.failure.code ?? null, cached.failure.signal ?? null, cached.failure.stderr ?? "");
      const result = cached.result === "ok" ? "ok" : cached.result === "aborted" ? "aborted" : refused ? "refused" : "failed";
      if (kind) d.metrics.uploadPack(kind, protocol.version, result);
      const fields = { ...logFields(summary), cache: cached.outcome, result, bytes: cached.bytes };
      if (result !== "failed") d.log.info(fields, "git upload-pack");
      else d.log.warn({ ...fields, failure: cached.failure?.kind, code: cached.failure?.code, stderr: stderrForLog(cached.failure?.stderr ?? "") }, "git upload-pack failed");
    };

    const cache = d.packCache;
    const cacheState = () => (cache?.enabled ? refStateToken(served.dir) : undefined);
    if (advertise) {
      const state = cacheState();
      return cache && state !== undefined ? fromCache(cache, state, undefined) : relayed(undefined);
    }
    const body = await readBody();
    if (body === undefined) return;
    if ("stream" in body) return relayed(body.stream);
    const state = cachesTheRequest(d.packCacheScope, body.summary) ? cacheState() : undefined;
    return cache && state !== undefined ? fromCache(cache, state, body) : direct(body);
  };
}

