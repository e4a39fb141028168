/**
 * Reads a receive-pack request's commands as the push streams past to the primary (the bytes
 * go through unchanged; the pack after the commands is never looked at or held).
 *
 * The request (gitprotocol-pack, "Reference Update Request and Packfile Transfer"):
 *
 *     *shallow-line
 *     command-pkt            "<old-oid> <new-oid> <refname>\0<capabilities>\n" (first)
 *     *command-pkt           "<old-oid> <new-oid> <refname>\n"
 *     flush-pkt
 *     [push options, if the push-options capability was asked for]
 *     packfile               (absent when every command is a delete)
 *
 * A push-cert request ("push-cert\0...") or anything unexpected stops the parsing: the primary
 * validates the request, the mirror only wants to know which refs the push is for and whether
 * the client asked for side-band-64k / report-status (pushProxy.ts uses that for its answer).
 */
import { Transform, TransformCallback } from "node:stream";
import { PktReader } from "./pktReader";

export interface PushCommand {
  old: string;
  new: string;
  ref: string;
}

export interface PushRequestSummary {
  commands: PushCommand[];
  capabilities: string[];
  /** The commands' flush-pkt was seen: the list is complete. */
  complete: boolean;
}

/** Most commands kept (a push of every tag of a huge repository is still counted, not kept). */
export const MAX_COMMANDS = 10_000;
const OID = /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/;
/**
 * Longest ref name read. A pkt-line allows ~65 KB, so MAX_COMMANDS of those would pin ~650 MB
 * per push; no real ref comes near this (file systems cap a path component at 255 bytes).
 * A longer one stops the parsing: the push still goes through, and the sync after it scans.
 */
export const MAX_REF_LENGTH = 4096;

/** One command pkt-line's payload -> the command and (first line only) capabilities; pure. */
export function parseCommandLine(payload: string): { command: PushCommand; capabilities?: string[] } | undefined {
  const nul = payload.indexOf("\0");
  const line = (nul >= 0 ? payload.slice(0, nul) : payload).replace(/\n$/, "");
  const caps = nul >= 0 ? payload.slice(nul + 1).replace(/\n$/, "").split(" ").filter((c) => c !== "") : undefined;
  const [old, neu, ref, ...rest] = line.split(" ");
  if (rest.length > 0 || !OID.test(old ?? "") || !OID.test(neu ?? "") || !ref?.startsWith("refs/") || ref.length > MAX_REF_LENGTH) return undefined;
  return { command: { old, new: neu, ref }, capabilities: caps };
}

export class PushRequestSniffer extends Transform {
  readonly summary: PushRequestSummary = { commands: [], capabilities: [], complete: false };
  /** Commands seen, kept or not. */
  count = 0;
  private stopped = false;
  private readonly reader = new PktReader(
    (p) => this.onLine(p.toString("latin1")),
    // The end of the commands: what follows (options, the pack) is not ours to read.
    () => {
      this.summary.complete = true;
      this.stopped = true;
    },
  );

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (!this.stopped) {
      this.reader.feed(chunk, true);
      if (this.reader.broken) this.stopped = true;
    }
    cb(null, chunk);
  }

  private onLine(payload: string): void {
    if (this.stopped || payload.startsWith("shallow ")) return;
    const parsed = parseCommandLine(payload);
    if (!parsed) {
      this.stopped = true;
      return;
    }
    if (this.count === 0 && parsed.capabilities) this.summary.capabilities = parsed.capabilities;
    this.count++;
    if (this.summary.commands.length < MAX_COMMANDS) this.summary.commands.push(parsed.command);
  }
}
