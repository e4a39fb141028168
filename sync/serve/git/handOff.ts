/**
 * A POST to git-upload-pack answered by git writing straight into the client's socket:
 *
 *   request body (read and checked first, see admission.ts) -> git stdin
 *   git stdout = the HTTP connection's socket itself                 (no copy in the daemon)
 *
 * Why: relayed through the event loop (exchange.ts), a 20 MB clone cost the daemon ~200 ms CPU
 * (measured with --cpu-prof: hundreds of pipe reads and chunked socket writes), as much as
 * nginx + fcgiwrap + git-http-backend spend on their whole side. With the socket as git's
 * stdout the kernel moves the bytes, as it does for git-http-backend.
 *
 * The HTTP framing that allows: the 200 and its headers go first, then git's bytes until the
 * connection closes (`Connection: close`, no length, no chunking: valid HTTP/1.1, and what nginx
 * expects from an upstream that cannot know the length). So the status is decided before git
 * runs, as git-http-backend does: a git that fails later cuts the connection and the client
 * reports a broken transfer, never a silently short pack. Only POSTs that want objects are
 * served this way; info/refs and ls-refs (small, and where most failures show) keep
 * exchange.ts's late status and the connection.
 *
 * What the daemon no longer sees, it watches from /proc instead: the bytes git wrote
 * (wchar in /proc, sampled every second and as git exits) and progress, so a
 * transfer idle for `idleTimeoutMs` is still cut. The client leaving is seen as before (the
 * daemon keeps reading the socket, gets its end, and kills git's process group), or by git
 * first, whose next write then fails.
 *
 * One libuv detail: spawning a child with a socket as stdout clears O_NONBLOCK on the socket's
 * file description, which the daemon shares; a blocking socket would stall the event loop on
 * its next read. The flag is set back right after the spawn (git copes with a non-blocking
 * stdout: its writes poll on EAGAIN). The pack cache also sends finished answers this way,
 * with `cat` as the writer, which does not cope: see `blockingWriter`.
 */
import type { ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import type { OutgoingHttpHeaders, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Writable } from "node:stream";
import type { ExchangeOutcome, ExchangeResult } from "./exchange";
import { errPacket, refusalMessage, refusedByGit } from "./requestCheck";
import type { GuardVerdict, TransferGuard } from "./transferGuard";
import { killGroup, onGitExit } from "./uploadPack";

export interface HandOffOptions {
  res: ServerResponse;
  /** Headers of the 200 answer (Connection: close is added). */
  headers: OutgoingHttpHeaders;
  /** Start the writer (git) with `stdout` as its standard output, stderr piped, in its own process group. */
  spawn(stdout: Socket): ChildProcess;
  /** Written to the writer's stdin when that is a pipe: for git, the whole request body, decoded and checked (the status goes out before git reads it). */
  input?: Buffer;
  idleTimeoutMs: number;
  /**
   * The writer cannot handle a non-blocking stdout (cat: "write error: Resource temporarily
   * unavailable" on EAGAIN). The daemon then stops reading the socket and leaves it blocking
   * until the writer exits; a client that leaves is seen by the writer (EPIPE), or by the idle
   * watchdog.
   */
  blockingWriter?: boolean;
  /** Minimum rate / total time of the transfer (transferGuard.ts), checked about once a second. */
  guard?: TransferGuard;
}

/** The socket's file description back to non-blocking (see the module comment). */
interface BlockingHandle {
  setBlocking?(blocking: boolean): number;
}

/**
 * Bytes git upload-pack wrote so far; undefined when it cannot be read. Its main thread's
 * counter (task/PID/io): the process-wide /proc/PID/io also adds reaped children, i.e. the
 * pack pack-objects wrote into upload-pack's pipe, counting every pack twice.
 */
export function writtenBytes(pid: number): number | undefined {
  try {
    const m = /^wchar:\s*(\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/task/${pid}/io`, "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Resolves once everything written to the socket so far reached the kernel; false if it failed. */
function flushed(socket: Socket): Promise<boolean> {
  return new Promise((resolve) => socket.write(Buffer.alloc(0), (err) => resolve(!err)));
}

export async function handOff(o: HandOffOptions): Promise<ExchangeOutcome> {
  const { res } = o;
  const socket = res.socket;
  const outcome = (result: ExchangeResult, bytes = 0, code: number | null = null, signal: NodeJS.Signals | null = null, stderr = ""): ExchangeOutcome => ({ result, bytes, code, signal, stderr });
  if (!socket || res.destroyed) return outcome("aborted");

  res.useChunkedEncodingByDefault = false;
  res.shouldKeepAlive = false;
  res.writeHead(200, { ...o.headers, Connection: "close" });
  res.flushHeaders();
  // Git must not write before the headers are out: both go into the same socket.
  if (!(await flushed(socket)) || res.destroyed) return outcome("aborted");

  const handle = (socket as unknown as { _handle?: BlockingHandle })._handle;
  // With reading stopped, the event loop never touches the descriptor while it blocks.
  if (o.blockingWriter) socket.pause();
  let child: ChildProcess;
  try {
    child = o.spawn(socket);
  } catch (e) {
    handle?.setBlocking?.(false);
    res.destroy();
    return outcome("failed", 0, null, null, String(e));
  }
  if (!o.blockingWriter) handle?.setBlocking?.(false);

  return new Promise((resolve) => {
    let aborted = false;
    let stderr = "";
    let settled = false;
    let bytes = 0;
    let lastProgress = Date.now();
    const pid = child.pid;

    const sample = () => {
      if (pid === undefined) return;
      const n = writtenBytes(pid);
      if (n !== undefined && n > bytes) {
        bytes = n;
        lastProgress = Date.now();
      }
    };
    const abort = () => {
      if (aborted) return;
      aborted = true;
      killGroup(child);
    };
    // Idle: git sends keepalives while it prepares a pack (uploadpack.keepAlive), so a transfer
    // without a written byte for this long has a client that stopped reading.
    let cut: GuardVerdict = "ok";
    const watchdog = setInterval(
      () => {
        sample();
        const verdict = o.guard?.check(bytes) ?? "ok";
        if (verdict !== "ok") cut = verdict;
        if (verdict !== "ok" || Date.now() - lastProgress > o.idleTimeoutMs) {
          abort();
          res.destroy();
        }
      },
      Math.min(1000, Math.max(10, o.idleTimeoutMs / 4)),
    );

    // wchar counts git's writes to stderr as well: subtracted where "did git answer?" matters.
    let stderrBytes = 0;
    child.stderr?.on("data", (b: Buffer) => {
      stderrBytes += b.length;
      stderr = (stderr + b.toString("utf8")).slice(-4096);
    });
    // Git closed its stderr: it is exiting, and not reaped yet, so /proc still has its counters.
    child.stderr?.on("end", sample);
    const stdin: Writable | null = child.stdin;
    if (stdin) {
      // EPIPE: git stopped reading; its exit code tells why.
      stdin.on("error", () => undefined);
      stdin.end(o.input ?? Buffer.alloc(0));
    }

    const onClose = () => {
      if (!res.writableFinished) abort();
    };
    res.on("close", onClose);
    if (res.destroyed) abort();

    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      if (o.blockingWriter) handle?.setBlocking?.(false);
      clearInterval(watchdog);
      res.off("close", onClose);
      const out = (result: ExchangeResult) => resolve(outcome(result, bytes, code, signal, stderr));
      // Git writes into the socket itself, so it may see the client leave before the daemon
      // does: its write fails (SIGPIPE, or "Broken pipe" / "Connection reset by peer").
      const clientLeft = signal === "SIGPIPE" || /broken pipe|connection reset by peer/i.test(stderr) || socket.destroyed;
      if (aborted || (code !== 0 && clientLeft)) {
        killGroup(child); // pack-objects, if it outlived upload-pack
        return out(cut !== "ok" ? "too_slow" : "aborted");
      }
      if (code === 0) {
        res.end();
        return out("ok");
      }
      // The 200 is out. Nothing written yet: say why inside the protocol (an ERR pkt-line, which
      // git prints as "remote error: ..."), and end cleanly so a proxy in front sees a complete
      // answer, not a reset (nginx's 502). A refusal after git wrote (its own ERR) ends cleanly
      // too; a failure of the mirror in mid-pack cuts the connection.
      const refused = refusedByGit(code, signal, stderr);
      // Less than one pkt-line beyond stderr: nothing went to the client (the count can include a
      // byte the fork wrote before exec).
      if (bytes - stderrBytes < 4) {
        res.end(errPacket(refused ? refusalMessage(stderr) : "the mirror failed to serve this request; try again (see the mirror's log)"));
        return out(refused ? "refused" : "failed");
      }
      if (refused) {
        res.end();
        return out("refused");
      }
      res.destroy();
      return out("failed");
    };
    onGitExit(child, finish, (e) => (stderr += String(e)));
  });
}
