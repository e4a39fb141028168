/**
 * What one Git request came to, recorded in one place: its HTTP status counted once, the bytes
 * sent, the upload-pack result by kind and protocol, and its log line. Admission (admission.ts)
 * answers refusals through `reply`; execution (execution.ts) hands every git run, relayed,
 * handed off or through the pack cache, to `served`.
 */
import type { OutgoingHttpHeaders, ServerResponse } from "node:http";
import type { AuthResult } from "../../auth/authorizer";
import type { Log } from "../http";
import type { Endpoint, GitMetrics, UploadPackResult } from "./gitMetrics";
import type { CacheOutcome } from "./packCache";
import { classify, RequestSummary } from "./pktSniffer";
import { sendText } from "./replies";
import { stderrForLog } from "./requestCheck";
import type { TransferLimits } from "./transferGuard";

/** How a git run (or the cache) ended for this request. */
export interface Served {
  result: UploadPackResult;
  /** Bytes written to the response body. */
  bytes: number;
  summary?: RequestSummary;
  /** Set when the answer went through the pack cache. */
  cache?: CacheOutcome;
  /** Why a run failed: the cache's failure kind, git's exit code or signal and stderr. */
  failure?: string;
  code?: number | null;
  signal?: NodeJS.Signals | null;
  stderr?: string;
}

export interface RecordDeps {
  metrics: GitMetrics;
  log: Log;
  transferLimits: TransferLimits;
}

export class GitRecord {
  /** Known once the path parsed (admission.ts); "invalid" before. */
  endpoint: Endpoint = "invalid";
  /** "PROJECT/slug" as the mirror serves it, once known. */
  repo: string | undefined;
  principal: string | undefined;
  protocol: number | undefined;
  private counted = false;
  private readonly t0 = Date.now();

  constructor(
    private readonly d: RecordDeps,
    private readonly res: ServerResponse,
    private readonly method: string,
    readonly requestId: string,
    readonly client: string,
  ) {}

  /** A short text answer instead of git's (a refusal, an error); counted. */
  reply(status: number, message: string, headers: OutgoingHttpHeaders = {}): void {
    this.count(status);
    // An unread request body is not worth reading: close after the answer instead.
    sendText(this.res, status, message, this.method === "POST" ? { ...headers, Connection: "close" } : headers);
  }

  /** The access decision: counted by auth mode and result; its principal goes into every log line. */
  authorized(mode: string, auth: AuthResult): void {
    this.principal = auth.principal;
    this.d.metrics.auth(mode, auth);
  }

  /** Count the request's HTTP status: once, whoever answered (a refusal, git, the cache). */
  count(status: number): void {
    if (this.counted) return;
    this.counted = true;
    this.d.metrics.request(this.endpoint, status);
  }

  /** Log a decision about the request (not its result: see `served`). */
  note(level: "info" | "warn", fields: object, msg: string): void {
    this.d.log[level]({ requestId: this.requestId, repo: this.repo, ...fields }, msg);
  }

  /** git upload-pack answered (relayed, handed off, or through the cache): count and log it. */
  served(s: Served): void {
    this.d.metrics.sentBytes(this.endpoint, s.bytes);
    if (s.result === "aborted") this.count(499);
    else if (this.res.headersSent) this.count(this.res.statusCode);
    const kind = s.summary ? classify(s.summary) : undefined;
    if (kind && this.protocol !== undefined) this.d.metrics.uploadPack(kind, this.protocol, s.result);
    const fields = {
      requestId: this.requestId,
      repo: this.repo,
      principal: this.principal,
      endpoint: this.endpoint,
      kind,
      protocol: this.protocol,
      shallow: s.summary?.shallow || undefined,
      filter: s.summary?.filter || undefined,
      ms: Date.now() - this.t0,
      cache: s.cache,
      result: s.result,
      bytes: s.bytes,
      signal: s.signal ?? undefined, // SIGKILL: we stopped it (client gone, idle, bad body)
    };
    const log = this.d.log;
    if (s.result === "ok" || s.result === "aborted") log.info(fields, "git upload-pack");
    // git echoes the client's bytes: bounded, printable.
    else if (s.result === "refused") log.info({ ...fields, stderr: stderrForLog(s.stderr ?? "") }, "git upload-pack refused the request");
    else if (s.result === "too_slow") log.info({ ...fields, client: this.client, limits: this.d.transferLimits }, "git upload-pack cut: slower than the minimum rate while others waited");
    else log.warn({ ...fields, failure: s.failure, code: s.code, stderr: stderrForLog(s.stderr ?? "") }, "git upload-pack failed");
  }
}
