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
 *   6. request body checks (POST)                  415 content type/encoding, 413 size
 *   7. a slot (bounded concurrent upload-packs)    503 + Retry-After when none comes in time
 *   8. git upload-pack, streamed (exchange.ts)
 * Step 4 runs before 5 so that with credentials, too, "not on the mirror" and "not yours" look
 * the same: the primary is asked about the name as typed when the mirror does not have it.
 */
import { createGunzip } from "node:zlib";
import type { Transform } from "node:stream";
import type { Authorizer } from "../../auth/authorizer";
import type { Handler, Log, RequestContext } from "../router";
import { ByteLimit } from "./byteLimit";
import { exchange } from "./exchange";
import { Endpoint, GitMetrics } from "./gitMetrics";
import { parseGitRequest } from "./gitPath";
import { PktSniffer, classify } from "./pktSniffer";
import { advertisementPreamble, CONTENT_TYPES, parseGitProtocol } from "./protocol";
import { authRequiredMessage, busyMessage, notFoundMessage, pushRefusedMessage, REALM, sendText, unavailableMessage } from "./replies";
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
}

const NO_CACHE = { "Cache-Control": "no-cache" };

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
    const auth = await d.authorizer.authorize(req.headers.authorization, served ?? repo);
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

    let stages: Transform[] = [];
    let sniffer: PktSniffer | undefined;
    if (!advertise) {
      const type = (req.headers["content-type"] ?? "").trim().toLowerCase();
      if (type !== CONTENT_TYPES.request(service)) return reply(415, `Expected POST with Content-Type '${CONTENT_TYPES.request(service)}'`);
      const encoding = (req.headers["content-encoding"] ?? "identity").trim().toLowerCase();
      if (!["identity", "gzip", "x-gzip"].includes(encoding)) return reply(415, `unsupported Content-Encoding '${encoding}'`);
      const declared = Number(req.headers["content-length"] ?? 0);
      if (declared > d.maxRequestBytes) return reply(413, `request body larger than ${d.maxRequestBytes} bytes`);
      sniffer = new PktSniffer();
      // The limit counts decoded bytes, since a small gzip body may inflate to gigabytes; that
      // bounds the raw bytes too (gzip adds at most a few bytes per 64 KiB to stored data).
      stages = [...(encoding === "identity" ? [] : [createGunzip()]), new ByteLimit(d.maxRequestBytes), sniffer];
    }

    const gone = new AbortController();
    const onGone = () => gone.abort();
    res.once("close", onGone);
    const release = await d.slots.acquire(gone.signal);
    res.off("close", onGone);
    if (!release) {
      if (res.destroyed) return;
      d.log.warn({ requestId, repo: key, running: d.slots.running, waiting: d.slots.waiting }, "git request refused: all upload-pack slots busy");
      return reply(503, busyMessage(), { "Retry-After": "10" });
    }

    try {
      const child = spawnUploadPack({ dir: served.dir, advertise, env: uploadPackEnv(d.gitEnv, protocol.env), gitBinary: d.gitBinary });
      const outcome = await exchange({
        child,
        res,
        headers: { "Content-Type": advertise ? CONTENT_TYPES.advertisement(service) : CONTENT_TYPES.result(service), ...NO_CACHE },
        prefix: advertise ? advertisementPreamble(service, protocol.version) : undefined,
        body: advertise ? undefined : { req, stages },
        idleTimeoutMs: d.idleTimeoutMs,
        fail: (status, message, headers) => sendText(res, status, message, headers),
      });
      d.metrics.sentBytes(endpoint, outcome.bytes);
      d.metrics.request(endpoint, outcome.result === "aborted" ? 499 : res.statusCode);
      const kind = sniffer ? classify(sniffer.summary) : undefined;
      if (kind) d.metrics.uploadPack(kind, protocol.version, outcome.result);
      const fields = {
        requestId,
        repo: key,
        principal: auth.principal,
        endpoint,
        kind,
        protocol: protocol.version,
        shallow: sniffer?.summary.shallow || undefined,
        filter: sniffer?.summary.filter || undefined,
        result: outcome.result,
        bytes: outcome.bytes,
        ms: Date.now() - t0,
        signal: outcome.signal ?? undefined, // SIGKILL: we stopped it (client gone, idle, bad body)
      };
      if (outcome.result === "ok" || outcome.result === "aborted") d.log.info(fields, "git upload-pack");
      else d.log.warn({ ...fields, code: outcome.code, stderr: outcome.stderr.trim() }, "git upload-pack failed");
    } finally {
      release();
    }
  };
}
