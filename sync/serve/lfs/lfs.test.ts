/**
 * The pure decisions of LFS serving: which paths are LFS and what they name (the only client
 * input that reaches a file name is a validated oid), the batch request check, the object
 * check that holds back the last chunk of a corrupt object, the hrefs' base URL, and the
 * remembered upstream actions (scoped to the credentials that got them).
 */
import { createHash, randomBytes } from "node:crypto";
import { PassThrough } from "node:stream";
import { ActionCache } from "./actionCache";
import { objectHref, parseBatch } from "./batch";
import { publicBase } from "./lfsContext";
import { isLfsTarget, parseLfsRequest } from "./lfsPath";
import { LfsStore } from "./lfsStore";
import { ObjectCheck, ObjectMismatch } from "./objectCheck";
import { tempDir } from "../../../testbed/resources";

const OID = "a".repeat(64);

describe("parseLfsRequest", () => {
  test.each([
    ["POST", "/scm/PROJ/app.git/info/lfs/objects/batch", { kind: "batch", repo: { project: "PROJ", slug: "app" } }],
    ["POST", "/scm/PROJ/app/info/lfs/objects/batch", { kind: "batch", repo: { project: "PROJ", slug: "app" } }],
    ["GET", `/scm/PROJ/app.git/info/lfs/objects/${OID}`, { kind: "object", oid: OID }],
    ["PUT", `/scm/PROJ/app.git/info/lfs/objects/${OID}`, { kind: "object", oid: OID }],
    ["POST", `/scm/PROJ/app.git/info/lfs/objects/${OID}/verify`, { kind: "verify", oid: OID }],
    ["POST", "/scm/PROJ/app.git/info/lfs/locks/verify", { kind: "locks", rest: "locks/verify" }],
    ["GET", "/scm/PROJ/app.git/info/lfs/locks?path=a", { kind: "locks", rest: "locks" }],
  ])("%s %s", (method, target, want) => {
    expect(parseLfsRequest(method, target)).toMatchObject({ ok: true, ...want });
  });

  test.each([
    ["GET", `/scm/PROJ/app.git/info/lfs/objects/${"A".repeat(64)}`, 404], // upper-case hex is not an oid
    ["GET", "/scm/PROJ/app.git/info/lfs/objects/../../../../etc/passwd", 400],
    ["GET", `/scm/PROJ/app.git/info/lfs/objects/%2e%2e%2f${OID}`, 400],
    ["GET", `/scm/PROJ/app.git/info/lfs/objects/${OID.slice(1)}`, 404],
    ["GET", "/scm/PROJ/app.git/info/lfs/objects/batch", 405],
    ["DELETE", `/scm/PROJ/app.git/info/lfs/objects/${OID}`, 405],
    ["POST", "/scm/PROJ/..git/info/lfs/objects/batch", 400],
    ["POST", "/scm/PROJ/app.git/info/lfs/objects", 404],
  ])("%s %s -> %i", (method, target, status) => {
    expect(parseLfsRequest(method, target)).toMatchObject({ ok: false, status });
  });

  test("isLfsTarget takes LFS paths only, leaving clones to the Git routes", () => {
    expect(isLfsTarget("/scm/PROJ/app.git/info/lfs/objects/batch")).toBe(true);
    expect(isLfsTarget("/scm/PROJ/app.git/info/refs?service=git-upload-pack")).toBe(false);
    expect(isLfsTarget("/scm/PROJ/app.git/git-upload-pack")).toBe(false);
  });
});

describe("parseBatch", () => {
  test("a download request", () => {
    expect(parseBatch({ operation: "download", transfers: ["basic"], objects: [{ oid: OID, size: 3 }] })).toEqual({ operation: "download", objects: [{ oid: OID, size: 3 }] });
  });
  test("the ref is kept (the primary's branch permissions may depend on it)", () => {
    expect(parseBatch({ operation: "upload", ref: { name: "refs/heads/main" }, objects: [] })).toEqual({ operation: "upload", objects: [], ref: { name: "refs/heads/main" } });
  });
  test.each([
    [{ operation: "delete", objects: [] }, /operation/],
    [{ operation: "download", transfers: ["tus"], objects: [] }, /basic/],
    [{ operation: "download", hash_algo: "sha512", objects: [] }, /sha256/],
    [{ operation: "download", objects: [{ oid: OID, size: -1 }] }, /size/],
    [{ operation: "download", objects: [{ oid: OID, size: 1.5 }] }, /size/],
    [{ operation: "download", objects: Array.from({ length: 1001 }, () => ({ oid: OID, size: 1 })) }, /at most/],
    [null, /object/],
  ])("refused: %j", (body, msg) => {
    expect(parseBatch(body)).toMatch(msg);
  });
  test("hrefs are the mirror's own", () => {
    expect(objectHref("https://m.example", { project: "P", slug: "r" }, OID)).toBe(`https://m.example/scm/P/r.git/info/lfs/objects/${OID}`);
    expect(objectHref("https://m.example", { project: "P", slug: "r" }, OID, true)).toBe(`https://m.example/scm/P/r.git/info/lfs/objects/${OID}/verify`);
  });
});

describe("publicBase", () => {
  test("from nginx's forwarded headers, the port dropped when 443", () => {
    expect(publicBase({ "x-forwarded-host": "mirror.test", "x-forwarded-port": "8443", "x-forwarded-proto": "https" }, "https://x")).toBe("https://mirror.test:8443");
    expect(publicBase({ "x-forwarded-host": "mirror.test", "x-forwarded-port": "443", "x-forwarded-proto": "https" }, "https://x")).toBe("https://mirror.test");
  });
  test("setup.baseUrl without them, or with a host that is not a host name", () => {
    expect(publicBase({}, "https://mirror.example/")).toBe("https://mirror.example");
    expect(publicBase({ "x-forwarded-host": "evil/x?", "x-forwarded-proto": "https" }, "https://mirror.example")).toBe("https://mirror.example");
  });
});

async function through(check: ObjectCheck, chunks: Buffer[]): Promise<{ out: Buffer; error?: Error }> {
  const src = new PassThrough();
  const got: Buffer[] = [];
  check.on("data", (c: Buffer) => got.push(c));
  const done = new Promise<Error | undefined>((resolve) => {
    check.on("end", () => resolve(undefined));
    check.on("error", resolve);
  });
  src.pipe(check);
  for (const c of chunks) src.write(c);
  src.end();
  const error = await done;
  return { out: Buffer.concat(got), error };
}

describe("ObjectCheck", () => {
  const content = randomBytes(100_000);
  const oid = createHash("sha256").update(content).digest("hex");
  const parts = [content.subarray(0, 40_000), content.subarray(40_000, 90_000), content.subarray(90_000)];

  test("an intact object passes whole", async () => {
    const r = await through(new ObjectCheck(oid, content.length), parts);
    expect(r.error).toBeUndefined();
    expect(r.out.equals(content)).toBe(true);
  });
  test("a corrupt object errors and its last chunk is never passed on", async () => {
    const bad = Buffer.from(content);
    bad[5] ^= 1;
    const r = await through(new ObjectCheck(oid, bad.length), [bad.subarray(0, 40_000), bad.subarray(40_000, 90_000), bad.subarray(90_000)]);
    expect(r.error).toBeInstanceOf(ObjectMismatch);
    expect(r.out.length).toBeLessThan(content.length);
  });
  test("a short or long object errors", async () => {
    expect((await through(new ObjectCheck(oid, content.length), parts.slice(0, 2))).error).toBeInstanceOf(ObjectMismatch);
    expect((await through(new ObjectCheck(oid, content.length), [...parts, Buffer.from("x")])).error).toBeInstanceOf(ObjectMismatch);
  });
});

describe("LfsStore", () => {
  test("content-addressed paths from validated oids only; incoming emptied at start", () => {
    const root = tempDir("lfs-store");
    const store = new LfsStore(`${root}/objects`, `${root}/incoming`);
    expect(store.pathOf(OID)).toBe(`${root}/objects/aa/aa/${OID}`);
    expect(() => store.pathOf("../../etc/passwd")).toThrow(/not an LFS object id/);
    expect(store.size(OID)).toBeUndefined();
  });
});

describe("ActionCache", () => {
  const repo = { project: "P", slug: "r" };
  const answer = { oid: OID, size: 1, actions: { download: { href: "https://p/x", expires_in: 60 } } };
  test("an action is used only with the credentials that got it, and not past its expiry", () => {
    let now = 0;
    const c = new ActionCache(10, () => now);
    const alice = { scheme: "basic" as const, user: "alice", secret: "pw" };
    c.remember(alice, repo, "download", answer);
    expect(c.get(alice, repo, "download", OID)).toBe(answer);
    expect(c.get({ scheme: "basic", user: "bob", secret: "pw" }, repo, "download", OID)).toBeUndefined();
    expect(c.get(undefined, repo, "download", OID)).toBeUndefined();
    expect(c.get(alice, { project: "P", slug: "other" }, "download", OID)).toBeUndefined();
    now = 56_000;
    expect(c.get(alice, repo, "download", OID)).toBeUndefined();
  });
  test("bounded: the oldest go first", () => {
    const c = new ActionCache(2, () => 0);
    for (const o of ["1", "2", "3"]) c.remember(undefined, repo, "download", { ...answer, oid: o.repeat(64) });
    expect(c.get(undefined, repo, "download", "1".repeat(64))).toBeUndefined();
    expect(c.get(undefined, repo, "download", "3".repeat(64))).toBeDefined();
  });
});
