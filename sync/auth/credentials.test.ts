import { authorizationHeader, credentialsFingerprint, parseAuthorization, principalOf } from "./credentials";

const basic = (s: string) => `Basic ${Buffer.from(s).toString("base64")}`;

describe("parseAuthorization", () => {
  test.each([
    [basic("alice:s3cret"), { scheme: "basic", user: "alice", secret: "s3cret" }],
    [basic("alice:pa:ss:word"), { scheme: "basic", user: "alice", secret: "pa:ss:word" }],
    [basic("alice@example.com:tok"), { scheme: "basic", user: "alice@example.com", secret: "tok" }],
    [`basic ${Buffer.from("a:b").toString("base64")}`, { scheme: "basic", user: "a", secret: "b" }],
    ["Bearer BBDC-abc.def_123", { scheme: "bearer", token: "BBDC-abc.def_123" }],
    ["bearer   xyz  ", { scheme: "bearer", token: "xyz" }],
  ])("%s", (header, want) => expect(parseAuthorization(header)).toEqual(want));

  test("absent", () => expect(parseAuthorization(undefined)).toBeUndefined());

  test.each([
    "Basic",
    "Basic !!!!",
    basic("no-colon"),
    basic(":only-secret"),
    basic("alice:"),
    basic("ali\nce:x"),
    basic("ali\x1bce:x"),
    "Digest username=alice",
    "Bearer",
    "Bearer a b",
    "NTLM TlRMTVNTUAAB",
    "x".repeat(9000),
  ])("malformed: %j", (header) => expect(parseAuthorization(header)).toBe("malformed"));

  test("repeated headers are malformed", () => expect(parseAuthorization(["Bearer a", "Bearer b"])).toBe("malformed"));
});

describe("forwarding and fingerprints", () => {
  test("the forwarded header is re-encoded from the parsed credentials", () => {
    expect(authorizationHeader({ scheme: "basic", user: "alice", secret: "p:w" })).toBe(basic("alice:p:w"));
    expect(authorizationHeader({ scheme: "bearer", token: "t" })).toBe("Bearer t");
  });

  test("fingerprints differ by user, secret, scheme and scope, hide the secret, and depend on the key", () => {
    const key = Buffer.alloc(32, 7);
    const a = credentialsFingerprint({ scheme: "basic", user: "alice", secret: "pw" }, "P/r", key);
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(a).not.toContain("pw");
    expect(credentialsFingerprint({ scheme: "basic", user: "alice", secret: "pw" }, "P/r", key)).toBe(a);
    const others = [
      credentialsFingerprint({ scheme: "basic", user: "alice", secret: "pw2" }, "P/r", key),
      credentialsFingerprint({ scheme: "basic", user: "alic", secret: "epw" }, "P/r", key),
      credentialsFingerprint({ scheme: "basic", user: "alice", secret: "pw" }, "P/s", key),
      credentialsFingerprint({ scheme: "bearer", token: "pw" }, "P/r", key),
      credentialsFingerprint({ scheme: "basic", user: "alice", secret: "pw" }, "P/r", Buffer.alloc(32, 8)),
    ];
    expect(new Set([a, ...others]).size).toBe(6);
  });

  test("logs name the user, never the secret", () => {
    expect(principalOf({ scheme: "basic", user: "alice", secret: "pw" })).toBe("alice");
    expect(principalOf({ scheme: "bearer", token: "secret-token" })).toBe("(token)");
  });
});
