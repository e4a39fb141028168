import { createHmac } from "node:crypto";
import { decideWebhook } from "./webhookEvent";
import { parseSignatureHeader, signBody, verifySignature } from "./webhookSignature";

describe("webhook signature", () => {
  const body = Buffer.from('{"eventKey":"repo:refs_changed"}');

  test("signBody is sha256=<hex HMAC of the raw body>", () => {
    expect(signBody("s", body)).toBe(`sha256=${createHmac("sha256", "s").update(body).digest("hex")}`);
  });

  test.each<[string, string | string[] | undefined, boolean]>([
    ["correct", signBody("s", body), true],
    ["upper-case hex", signBody("s", body).replace(/[a-f]/g, (c) => c.toUpperCase()).replace("SHA256", "sha256"), true],
    ["other secret", signBody("t", body), false],
    ["missing", undefined, false],
    ["empty", "", false],
    ["no algorithm", signBody("s", body).slice("sha256=".length), false],
    ["sha1", "sha1=" + createHmac("sha1", "s").update(body).digest("hex"), false],
    ["truncated", signBody("s", body).slice(0, -2), false],
    ["sent twice", [signBody("s", body), signBody("s", body)], false],
  ])("%s", (_name, header, ok) => {
    expect(verifySignature(["s"], body, header)).toBe(ok);
  });

  test("any of several secrets (rotation)", () => {
    expect(verifySignature(["old", "new"], body, signBody("new", body))).toBe(true);
    expect(verifySignature(["old", "new"], body, signBody("other", body))).toBe(false);
    expect(verifySignature([], body, signBody("", body))).toBe(false);
  });

  test("a changed byte breaks it", () => {
    const sig = signBody("s", body);
    expect(verifySignature(["s"], Buffer.from(body.toString().replace("refs", "refz")), sig)).toBe(false);
  });

  test("parseSignatureHeader", () => {
    expect(parseSignatureHeader(`sha256=${"ab".repeat(32)}`)?.length).toBe(32);
    expect(parseSignatureHeader(`sha256=${"zz".repeat(32)}`)).toBeUndefined();
  });
});

describe("decideWebhook", () => {
  const b = (v: unknown) => Buffer.from(JSON.stringify(v));
  const repo = (slug: string, key: string) => ({ slug, project: { key } });

  test.each<[string, string | undefined, Buffer, unknown]>([
    ["push", "repo:refs_changed", b({ eventKey: "repo:refs_changed", repository: repo("my-repo", "PROJ"), changes: [{ ref: { id: "refs/heads/main" }, fromHash: "a", toHash: "b", type: "UPDATE" }] }), { kind: "refs_changed", eventKey: "repo:refs_changed", repo: "PROJ/my-repo", changes: [{ refId: "refs/heads/main", fromHash: "a", toHash: "b", type: "UPDATE" }] }],
    ["push without changes array", "repo:refs_changed", b({ eventKey: "repo:refs_changed", repository: repo("r", "P") }), { kind: "refs_changed", eventKey: "repo:refs_changed", repo: "P/r", changes: [] }],
    ["personal project", undefined, b({ eventKey: "repo:refs_changed", repository: repo("dots.in_slug", "~ADMIN") }), { kind: "refs_changed", eventKey: "repo:refs_changed", repo: "~ADMIN/dots.in_slug", changes: [] }],
    ["body event key wins over header", "diagnostics:ping", b({ eventKey: "repo:refs_changed", repository: repo("r", "P") }), { kind: "refs_changed", eventKey: "repo:refs_changed", repo: "P/r", changes: [] }],
    ["header event key when body has none", "repo:refs_changed", b({ repository: repo("r", "P") }), { kind: "refs_changed", eventKey: "repo:refs_changed", repo: "P/r", changes: [] }],
    ["ping with JSON body", "diagnostics:ping", b({ test: true }), { kind: "ping" }],
    ["ping with non-JSON body", "diagnostics:ping", Buffer.from("hello"), { kind: "ping" }],
    ["rename", "repo:modified", b({ eventKey: "repo:modified", old: repo("a", "P"), new: repo("b", "P") }), { kind: "catalog", eventKey: "repo:modified", repos: ["P/a", "P/b"] }],
    ["fork", "repo:forked", b({ eventKey: "repo:forked", repository: repo("fork", "~USER") }), { kind: "catalog", eventKey: "repo:forked", repos: ["~USER/fork"] }],
    ["pull request", "pr:opened", b({ eventKey: "pr:opened" }), { kind: "ignored", eventKey: "pr:opened" }],
    ["not JSON", "repo:refs_changed", Buffer.from("{"), { kind: "malformed", message: "body is not valid JSON" }],
    ["JSON array", "repo:refs_changed", b([1]), { kind: "malformed", message: "body must be a JSON object" }],
    ["no event key", undefined, b({}), { kind: "malformed", message: expect.stringContaining("no event key") }],
    ["slug with slash", "repo:refs_changed", b({ repository: repo("a/b", "P") }), { kind: "malformed", message: expect.any(String) }],
    ["dot-dot slug", "repo:refs_changed", b({ repository: repo("..", "P") }), { kind: "malformed", message: expect.any(String) }],
    ["project key missing", "repo:refs_changed", b({ repository: { slug: "r" } }), { kind: "malformed", message: expect.any(String) }],
    ["numeric slug", "repo:refs_changed", b({ repository: { slug: 5, project: { key: "P" } } }), { kind: "malformed", message: expect.any(String) }],
  ])("%s", (_name, header, body, want) => {
    expect(decideWebhook(header, body)).toEqual(want);
  });

  test("changes are capped", () => {
    const changes = Array.from({ length: 5000 }, (_, i) => ({ refId: `refs/heads/b${i}` }));
    const d = decideWebhook("repo:refs_changed", b({ repository: repo("r", "P"), changes }));
    expect(d.kind === "refs_changed" && d.changes.length).toBe(1000);
  });
});
