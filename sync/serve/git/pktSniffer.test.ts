import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { pktLine, FLUSH_PKT } from "./protocol";
import { cachesTheRequest } from "./packCache";
import { classify, PktSniffer } from "./pktSniffer";

const OID = "0123456789abcdef0123456789abcdef01234567";
const DELIM = Buffer.from("0001");

/** Push `body` through a sniffer in chunks of `size` bytes; returns the summary and what came out. */
async function sniff(body: Buffer, size: number) {
  const s = new PktSniffer();
  const chunks: Buffer[] = [];
  for (let i = 0; i < body.length; i += size) chunks.push(body.subarray(i, i + size));
  const out: Buffer[] = [];
  await pipeline(Readable.from(chunks), s, new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) }));
  return { summary: s.summary, out: Buffer.concat(out) };
}

const v0Clone = Buffer.concat([pktLine(`want ${OID} multi_ack_detailed side-band-64k ofs-delta\n`), pktLine(`want ${OID}\n`), FLUSH_PKT, pktLine("done\n")]);
const v0Fetch = Buffer.concat([pktLine(`want ${OID}\n`), FLUSH_PKT, pktLine(`have ${OID}\n`), pktLine(`have ${OID}\n`), pktLine("done\n")]);
const v2 = (command: string, args: string[]) => Buffer.concat([pktLine(`command=${command}\n`), pktLine("agent=git/2.39\n"), DELIM, ...args.map((a) => pktLine(a)), FLUSH_PKT]);

describe("PktSniffer", () => {
  test.each([1, 3, 7, 1000])("passes bytes through unchanged and counts lines in chunks of %i", async (size) => {
    const { summary, out } = await sniff(v0Clone, size);
    expect(out.equals(v0Clone)).toBe(true);
    expect(summary).toMatchObject({ wants: 2, haves: 0 });
    expect(classify(summary)).toBe("clone");
  });

  test("kinds: v0 fetch, v2 clone/fetch/ls-refs, shallow and filter", async () => {
    expect(classify((await sniff(v0Fetch, 5)).summary)).toBe("fetch");
    const clone = await sniff(v2("fetch", [`want ${OID}\n`, "deepen 1\n", "filter blob:none\n", "done\n"]), 4);
    expect(clone.summary).toMatchObject({ command: "fetch", wants: 1, haves: 0, shallow: true, filter: true });
    expect(classify(clone.summary)).toBe("clone");
    expect(classify((await sniff(v2("fetch", [`want ${OID}\n`, `have ${OID}\n`]), 9)).summary)).toBe("fetch");
    expect(classify((await sniff(v2("ls-refs", ["peel\n", "symrefs\n", "ref-prefix HEAD\n"]), 2)).summary)).toBe("ls-refs");
    expect(classify((await sniff(v2("object-info", ["size\n"]), 64)).summary)).toBe("other");
  });

  test("garbage stops the sniffing, not the stream", async () => {
    const junk = Buffer.concat([Buffer.from("zzzz not a pkt-line"), pktLine(`want ${OID}\n`)]);
    const { summary, out } = await sniff(junk, 3);
    expect(out.equals(junk)).toBe(true);
    expect(summary.wants).toBe(0);
  });
});

describe("cachesTheRequest (mirror.serve.packCacheScope)", () => {
  const req = (o: Partial<{ command: string; wants: number; haves: number; shallow: boolean; filter: boolean }>) => ({ wants: 0, haves: 0, shallow: false, filter: false, ...o });
  test.each([
    ["clones", req({ command: "fetch", wants: 3 }), true], // a clone
    ["clones", req({ wants: 3 }), true], // a v0 clone
    ["clones", req({ command: "fetch", wants: 1, shallow: true }), true], // --depth 1
    ["clones", req({ command: "fetch", wants: 1, filter: true }), true], // --filter=blob:none
    ["clones", req({ command: "ls-refs" }), true],
    ["clones", req({ command: "fetch", wants: 1, haves: 5 }), false], // an incremental fetch
    ["clones", req({ command: "object-info" }), false],
    ["clones", undefined, false],
    ["all", req({ command: "fetch", wants: 1, haves: 5 }), true],
    ["all", undefined, true],
  ] as const)("%s: %j -> %s", (scope, summary, want) => {
    expect(cachesTheRequest(scope, summary)).toBe(want);
  });
});
