import { PassThrough, Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { pktLine, FLUSH_PKT } from "../git/protocol";
import { accepted, MAX_HELD_BYTES, progressPkt, PushReport, ReportTap } from "./reportTap";
import { MAX_REF_LENGTH, parseCommandLine, PushRequestSniffer } from "./pushRequest";
import { pushedChanges } from "./pushProxy";

const band = (n: number, payload: Buffer | string) => pktLine(String.fromCharCode(n) + (typeof payload === "string" ? payload : payload.toString("latin1")));
const reportLines = (...lines: string[]) => Buffer.concat([...lines.map((l) => pktLine(`${l}\n`)), FLUSH_PKT]);

/** The primary's side-band answer: hook output on 2, the report on 1, the final flush. */
const sidebandAnswer = Buffer.concat([band(2, "hook says hi\n"), band(1, reportLines("unpack ok", "ok refs/heads/main", "ng refs/heads/x pre-receive hook declined")), FLUSH_PKT]);
const plainAnswer = reportLines("unpack ok", "ok refs/heads/main");

/** Run the tap over `input` cut into `sizes`-byte chunks; what went out before the end was allowed, and after. */
async function tap(input: Buffer, chunk: number, note?: string): Promise<{ before: Buffer; after: Buffer; report: PushReport }> {
  const out: Buffer[] = [];
  let atEnd = -1;
  let seen: PushReport | undefined;
  const t = new ReportTap(async (r) => {
    atEnd = Buffer.concat(out).length;
    seen = r;
    return note;
  });
  const chunks: Buffer[] = [];
  for (let i = 0; i < input.length; i += chunk) chunks.push(input.subarray(i, i + chunk));
  const sink = new PassThrough();
  sink.on("data", (b: Buffer) => out.push(b));
  await pipeline(Readable.from(chunks), t, sink);
  const all = Buffer.concat(out);
  return { before: all.subarray(0, atEnd), after: all, report: seen as PushReport };
}

describe("ReportTap", () => {
  test.each([1, 2, 3, 5, 7, 64, 100000])("side-band answer in %i-byte chunks: all but the final flush goes out at once; the report is read from band 1", async (size) => {
    const r = await tap(sidebandAnswer, size);
    expect(r.before.equals(sidebandAnswer.subarray(0, sidebandAnswer.length - 4))).toBe(true);
    expect(r.after.equals(sidebandAnswer)).toBe(true);
    expect(r.report).toMatchObject({ sideband: true, unpack: "ok", ok: ["refs/heads/main"], ng: [{ ref: "refs/heads/x", reason: "pre-receive hook declined" }], ended: true });
    expect(accepted(r.report)).toBe(true);
  });

  test.each([1, 3, 4, 1000])("plain report-status in %i-byte chunks: the final flush is held, the report read", async (size) => {
    const r = await tap(plainAnswer, size);
    expect(r.before.equals(plainAnswer.subarray(0, plainAnswer.length - 4))).toBe(true);
    expect(r.after.equals(plainAnswer)).toBe(true);
    expect(r.report).toMatchObject({ sideband: false, unpack: "ok", ok: ["refs/heads/main"], ended: true });
  });

  test("a note goes out as a side-band-2 line just before the final flush; never without side-band", async () => {
    const sb = await tap(sidebandAnswer, 9, "the mirror will catch up shortly");
    expect(sb.after.equals(Buffer.concat([sidebandAnswer.subarray(0, sidebandAnswer.length - 4), progressPkt("the mirror will catch up shortly"), FLUSH_PKT]))).toBe(true);
    const plain = await tap(plainAnswer, 9, "the mirror will catch up shortly");
    expect(plain.after.equals(plainAnswer)).toBe(true);
  });

  test("bytes after the final flush are held only up to a bound: a primary that keeps sending streams through", async () => {
    const trailing = Buffer.alloc(MAX_HELD_BYTES * 3, 0x41);
    const input = Buffer.concat([plainAnswer, trailing]);
    const r = await tap(input, 4096, "a note");
    // Everything went out, in order, before the end was allowed (nothing piled up in memory).
    expect(r.before.length).toBeGreaterThan(input.length - 4096);
    expect(r.after.equals(input)).toBe(true);
    expect(r.report.ended).toBe(true);
  });

  test("unpack failure, band-3 fatal, an empty answer: nothing accepted", async () => {
    expect(accepted((await tap(Buffer.concat([band(1, reportLines("unpack index-pack abnormal exit", "ng refs/heads/main unpacker error")), FLUSH_PKT]), 5)).report)).toBe(false);
    const fatal = await tap(band(3, "fatal: something broke\n"), 4);
    expect(fatal.report.fatal).toBe("fatal: something broke");
    expect(accepted(fatal.report)).toBe(false);
    const empty = await tap(Buffer.alloc(0), 1);
    expect(empty.report).toMatchObject({ ended: false, ok: [] });
    expect(empty.after.length).toBe(0);
  });
});

describe("PushRequestSniffer", () => {
  const A = "a".repeat(40);
  const B = "b".repeat(40);
  const Z = "0".repeat(40);
  test("reads the commands and capabilities, passes every byte through, never reads the pack", async () => {
    const pack = Buffer.concat([Buffer.from("PACK"), Buffer.from("0000 not a pkt-line at all")]);
    const body = Buffer.concat([
      pktLine(`shallow ${A}\n`),
      pktLine(`${A} ${B} refs/heads/main\0report-status side-band-64k agent=git/2.39\n`),
      pktLine(`${Z} ${B} refs/tags/v1\n`),
      FLUSH_PKT,
      pack,
    ]);
    for (const size of [1, 3, 1000]) {
      const s = new PushRequestSniffer();
      const out: Buffer[] = [];
      s.on("data", (b: Buffer) => out.push(b));
      const chunks: Buffer[] = [];
      for (let i = 0; i < body.length; i += size) chunks.push(body.subarray(i, i + size));
      await pipeline(Readable.from(chunks), s);
      expect(Buffer.concat(out).equals(body)).toBe(true);
      expect(s.summary).toEqual({
        commands: [
          { old: A, new: B, ref: "refs/heads/main" },
          { old: Z, new: B, ref: "refs/tags/v1" },
        ],
        capabilities: ["report-status", "side-band-64k", "agent=git/2.39"],
        complete: true,
      });
    }
  });
  test("a ref name past MAX_REF_LENGTH is not read: the parsing stops (bounded memory), the push is not taken as complete", () => {
    const z = "0".repeat(40);
    const a = "a".repeat(40);
    expect(parseCommandLine(`${z} ${a} refs/heads/${"x".repeat(MAX_REF_LENGTH - 11)}\n`)).toBeDefined();
    expect(parseCommandLine(`${z} ${a} refs/heads/${"x".repeat(MAX_REF_LENGTH)}\n`)).toBeUndefined();
  });

  test("the probe ('0000') has no commands; junk stops the parsing", () => {
    expect(parseCommandLine(`${A} ${B} main\n`)).toBeUndefined();
    expect(parseCommandLine(`${A} ${B} refs/heads/main extra\n`)).toBeUndefined();
    expect(parseCommandLine(`${A} ${B} refs/heads/main\n`)).toEqual({ command: { old: A, new: B, ref: "refs/heads/main" }, capabilities: undefined });
  });
});

describe("pushedChanges", () => {
  const A = "a".repeat(40);
  const B = "b".repeat(40);
  const C = "c".repeat(40);
  const request = { commands: [{ old: A, new: B, ref: "refs/heads/main" }, { old: A, new: C, ref: "refs/heads/x" }], capabilities: [], complete: true };
  const report = { sideband: true, unpack: "ok", ok: ["refs/heads/main"], ng: [{ ref: "refs/heads/x", reason: "hook declined" }], ended: true };
  test("only the refs the primary reported ok, as webhook-style changes", () => {
    expect(pushedChanges(request, report)).toEqual([{ refId: "refs/heads/main", fromHash: A, toHash: B }]);
  });
  test("unknown when the commands are incomplete, or a reported ref was not among them", () => {
    expect(pushedChanges({ ...request, complete: false }, report)).toBeUndefined();
    expect(pushedChanges(request, { ...report, ok: ["refs/heads/other"] })).toBeUndefined();
    expect(pushedChanges(request, { ...report, unpack: "error" })).toBeUndefined();
  });
});
