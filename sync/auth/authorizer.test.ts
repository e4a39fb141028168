import * as fs from "node:fs";
import * as path from "node:path";
import { tempDir } from "../../testbed/resources";
import { anonymousAuthorizer, primaryAuthorizer } from "./authorizer";
import type { Credentials } from "./credentials";
import type { CheckResult } from "./primaryCheck";
import { authorizerFromConfig } from "./fromConfig";
import { hashToken } from "./tokensFile";

const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}`;
const REPO = { project: "PROJ", slug: "app" };

describe("primaryAuthorizer", () => {
  function setup(answer: (c: Credentials, repo: string) => CheckResult["verdict"]) {
    const calls: string[] = [];
    const a = primaryAuthorizer({
      cache: { allowTtlMs: 60_000 },
      check: async (c, r) => {
        calls.push(`${c.scheme === "basic" ? c.user : "token"}@${r.project}/${r.slug}`);
        return { verdict: answer(c, `${r.project}/${r.slug}`) };
      },
    });
    return { a, calls };
  }

  test("no or unusable credentials: refused without asking the primary", async () => {
    const { a, calls } = setup(() => "allow");
    expect(await a.authorize(undefined, REPO)).toEqual({ allowed: false, reason: "no_credentials" });
    expect(await a.authorize("Digest x", REPO)).toEqual({ allowed: false, reason: "no_credentials" });
    expect(calls).toEqual([]);
  });

  test("decisions are per credentials and per repository, and cached", async () => {
    const { a, calls } = setup((c, repo) => (c.scheme === "basic" && c.secret === "pw" ? (repo === "PROJ/app" ? "allow" : "forbidden") : "bad_credentials"));
    expect(await a.authorize(basic("alice", "pw"), REPO)).toEqual({ allowed: true, principal: "alice", via: "primary" });
    expect(await a.authorize(basic("alice", "pw"), REPO)).toEqual({ allowed: true, principal: "alice", via: "cache" });
    expect(await a.authorize(basic("alice", "wrong"), REPO)).toEqual({ allowed: false, reason: "bad_credentials", principal: "alice" });
    expect(await a.authorize(basic("alice", "pw"), { project: "PROJ", slug: "other" })).toEqual({ allowed: false, reason: "forbidden", principal: "alice" });
    expect(await a.authorize("Bearer tok", REPO)).toMatchObject({ allowed: false, reason: "bad_credentials", principal: "(token)" });
    expect(calls).toEqual(["alice@PROJ/app", "alice@PROJ/app", "alice@PROJ/other", "token@PROJ/app"]);
  });
});

describe("authorizerFromConfig", () => {
  const upstream = { url: "https://bitbucket.example.com" };

  test("anonymous lets everyone in", async () => {
    const a = authorizerFromConfig({ serve: { auth: "anonymous", authCacheTtlMs: 0 }, upstream });
    expect(a.mode).toBe("anonymous");
    expect((await a.authorize(undefined, REPO)).allowed).toBe(true);
    expect((await anonymousAuthorizer().authorize("Basic junk", REPO)).allowed).toBe(true);
  });

  test("tokens reads the tokens file; a token-less request is refused", async () => {
    const file = path.join(tempDir("tokens"), "tokens");
    fs.writeFileSync(file, `ci:${hashToken("s3cret").toString("hex")}\n`);
    const a = authorizerFromConfig({ serve: { auth: "tokens", tokensFile: file, authCacheTtlMs: 0 }, upstream });
    expect(await a.authorize(basic("ci", "s3cret"), REPO)).toEqual({ allowed: true, principal: "ci", via: "token" });
    expect(await a.authorize(undefined, REPO)).toEqual({ allowed: false, reason: "no_credentials" });
    expect(() => authorizerFromConfig({ serve: { auth: "tokens", authCacheTtlMs: 0 }, upstream })).toThrow(/tokensFile/);
  });

  test("primary needs an https primary", () => {
    const a = authorizerFromConfig({ serve: { auth: "primary", authCacheTtlMs: 60_000 }, upstream });
    expect(a.mode).toBe("primary");
    a.close();
    expect(() => authorizerFromConfig({ serve: { auth: "primary", authCacheTtlMs: 60_000 }, upstream: { url: "http://bb.example.com" } })).toThrow(/https/);
  });
});
