/**
 * `git push` to the mirror, forwarded to the primary (mirror.push=proxy): one remote for
 * everything, the way a Bitbucket mirror (or a GitLab Geo secondary) takes pushes.
 *
 *   GET  /scm/P/r.git/info/refs?service=git-receive-pack  ->  <upstream>/scm/P/r.git/info/refs?service=git-receive-pack
 *   POST /scm/P/r.git/git-receive-pack                    ->  <upstream>/scm/P/r.git/git-receive-pack
 *
 * - Both directions stream (pipeline: backpressure end to end); the pack is never held, so a
 *   push of any size costs the daemon a few socket buffers.
 * - The client's Authorization header goes to the primary untouched and nowhere else (never
 *   logged, never stored, never used by the mirror): the primary alone decides who may push.
 *   Its answer is relayed as it is, status, WWW-Authenticate and body: git's credential prompt,
 *   hook output and rejections work as against the primary itself.
 * - TLS to the primary is verified with the system roots plus mirror.upstream.caFile
 *   (primaryAgent, as the credential checks do). Redirects are not followed.
 * - Read-your-writes: the push's commands are read as they pass (pushRequest.ts), the primary's
 *   report as it comes back (reportTap.ts). When it reports a ref updated, the mirror syncs the
 *   repository (the daemon's demand sync, coalesced with any running one, handed the pushed
 *   ref moves so it fetches exactly those tips) and holds back the answer's final flush-pkt
 *   until the mirror recorded those moves (or, when they are not known exactly, until a sync
 *   that started after the primary accepted has ended): `git push` returns only when a fetch
 *   from the mirror sees the push. The wait is
 *   bounded (mirror.serve.onDemandWait); past it the client reads "remote: smart-mirror: ...
 *   will catch up shortly" (side-band clients, i.e. every git since 1.7) and the push still
 *   succeeds. The mirror's copy changes only through that fetch, never from the pushed bytes.
 * - Primary down, unreachable or not verifying: 502 with a text body git prints, naming the
 *   primary's URL; nothing was pushed.
 */
import type { Agent } from "node:https";
import * as https from "node:https";
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from "node:http";
import { pipeline } from "node:stream";
import { Counter, Registry } from "prom-client";
import { primaryAgent } from "../../auth/primaryCheck";
import type { ChangeLike } from "../../daemon/refMoves";
import type { SyncResult } from "../../daemon/syncWaiters";
import type { RepoId } from "../../types";
import type { RequestContext } from "../http";
import type { GitRecord } from "../git/record";
import { catchUpNote, primaryRepoUrl, pushForwardFailedMessage } from "../git/replies";
import type { RepoResolver, ServedRepo } from "../git/resolver";
import { PushRequestSniffer, PushRequestSummary } from "./pushRequest";
import { accepted, PushReport, ReportTap } from "./reportTap";

export interface PushProxyOptions {
  /** plugin.mirroring.upstream.url (https; may carry a context path). */
  upstreamUrl: string;
  /** mirror.upstream.caFile's content, added to the system roots. */
  caPem?: string;
  /** (project, slug) -> the mirrored repository, if this mirror has it. */
  resolve: RepoResolver;
  /**
   * The daemon's demand sync, given the pushed ref moves (so it can fetch exactly those tips);
   * without it (tests of serving alone) nothing is waited for.
   */
  syncNow?: (repo: ServedRepo, changes?: readonly ChangeLike[]) => Promise<SyncResult>;
  /** Longest wait for the mirror to fetch an accepted push (0: do not wait). */
  waitMs: number;
  /** A connection to the primary idle this long is cut (default 10 min). */
  idleTimeoutMs?: number;
  registry?: Registry;
  /** Tests: an agent of their own. */
  agent?: Agent;
}

export const PUSH_METRIC_NAMES = { readYourWrites: "smart_mirror_push_read_your_writes_total" } as const;

export type ReadYourWrites = "synced" | "timeout" | "sync_failed" | "not_mirrored" | "not_accepted";

/** Request headers the primary gets: what git sends about the push, never hop-by-hop ones or Expect. */
const FORWARDED_REQUEST_HEADERS = ["authorization", "content-type", "content-encoding", "content-length", "git-protocol", "accept", "accept-language", "user-agent", "pragma"];
/** Response headers that describe the connection, not the answer (RFC 9110 7.6.1). */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"]);

/** The primary's headers for the client (pure): all but hop-by-hop ones, and no length when the body is re-framed. */
export function relayedHeaders(h: IncomingHttpHeaders, reframed: boolean): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || HOP_BY_HOP.has(k) || (reframed && k === "content-length")) continue;
    out[k] = v;
  }
  return out;
}

/** The client's headers for the primary (pure). */
export function forwardedHeaders(h: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const k of FORWARDED_REQUEST_HEADERS) if (h[k] !== undefined) out[k] = h[k];
  return out;
}

/** Why a request to the primary failed, in words for the user (never headers or credentials). */
export function describeFailure(e: NodeJS.ErrnoException): { why: string; tls: boolean } {
  const code = e.code ?? "";
  const tls = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|SSL/.test(code);
  const words: Record<string, string> = {
    ECONNREFUSED: "connection refused",
    ECONNRESET: "connection reset",
    ETIMEDOUT: "timed out",
    ENOTFOUND: "host not found",
    EAI_AGAIN: "host name lookup failed",
    EHOSTUNREACH: "host unreachable",
    ENETUNREACH: "network unreachable",
  };
  return { why: words[code] ?? (code ? `${code}: ${e.message}` : e.message), tls };
}

/**
 * The ref moves the primary applied (pure): the client's commands for the refs reported "ok".
 * Undefined when they are not all known (more commands than kept, no report): the sync then
 * scans the primary's refs as usual.
 */
export function pushedChanges(request: PushRequestSummary, report: PushReport): ChangeLike[] | undefined {
  if (!request.complete || report.unpack !== "ok" || report.ok.length === 0) return undefined;
  const byRef = new Map(request.commands.map((c) => [c.ref, c]));
  const changes: ChangeLike[] = [];
  for (const ref of report.ok) {
    const c = byRef.get(ref);
    if (!c) return undefined;
    changes.push({ refId: c.ref, fromHash: c.old, toHash: c.new });
  }
  return changes;
}

function within<T>(p: Promise<T>, ms: number): Promise<T | "timeout"> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), ms)))]).finally(() => clearTimeout(timer));
}

export class PushProxy {
  private readonly agent: Agent;
  private readonly counter?: Counter<"result">;

  constructor(private readonly o: PushProxyOptions) {
    if (new URL(o.upstreamUrl).protocol !== "https:") throw new Error(`pushes are forwarded only over https, got ${o.upstreamUrl}`);
    this.agent = o.agent ?? primaryAgent({ caPem: o.caPem, maxSockets: 64 });
    if (o.registry) {
      this.counter = new Counter({
        name: PUSH_METRIC_NAMES.readYourWrites,
        help: "Pushes forwarded to the primary, by what the mirror did after: synced (the push's answer waited for the mirror's fetch), timeout, sync_failed, not_mirrored, not_accepted",
        labelNames: ["result"],
        registers: [o.registry],
      });
    }
  }

  close(): void {
    this.agent.destroy();
  }

  /** Forward one receive-pack request (admission.ts calls this instead of refusing). */
  handle(ctx: RequestContext, repo: RepoId, endpoint: "info-refs" | "rpc", record: GitRecord): Promise<void> {
    const { req, res } = ctx;
    const served = this.o.resolve(repo.project, repo.slug);
    const name = served ?? repo;
    const target = `${primaryRepoUrl(this.o.upstreamUrl, name)}/${endpoint === "info-refs" ? "info/refs?service=git-receive-pack" : "git-receive-pack"}`;
    const method = (req.method ?? "GET").toUpperCase();
    const sniffer = new PushRequestSniffer();
    const t0 = Date.now();
    let waited: { result: ReadYourWrites; ms: number } | undefined;

    return new Promise<void>((resolve) => {
      const up = https.request(target, { method, agent: this.agent, headers: { ...forwardedHeaders(req.headers), "x-request-id": ctx.requestId } });
      const fail = (e: NodeJS.ErrnoException) => {
        if (res.headersSent) {
          res.destroy();
          return;
        }
        const d = describeFailure(e);
        record.note("warn", { primary: this.o.upstreamUrl, error: d.why }, "cannot forward the push to the primary");
        record.reply(502, pushForwardFailedMessage(this.o.upstreamUrl, name, d.why, d.tls));
      };
      up.setTimeout(this.o.idleTimeoutMs ?? 10 * 60_000, () => up.destroy(Object.assign(new Error("no answer from the primary"), { code: "ETIMEDOUT" })));
      up.on("error", fail);
      // The client left: the primary's receive-pack sees a cut request and updates nothing.
      res.once("close", () => {
        if (!res.writableFinished) up.destroy();
        resolve();
      });

      let answered = false;
      up.on("response", (answer: IncomingMessage) => {
        answered = true;
        const status = answer.statusCode ?? 502;
        const tap = method === "POST" && status === 200 && String(answer.headers["content-type"] ?? "").startsWith("application/x-git-receive-pack-result");
        record.count(status);
        res.writeHead(status, relayedHeaders(answer.headers, tap));
        const done = (err: Error | null | undefined) => {
          const report = tap ? (tapStream as ReportTap).report : undefined;
          record.note(err ? "warn" : "info", {
            endpoint,
            status,
            ms: Date.now() - t0,
            refs: sniffer.count || undefined,
            accepted: report ? report.ok.length : undefined,
            rejected: report?.ng.length || undefined,
            readYourWrites: waited?.result,
            syncMs: waited?.ms,
            error: err ? err.message : undefined,
          }, "git push forwarded to the primary");
        };
        const tapStream = tap ? new ReportTap((r) => this.catchUp(r, sniffer, served, (w) => (waited = w))) : undefined;
        if (tapStream) pipeline(answer, tapStream, res, done);
        else pipeline(answer, res, done);
      });

      // A request-side error after the primary answered (it may answer 401 without reading a
      // body) must not cut that answer; before it, the primary gets a cut request.
      if (method === "POST") pipeline(req, sniffer, up, (err) => err && !answered && up.destroy(err));
      else up.end();
    });
  }

  /**
   * Before the push's answer ends: when the primary updated refs of a mirrored repository,
   * wait (bounded) for the mirror's sync of it. Resolves to the note for the client, if any.
   */
  private async catchUp(report: PushReport, sniffer: PushRequestSniffer, served: ServedRepo | undefined, tell: (w: { result: ReadYourWrites; ms: number }) => void): Promise<string | undefined> {
    const t0 = Date.now();
    const count = (result: ReadYourWrites, note?: string) => {
      this.counter?.inc({ result });
      tell({ result, ms: Date.now() - t0 });
      return note;
    };
    // Without report-status (an old client, or one that did not ask) success is not told: sync anyway.
    const updated = accepted(report) || (report.unpack === undefined && report.fatal === undefined && sniffer.count > 0);
    if (!updated) return count("not_accepted");
    if (!served || !this.o.syncNow) return count("not_mirrored");
    const sync = this.o.syncNow(served, pushedChanges(sniffer.summary, report));
    if (this.o.waitMs <= 0) return count("timeout");
    const r = await within(sync, this.o.waitMs);
    if (r === "timeout") return count("timeout", catchUpNote("it is still fetching your push from the primary"));
    if (!r.ok) return count("sync_failed", catchUpNote("its fetch from the primary failed; it retries on its own"));
    return count("synced");
  }
}
