/**
 * A node's drain time from its daemon's own log (pino JSON lines; `time` is ISO 8601, as the
 * daemon logs it, or epoch milliseconds, pino's default): from the
 * first line saying the daemon starts draining or stopping (SIGTERM received) to the line
 * saying it stopped. Pure, so what counts as start and end is visible and tested.
 */

interface LogLine {
  time: number;
  msg: string;
}

function parse(text: string): LogLine[] {
  const out: LogLine[] = [];
  for (const l of text.split("\n")) {
    if (!l.startsWith("{")) continue;
    try {
      const doc = JSON.parse(l) as { time?: unknown; msg?: unknown };
      const time = typeof doc.time === "number" ? doc.time : typeof doc.time === "string" ? Date.parse(doc.time) : NaN;
      if (Number.isFinite(time) && typeof doc.msg === "string") out.push({ time, msg: doc.msg });
    } catch {
      /* a cut line */
    }
  }
  return out;
}

const START = /^(draining|stopping)\b/i;
const END = /^stopped\b/i;

/** Milliseconds from the first drain/stop start to the following "stopped"; undefined when either is missing. */
export function drainMs(logText: string): number | undefined {
  const lines = parse(logText);
  const start = lines.findIndex((l) => START.test(l.msg));
  if (start < 0) return undefined;
  const end = lines.slice(start).find((l) => END.test(l.msg));
  return end ? end.time - lines[start].time : undefined;
}
