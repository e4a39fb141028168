/**
 * Where a clone's time goes, read from the client's own trace (GIT_TRACE2_EVENT, one JSON
 * event per line, written by git clone and every git it starts). Pure.
 *
 * received: from the clone's start until the process that talks to the server exits — git-
 * remote-https (it exits once the last byte of the pack has been read and handed on) or, for
 * file://, the upload-pack git ran. Everything the server can speed up or slow down happens in
 * this window. What follows is the client alone: index-pack resolving deltas and hashing the
 * objects it could not hash while the pack streamed in, then the refs.
 */

interface Trace2Event {
  event: string;
  sid: string;
  time: string;
  argv?: string[];
}

export interface ClonePhases {
  /** Start of the clone until the server side of the transfer is done. */
  receivedMs: number;
  /** Start of the clone until it exits. */
  totalMs: number;
}

const TRANSPORT = /(^|[/ -])(remote-https?|upload-pack)( |$)/;

export function clonePhases(jsonl: string): ClonePhases {
  const events: Trace2Event[] = jsonl
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Trace2Event);
  if (events.length === 0) throw new Error("clonePhases: empty trace");
  const top = events[0].sid;
  const t0 = Date.parse(events[0].time);
  const argvOf = new Map<string, string>();
  let received: number | undefined;
  let total: number | undefined;
  for (const e of events) {
    const at = Date.parse(e.time) - t0;
    if (e.event === "start") argvOf.set(e.sid, (e.argv ?? []).join(" "));
    if (e.event !== "exit") continue;
    if (e.sid === top) total = at;
    else if (TRANSPORT.test(argvOf.get(e.sid) ?? "")) received = Math.max(received ?? 0, at);
  }
  if (total === undefined) throw new Error("clonePhases: the clone's exit is not in the trace");
  if (received === undefined) throw new Error("clonePhases: no remote-https or upload-pack process in the trace");
  return { receivedMs: received, totalMs: total };
}
