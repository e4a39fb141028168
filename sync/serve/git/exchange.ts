/**
 * One HTTP request <-> one git upload-pack process, streamed both ways with backpressure:
 *
 *   request body -> [gunzip] -> size limit -> sniffer -> git stdin      (stream.pipeline)
 *   git stdout -> response                                              (pause on a full socket)
 *
 * Nothing is collected: a pack of any size passes through a few socket buffers.
 *
 * The response status is decided late: headers go out with git's first byte, so a git that
 * fails before writing anything still gets a proper 500 (or 413 / 400 for a request body that
 * was too large or not valid gzip), never a 200 with an empty body. After the first byte, a
 * failure cuts the connection (git reports a broken transfer, never a silently short pack).
 *
 * The client going away (response 'close' before it finished), the socket idling longer than
 * `idleTimeoutMs`, or a bad request body kill git's whole process group at once.
 */
import type { ChildProcess } from "node:child_process";
import type { OutgoingHttpHeaders, ServerResponse } from "node:http";
import { pipeline, Readable, Transform, Writable } from "node:stream";
import { RequestTooLarge } from "./byteLimit";
import { refusalMessage, refusedByGit } from "./requestCheck";
import type { GuardVerdict, TransferGuard } from "./transferGuard";
import { killGroup, onGitExit } from "./uploadPack";

/** refused: git turned the request down (requestCheck.ts refusedByGit): the client's fault, answered 400 or in the protocol. */
export type ExchangeResult = "ok" | "failed" | "aborted" | "too_large" | "bad_request" | "refused" | "too_slow";

export interface ExchangeOutcome {
  result: ExchangeResult;
  /** Bytes written to the response body. */
  bytes: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The end of git's stderr, for logs. */
  stderr: string;
}

export interface ExchangeOptions {
  child: ChildProcess;
  res: ServerResponse;
  /** Headers of the 200 answer, sent with the first byte. */
  headers: OutgoingHttpHeaders;
  /** Written right after the headers (the v0 info/refs service line). */
  prefix?: Buffer;
  /** The request body (the request itself, or a replay of it) and the stages between it and git's stdin (POST only). */
  body?: { req: Readable; stages: Transform[] };
  idleTimeoutMs: number;
  /** Minimum rate / total time of the transfer (transferGuard.ts), checked about once a second. */
  guard?: TransferGuard;
  /** Plain-text error answer (status, message, extra headers) while no header was sent. */
  fail(status: number, message: string, headers?: OutgoingHttpHeaders): void;
}

export function exchange(o: ExchangeOptions): Promise<ExchangeOutcome> {
  const { child, res } = o;
  return new Promise((resolve) => {
    let bytes = 0;
    let aborted = false;
    let inputError: Error | undefined;
    let stderr = "";
    let settled = false;
    const stdout = child.stdout as Readable;

    const abort = () => {
      if (aborted) return;
      aborted = true;
      killGroup(child);
      stdout.resume(); // let 'close' come even if we were waiting for 'drain'
    };
    const start = () => {
      if (res.headersSent) return;
      res.writeHead(200, o.headers);
      if (o.prefix && o.prefix.length > 0) {
        bytes += o.prefix.length;
        res.write(o.prefix);
      }
    };

    child.stderr?.on("data", (b: Buffer) => (stderr = (stderr + b.toString("utf8")).slice(-4096)));

    stdout.on("data", (chunk: Buffer) => {
      if (aborted) return;
      start();
      bytes += chunk.length;
      if (!res.write(chunk)) {
        stdout.pause();
        res.once("drain", () => stdout.resume());
      }
    });

    if (o.body && child.stdin) {
      feedBody(child, o.body, (err) => {
        inputError = err;
        killGroup(child);
      });
    }

    const onClose = () => {
      if (!res.writableFinished) abort();
    };
    res.on("close", onClose);
    res.setTimeout(o.idleTimeoutMs, () => {
      abort();
      res.destroy();
    });
    let cut: GuardVerdict = "ok";
    const guardTimer = o.guard
      ? setInterval(() => {
          const verdict = o.guard?.check(bytes) ?? "ok";
          if (verdict === "ok") return;
          cut = verdict;
          abort();
          res.destroy();
        }, 1000)
      : undefined;
    // Gone before we got here (between the last check and the spawn): 'close' will not come again.
    if (res.destroyed) abort();

    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      if (guardTimer) clearInterval(guardTimer);
      const out = (result: ExchangeResult): void => resolve({ result, bytes, code, signal, stderr });
      if (aborted) return out(cut !== "ok" ? "too_slow" : "aborted");
      if (inputError) {
        const tooLarge = inputError instanceof RequestTooLarge;
        if (!res.headersSent) o.fail(tooLarge ? 413 : 400, tooLarge ? inputError.message : "the request body is not valid gzip", { Connection: "close" });
        else res.destroy();
        return out(tooLarge ? "too_large" : "bad_request");
      }
      if (code === 0) {
        start();
        res.end();
        return out("ok");
      }
      if (refusedByGit(code, signal, stderr)) {
        // The client's bad request: a 400 with git's reason, or (git already answered, e.g. its
        // own ERR pkt-line) a clean end, so what git wrote reaches the client.
        if (!res.headersSent) o.fail(400, refusalMessage(stderr), { Connection: "close" });
        else res.end();
        return out("refused");
      }
      if (!res.headersSent) o.fail(500, "git upload-pack failed on the mirror (see the mirror's log)", { Connection: "close" });
      else res.destroy();
      return out("failed");
    };
    onGitExit(child, finish, (e) => (stderr += String(e)));
  });
}

/**
 * Stream a request body through its stages (gunzip, size limit, sniffer) into git's stdin.
 * `onInputError` hears of errors that are the request's fault (too large, not valid gzip).
 * Errors on git's stdin itself (EPIPE, premature close) mean git stopped reading: its exit code
 * tells what happened, so they are swallowed here.
 */
function feedBody(child: ChildProcess, body: { req: Readable; stages: Transform[] }, onInputError: (err: Error) => void): void {
  const stdin = child.stdin as Writable;
  stdin.on("error", () => undefined);
  if (body.stages.length > 0) {
    pipeline([...body.stages, stdin] as unknown as [Transform, Writable], (err) => {
      if (err && (err instanceof RequestTooLarge || isZlibError(err))) onInputError(err);
    });
  }
  // pipe(), not pipeline(): on a bad body the request must stay open for the 413/400 answer.
  body.req.pipe(body.stages[0] ?? stdin);
}

function isZlibError(e: Error): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return typeof code === "string" && code.startsWith("Z_");
}
