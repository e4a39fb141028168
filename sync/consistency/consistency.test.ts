import { createHash } from "node:crypto";
import { makeRefFilter, fingerprint } from "../upstream/refFilter";
import { diffRefs } from "./refDiff";
import { metadataHash, repoHashes } from "./repoHashes";

const A = "a".repeat(40);
const B = "b".repeat(40);
const C = "c".repeat(40);
const keepAll = makeRefFilter([]);
const noPr = makeRefFilter(["refs/pull-requests/*"]);
const id = { project: "PROJ", slug: "app" };
const sha = (s: string) => createHash("sha256").update(s).digest("hex");

describe("repoHashes", () => {
  test("content hash: SHA-256 over sorted '<oid> <ref>' lines, as `for-each-ref | LC_ALL=C sort | sha256sum` computes it", () => {
    const refs = new Map([["refs/tags/v1", B], ["refs/heads/main", A], ["refs/heads/Zed", A], ["refs/heads/x", C]]);
    const h = repoHashes(id, { refs, headTarget: "refs/heads/main" }, keepAll);
    // Whole lines in byte order: by object id first, then "Zed" (Z = 0x5a) before "main" (m = 0x6d).
    expect(h.contentHash).toBe(sha(`${A} refs/heads/Zed\n${A} refs/heads/main\n${B} refs/tags/v1\n${C} refs/heads/x\n`));
    expect(h).toMatchObject({ projectKey: "PROJ", slug: "app", defaultBranch: "refs/heads/main", refs: 4 });
  });

  test("the ref filter applies: excluded refs change neither the hash nor the count", () => {
    const base = repoHashes(id, { refs: new Map([["refs/heads/main", A]]) }, noPr);
    const withPr = repoHashes(id, { refs: new Map([["refs/heads/main", A], ["refs/pull-requests/1/from", B]]) }, noPr);
    expect(withPr.contentHash).toBe(base.contentHash);
    expect(withPr.refs).toBe(1);
  });

  test("content hash ignores HEAD; metadata hash is project, slug and HEAD's target only", () => {
    const refs = new Map([["refs/heads/main", A], ["refs/heads/dev", B]]);
    const m = repoHashes(id, { refs, headTarget: "refs/heads/main" }, keepAll);
    const d = repoHashes(id, { refs, headTarget: "refs/heads/dev" }, keepAll);
    expect(d.contentHash).toBe(m.contentHash);
    expect(d.metadataHash).not.toBe(m.metadataHash);
    expect(m.metadataHash).toBe(sha("project PROJ\nslug app\nHEAD refs/heads/main\n"));
    expect(metadataHash({ project: "PROJ", slug: "other" }, "refs/heads/main")).not.toBe(m.metadataHash);
    expect(repoHashes(id, { refs: new Map([["refs/heads/main", B], ["refs/heads/dev", B]]), headTarget: "refs/heads/main" }, keepAll).metadataHash).toBe(m.metadataHash);
  });

  test("the sync fingerprint is the same ref lines plus HEAD (one definition of the refs)", () => {
    const refs = new Map([["refs/heads/main", A], ["refs/tags/v1", B]]);
    expect(fingerprint(refs, "refs/heads/main", keepAll)).toBe(sha(`HEAD refs/heads/main\n${A} refs/heads/main\n${B} refs/tags/v1\n`));
  });
});

describe("diffRefs", () => {
  const primary = { refs: new Map([["refs/heads/main", A], ["refs/heads/dev", B], ["refs/tags/v1", C], ["refs/pull-requests/1/from", A]]), headTarget: "refs/heads/main" };

  test("equal copies (excluded refs not compared)", () => {
    const mirror = { refs: new Map([["refs/heads/main", A], ["refs/heads/dev", B], ["refs/tags/v1", C]]), headTarget: "refs/heads/main" };
    expect(diffRefs(primary, mirror, noPr)).toEqual({ missing: [], extra: [], differing: [], absent: false, equal: true });
  });

  test("missing, extra and differing refs, and a changed default branch, each named", () => {
    const mirror = { refs: new Map([["refs/heads/main", B], ["refs/tags/v1", C], ["refs/heads/old", A]]), headTarget: "refs/heads/master" };
    expect(diffRefs(primary, mirror, noPr)).toEqual({
      missing: ["refs/heads/dev"],
      extra: ["refs/heads/old"],
      differing: [{ ref: "refs/heads/main", primary: A, mirror: B }],
      head: { primary: "refs/heads/main", mirror: "refs/heads/master" },
      absent: false,
      equal: false,
    });
  });

  test("a repository the mirror does not have: absent, every kept ref missing", () => {
    expect(diffRefs(primary, undefined, noPr)).toMatchObject({ absent: true, equal: false, missing: ["refs/heads/dev", "refs/heads/main", "refs/tags/v1"] });
  });

  test("an empty repository on the primary (no HEAD advertised) equals an empty copy", () => {
    expect(diffRefs({ refs: new Map() }, { refs: new Map(), headTarget: "refs/heads/main" }, keepAll).equal).toBe(true);
  });
});
