/**
 * Execution of an admitted Git request (admission.ts): a slot (bounded concurrent
 * upload-packs), then git upload-pack, either relayed through the daemon (exchange.ts) or with
 * the client's socket as its stdout (handOff.ts), or the answer from the pack cache
 * (packCache.ts), which starts such a run itself on a miss. Every way ends in record.served.
 */
import type { Socket } from "node:net";
import type { Readable, Transform } from "node:stream";
import type { PackCacheScope } from "../../config/schema";
import { packBytes } from "../../store/packFiles";
import type { RequestContext } from "../http";
import { Admitted, bodyStages, WholeBody } from "./admission";
import { replay } from "./bufferedBody";
import { exchange, ExchangeOutcome } from "./exchange";
import { handOff } from "./handOff";
import { cacheKey, cachesTheRequest, PackCache, refStateToken } from "./packCache";
import type { RequestSummary } from "./pktSniffer";
import { advertisementPreamble, CONTENT_TYPES } from "./protocol";
import type { GitRecord } from "./record";
import { busyMessage, sendText } from "./replies";
import { refusalMessage, refusedByGit } from "./requestCheck";
import { Slots } from "./slots";
import { TransferGuard, TransferLimits } from "./transferGuard";
import { spawnUploadPack, uploadPackEnv } from "./uploadPack";

export interface ExecutionDeps {
  slots: Slots;
  maxRequestBytes: number;
  idleTimeoutMs: number;
  gitBinary: string;
  gitEnv: NodeJS.ProcessEnv;
  /** Share upload-pack runs between identical requests (packCache.ts); undefined: every request runs git. */
  packCache?: PackCache;
  /** Which requests go through the pack cache: see mirror.serve.packCacheScope. */
  packCacheScope: PackCacheScope;
  /** Minimum rate (while others wait) and total time of a transfer holding a slot. */
  transferLimits: TransferLimits;
}

/** A POST whose answer carries a pack (a fetch with wants), not a ref listing or object info. */
function asksForPack(summary: RequestSummary | undefined): boolean {
  return summary !== undefined && summary.wants > 0;
}

export function execute(d: ExecutionDeps, ctx: RequestContext, a: Admitted, record: GitRecord): Promise<void> {
  const { res } = ctx;
  const { served, service, advertise, protocol } = a;
  const headers = { "Content-Type": advertise ? CONTENT_TYPES.advertisement(service) : CONTENT_TYPES.result(service), "Cache-Control": "no-cache" };
  const prefix = advertise ? advertisementPreamble(service, protocol.version) : undefined;
  const env = uploadPackEnv(d.gitEnv, protocol.env);
  const spawnGit = (stdout?: Socket) => spawnUploadPack({ dir: served.dir, advertise, env, gitBinary: d.gitBinary, stdout });
  const busy = () => {
    record.note("warn", { running: d.slots.running, waiting: d.slots.waiting }, "git request refused: all upload-pack slots busy");
    record.reply(503, busyMessage(), { "Retry-After": "10" });
  };

  /** Run git for this request alone, in a slot. */
  const inSlot = async (run: (guard: TransferGuard) => Promise<{ outcome: ExchangeOutcome; summary?: RequestSummary }>): Promise<void> => {
    const gone = new AbortController();
    const onGone = () => gone.abort();
    res.once("close", onGone);
    const release = await d.slots.acquire(gone.signal, record.client);
    res.off("close", onGone);
    if (!release) {
      if (res.destroyed) return;
      return busy();
    }
    try {
      // Slow while another client waits for a slot, or too long in all: cut (transferGuard.ts).
      const { outcome, summary } = await run(new TransferGuard(d.transferLimits, () => d.slots.othersWaiting(record.client)));
      record.served({ ...outcome, summary });
    } finally {
      release();
    }
  };

  /**
   * git upload-pack relayed through the daemon (exchange.ts). A POST's body is either a stream
   * still to be decoded on its way to git, or one admission already decoded whole.
   */
  const relayed = (body: WholeBody | { stream: Readable } | undefined): Promise<void> =>
    inSlot(async (guard) => {
      if (body && "input" in body) return { outcome: await relay({ req: replay([body.input]), stages: [] }, guard), summary: body.summary };
      const decoding = body ? bodyStages(a.encoding, d.maxRequestBytes) : undefined;
      const outcome = await relay(body && decoding ? { req: body.stream, stages: decoding.stages } : undefined, guard);
      return { outcome, summary: decoding?.sniffer.summary };
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

  /** Through the pack cache (the whole body is part of the key). */
  const fromCache = async (cache: PackCache, state: string, body: WholeBody | undefined): Promise<void> => {
    const summary = body?.summary;
    const k = cacheKey({ repoDir: served.dir, state, endpoint: a.endpoint, protocol: protocol.env ?? "", body: body?.input ?? Buffer.alloc(0) });
    const cached = await cache.serve(k, res, {
      headers,
      prefix,
      input: body?.input,
      idleTimeoutMs: d.idleTimeoutMs,
      start: async (signal) => {
        const release = await d.slots.acquire(signal, record.client);
        return release ? { child: spawnGit(), release } : undefined;
      },
      stillValid: () => refStateToken(served.dir) === state,
      // A pack is coming: at most about what the repository holds.
      expectedBytes: asksForPack(summary) ? () => packBytes(served.dir) : undefined,
      fail: (f) => {
        if (f.kind === "busy") busy();
        else if (f.kind === "git" && refusedByGit(f.code ?? null, f.signal ?? null, f.stderr ?? "")) record.reply(400, refusalMessage(f.stderr ?? ""), { Connection: "close" });
        else if (f.kind !== "abandoned") record.reply(500, "git upload-pack failed on the mirror (see the mirror's log)", { Connection: "close" });
      },
    });
    if (cached.result === "bypass") return body ? direct(body) : relayed(undefined);
    const f = cached.failure;
    const refused = f?.kind === "git" && refusedByGit(f.code ?? null, f.signal ?? null, f.stderr ?? "");
    const result = cached.result === "ok" ? "ok" : cached.result === "aborted" ? "aborted" : refused ? "refused" : "failed";
    record.served({ result, bytes: cached.bytes, summary, cache: cached.outcome, failure: f?.kind, code: f?.code, signal: f?.signal, stderr: f?.stderr });
  };

  const cache = d.packCache;
  const cacheState = () => (cache?.enabled ? refStateToken(served.dir) : undefined);
  const body = a.body;
  if (body === undefined) {
    const state = cacheState();
    return cache && state !== undefined ? fromCache(cache, state, undefined) : relayed(undefined);
  }
  if ("stream" in body) return relayed(body);
  const state = cachesTheRequest(d.packCacheScope, body.summary) ? cacheState() : undefined;
  return cache && state !== undefined ? fromCache(cache, state, body) : direct(body);
}
