import * as fs from "node:fs";
import * as path from "node:path";
import { tempDir } from "../../testbed/resources";
import { hashToken, matchToken, parseTokensFile, TokenStore } from "./tokensFile";

const hex = (t: string) => hashToken(t).toString("hex");

describe("parseTokensFile", () => {
  test("NAME:SHA256 lines; comments and blank lines ignored; CRLF accepted", () => {
    const { entries, problems } = parseTokensFile(`# tokens\n\nci-bot:${hex("t1")}\r\n  deploy@prod : ${hex("t2").toUpperCase()}  \n`);
    expect(problems).toEqual([]);
    expect(entries.map((e) => e.name)).toEqual(["ci-bot", "deploy@prod"]);
    expect(entries[1].hash.equals(hashToken("t2"))).toBe(true);
  });

  test("plaintext tokens, bad names and duplicates are refused, and the message never echoes the value", () => {
    const { entries, problems } = parseTokensFile(`a:plaintext-token-value\nb c:${hex("x")}\nnocolon\nd:${hex("1")}\nd:${hex("2")}\n:${hex("3")}\n`);
    expect(entries.map((e) => e.name)).toEqual(["d"]);
    expect(problems.map((p) => p.line)).toEqual([1, 2, 3, 5, 6]);
    expect(JSON.stringify(problems)).not.toContain("plaintext-token-value");
    expect(problems[0].message).toContain("sha256sum");
  });
});

describe("matchToken", () => {
  const { entries } = parseTokensFile(`ci:${hex("secret-1")}\nops:${hex("secret-2")}\n`);
  test("Basic NAME:TOKEN must match that name's token", () => {
    expect(matchToken(entries, { scheme: "basic", user: "ci", secret: "secret-1" })?.name).toBe("ci");
    expect(matchToken(entries, { scheme: "basic", user: "ci", secret: "secret-2" })).toBeUndefined();
    expect(matchToken(entries, { scheme: "basic", user: "nobody", secret: "secret-1" })).toBeUndefined();
  });
  test("Bearer TOKEN matches whichever entry holds it", () => {
    expect(matchToken(entries, { scheme: "bearer", token: "secret-2" })?.name).toBe("ops");
    expect(matchToken(entries, { scheme: "bearer", token: "nope" })).toBeUndefined();
    expect(matchToken(entries, { scheme: "bearer", token: hex("secret-1") })).toBeUndefined(); // the hash is not the token
  });
});

describe("TokenStore", () => {
  test("re-reads the file when it changes: new tokens work, removed ones stop; unreadable = nothing accepted", () => {
    const file = path.join(tempDir("tokens"), "tokens");
    fs.writeFileSync(file, `ci:${hex("one")}\n`, { mode: 0o600 });
    const problems: string[] = [];
    const store = new TokenStore(file, { checkEveryMs: 0, onProblem: (m) => problems.push(m) });
    const ci = (secret: string) => store.verify({ scheme: "basic", user: "ci", secret })?.name;
    expect(ci("one")).toBe("ci");

    // Replace atomically, as an operator's tooling would.
    fs.writeFileSync(`${file}.new`, `ci:${hex("two")}\n`);
    fs.renameSync(`${file}.new`, file);
    expect(ci("one")).toBeUndefined();
    expect(ci("two")).toBe("ci");

    fs.rmSync(file);
    expect(ci("two")).toBeUndefined();
    expect(problems.join("\n")).toMatch(/cannot read the tokens file/);

    fs.writeFileSync(file, `ci:${hex("three")}\n`);
    expect(ci("three")).toBe("ci");
  });

  test("checks the file at most once per interval", () => {
    const file = path.join(tempDir("tokens"), "tokens");
    fs.writeFileSync(file, `ci:${hex("one")}\n`);
    let t = 0;
    const store = new TokenStore(file, { checkEveryMs: 1000, now: () => t });
    fs.writeFileSync(file, `ci:${hex("other-and-longer")}\n`);
    t = 999;
    expect(store.verify({ scheme: "bearer", token: "one" })?.name).toBe("ci");
    t = 1000;
    expect(store.verify({ scheme: "bearer", token: "one" })).toBeUndefined();
    expect(store.names()).toEqual(["ci"]);
  });
});
