/**
 * Telling a client's bad upload-pack request from a failure of the mirror. Pure.
 *
 * A request git refuses is the client's fault and gets a 4xx (or, once a 200 went out, git's
 * own error in the protocol: an `ERR` pkt-line, which git clients print as "remote error:
 * ..."), never a 5xx; a 5xx is kept for failures of the mirror itself (a corrupt repository, a
 * full disk, git killed). Two checks:
 *
 * 1. framingProblem: the body must be pkt-lines from start to end (4 hex digits of length,
 *    0000/0001/0002 special, 4..65520 otherwise). A body that is not (`zzzz`, a cut pkt-line, 70 KB
 *    of `A`) is refused with 400 before git runs: it costs no upload-pack slot.
 * 2. refusedByGit: git exited with status 128 (die()) and a "fatal:" line that is about the
 *    request (protocol errors, unknown commands, "not our ref", a bad deepen-not, ...), and
 *    nothing in its stderr points at the repository or the host. What git-http-backend sends
 *    for those is a 200 whose body git wrote (maybe nothing): the client still fails, but the
 *    proxy in front logs no error.
 *
 * Git echoes the client's bytes into its messages (70 KB of `A` come back in "expected to get
 * object ID, not 'AAAA...'"), so everything taken from stderr is bounded and made printable
 * before it reaches a log line or the client.
 */
import { pktLine } from "./protocol";

/** Largest pkt-line git accepts (LARGE_PACKET_MAX). */
export const MAX_PKT_LEN = 65520;

/** Why `body` is not a sequence of whole pkt-lines, or undefined when it is. */
export function framingProblem(body: Buffer): string | undefined {
  let i = 0;
  while (i < body.length) {
    if (body.length - i < 4) return `the request ends inside a pkt-line length at byte ${i}`;
    const hex = body.toString("latin1", i, i + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(hex)) return `bad pkt-line length ${JSON.stringify(printable(hex, 4))} at byte ${i}`;
    const len = parseInt(hex, 16);
    if (len === 3) return `bad pkt-line length 3 at byte ${i}`;
    if (len > MAX_PKT_LEN) return `pkt-line longer than ${MAX_PKT_LEN} bytes at byte ${i}`;
    if (len <= 2) {
      i += 4;
      continue;
    }
    if (i + len > body.length) return `the request ends inside a pkt-line of ${len} bytes at byte ${i}`;
    i += len;
  }
  return undefined;
}

/** Phrases of git's die() messages about the request it was sent (upload-pack.c, pkt-line.c, serve.c). */
const CLIENT_FAULT = /protocol error|expected|not our ref|deepen|invalid|unknown|unexpected|ambiguous|filter|shallow|object-format|not a valid|unsupported|bad line length|malformed|hung up|too long|flush packet|delim/i;
/** ...and of failures on the mirror's side: these win, whatever else the message says. */
const MIRROR_FAULT = /pack-objects|corrupt|unable to|could not|cannot|no space|permission denied|out of memory|fsck|loose object|index file|bad object|missing|read error|write error|i\/o error/i;

/** git exited because the request was bad (see the module comment). */
export function refusedByGit(code: number | null, signal: NodeJS.Signals | null, stderr: string): boolean {
  if (signal !== null || code !== 128) return false;
  const fatal = fatalLine(stderr);
  return fatal !== undefined && CLIENT_FAULT.test(fatal) && !MIRROR_FAULT.test(stderr);
}

/** The last "fatal: ..." line of git's stderr, without the prefix, or undefined. */
function fatalLine(stderr: string): string | undefined {
  const lines = stderr.split(/\r?\n/).filter((l) => l.startsWith("fatal: "));
  return lines.length > 0 ? lines[lines.length - 1].slice("fatal: ".length) : undefined;
}

/** Control characters and anything beyond ASCII become "?"; longer than `max` is cut with "...". */
export function printable(s: string, max: number): string {
  const clean = s.replace(/[^\x20-\x7e]/g, "?");
  return clean.length > max ? `${clean.slice(0, max)}...` : clean;
}

/** git's stderr as a log field: the client's echoed bytes cannot make a log line long. */
export const MAX_LOGGED_STDERR = 512;
export function stderrForLog(stderr: string): string {
  return printable(stderr.trim().replace(/\r?\n/g, " | "), MAX_LOGGED_STDERR);
}

/** What the client is told of git's refusal: its fatal line, bounded (git prints it after "remote error: "). */
export const MAX_CLIENT_MESSAGE = 200;
export function refusalMessage(stderr: string): string {
  return `git upload-pack refused the request: ${printable(fatalLine(stderr) ?? "protocol error", MAX_CLIENT_MESSAGE)}`;
}

/** `ERR <message>` as a pkt-line: git's own way to fail a request inside the protocol. */
export function errPacket(message: string): Buffer {
  return pktLine(`ERR ${message}\n`);
}
