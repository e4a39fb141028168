import { pktLine, FLUSH_PKT } from "./protocol";
import { requestedObjects } from "./wants";

const A = "a".repeat(40);
const B = "B".repeat(40);
const body = (...parts: Array<string | Buffer>) => Buffer.concat(parts.map((p) => (typeof p === "string" ? pktLine(p) : p)));
const DELIM = Buffer.from("0001");

describe("requestedObjects", () => {
  it("reads v0 wants (capabilities after the first) and ignores haves, shallow and deepen lines", () => {
    const r = requestedObjects(body(`want ${A} multi_ack_detailed side-band-64k ofs-delta\n`, `want ${B}\n`, `shallow ${"c".repeat(40)}\n`, "deepen 1\n", FLUSH_PKT, `have ${"d".repeat(40)}\n`, "done\n"));
    expect(r).toEqual({ oids: [A, B.toLowerCase()], refs: [], lsRefs: false });
  });

  it("reads v2 fetch arguments: want, want-ref (well-formed names only), filter ignored; each once", () => {
    const r = requestedObjects(
      body("command=fetch\n", "agent=git/2.39\n", DELIM, `want ${A}\n`, `want ${A}\n`, "want-ref refs/heads/main\n", "want-ref refs/heads/../x\n", "want-ref HEAD@{1}\n", "filter blob:none\n", "done\n", FLUSH_PKT),
    );
    expect(r).toEqual({ oids: [A], refs: ["refs/heads/main"], lsRefs: false });
  });

  it("tells an ls-refs request, and takes sha256 ids but not malformed ones", () => {
    expect(requestedObjects(body("command=ls-refs\n", DELIM, "peel\n", "ref-prefix refs/heads/\n", FLUSH_PKT)).lsRefs).toBe(true);
    const s256 = "e".repeat(64);
    expect(requestedObjects(body(`want ${s256}\n`, `want ${"f".repeat(39)}\n`, "want zzzz\n", FLUSH_PKT)).oids).toEqual([s256]);
  });
});
