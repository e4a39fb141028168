import { EventEmitter } from "node:events";
import { fetchRequest, lsRefsRequest, parseLsRefs, pktLine, PktSplitter, V2Channel, V2Session, V2UnavailableError } from "./protocolV2";

const A = "a".repeat(40);
const B = "b".repeat(40);

test("requests are pkt-lines as gitprotocol-v2 spells them", () => {
  expect(pktLine("a\n")).toBe("0006a\n");
  expect(lsRefsRequest()).toBe("0014command=ls-refs\n0001000csymrefs\n0000");
  expect(fetchRequest([A], [])).toBe(["0012command=fetch\n", "0001", "0010no-progress\n", "000eofs-delta\n", `0032want ${A}\n`, "0009done\n", "0000"].join(""));
  // With a have: a thin pack (the base is ours).
  expect(fetchRequest([A], [B])).toContain("000ethin-pack\n");
  expect(fetchRequest([A], [B])).toContain(`0032have ${B}\n`);
  expect(() => fetchRequest(["HEAD"], [])).toThrow(/not an object id/);
});

test("ls-refs lines: refs, HEAD's target, and a refusal", () => {
  const adv = parseLsRefs([Buffer.from(`${A} HEAD symref-target:refs/heads/trunk\n`), Buffer.from(`${A} refs/heads/trunk\n`), Buffer.from(`${B} refs/tags/v1\n`)]);
  expect(adv.headTarget).toBe("refs/heads/trunk");
  expect([...adv.refs]).toEqual([
    ["refs/heads/trunk", A],
    ["refs/tags/v1", B],
  ]);
  expect(() => parseLsRefs([Buffer.from("ERR access denied\n")])).toThrow(/primary refused: access denied/);
  expect(() => parseLsRefs([Buffer.from("garbage refs/heads/x\n")])).toThrow(/malformed/);
});

test("the splitter keeps flush, delim and response-end apart and waits for whole packets", () => {
  const s = new PktSplitter();
  s.push(Buffer.from("0006a\n00"));
  expect(s.next()).toEqual({ kind: "data", payload: Buffer.from("a\n") });
  expect(s.next()).toBeUndefined();
  s.push(Buffer.from("0000010002"));
  expect([s.next(), s.next(), s.next(), s.next()].map((p) => p?.kind)).toEqual(["flush", "delim", "end", undefined]);
  s.push(Buffer.from("zzzz"));
  expect(() => s.next()).toThrow(/malformed pkt-line/);
});

/** A channel that plays back what a server would write. */
function fakeChannel(serverSays: string): V2Channel & { written: string[] } {
  const ev = new EventEmitter();
  const ch = Object.assign(ev, {
    written: [] as string[],
    stderr: new EventEmitter(),
    write(d: string | Buffer) {
      ch.written.push(String(d));
      return true;
    },
    pause: () => undefined,
    resume: () => undefined,
    close: () => setImmediate(() => ev.emit("close")),
  });
  setImmediate(() => ev.emit("data", Buffer.from(serverSays)));
  return ch as never;
}

test("a primary that answers in protocol v0 (no AcceptEnv GIT_PROTOCOL) is told apart: the caller falls back to git fetch", async () => {
  const v0 = pktLine(`${A} HEAD\0multi_ack symref=HEAD:refs/heads/main\n`) + pktLine(`${A} refs/heads/main\n`) + "0000";
  await expect(V2Session.start(fakeChannel(v0), "/P/r.git", () => undefined)).rejects.toBeInstanceOf(V2UnavailableError);
});

test("a fetch streams band 1 to the sink, skips other sections, and fails on band 3", async () => {
  const caps = pktLine("version 2\n") + pktLine("ls-refs\n") + pktLine("fetch=shallow\n") + "0000";
  const body = pktLine("packfile\n") + pktLine("\x01PACK") + pktLine("\x02progress") + pktLine("\x01more") + "0000";
  const ch = fakeChannel(caps);
  const s = await V2Session.start(ch, "/P/r.git", () => undefined);
  const got: string[] = [];
  const done = s.fetch([A], [], (c) => void got.push(c.toString()));
  setImmediate(() => (ch as unknown as EventEmitter).emit("data", Buffer.from(body)));
  await done;
  expect(got).toEqual(["PACK", "more"]);
  expect(ch.written.join("")).toContain(`want ${A}`);
  const failing = s.fetch([A], [], () => undefined);
  setImmediate(() => (ch as unknown as EventEmitter).emit("data", Buffer.from(pktLine("packfile\n") + pktLine("\x03upload-pack: not our ref"))));
  await expect(failing).rejects.toThrow(/not our ref/);
  // A failed command leaves the stream somewhere unknown: the session is closed.
  expect(s.open).toBe(false);
});
