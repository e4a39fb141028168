/**
 * The access check against the primary's REST API, over real TLS to the Bitbucket double.
 */
import * as fs from "node:fs";
import { createCa } from "../../testbed/tls";
import { startBitbucketDouble, BitbucketDouble } from "../../testbed/bitbucketDouble";
import { PrimaryRepoCheck, repoResourceUrl, verdictFor } from "./primaryCheck";

describe("verdictFor", () => {
  test.each([
    [200, "", "allow"],
    [401, '{"errors":[{"exceptionName":"com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException"}]}', "bad_credentials"],
    [401, "", "bad_credentials"],
    [401, '{"errors":[{"exceptionName":"com.atlassian.bitbucket.AuthorisationException"}]}', "forbidden"],
    [403, "", "forbidden"],
    [404, "", "forbidden"],
    [302, "", "unavailable"],
    [429, "", "unavailable"],
    [500, "", "unavailable"],
    [503, "", "unavailable"],
  ])("%i %s -> %s", (status, body, verdict) => expect(verdictFor(status, body)).toBe(verdict));

  test("resource URL keeps a context path and encodes names", () => {
    expect(repoResourceUrl("https://bb.example.com/bitbucket/", { project: "~alice", slug: "r" })).toBe("https://bb.example.com/bitbucket/rest/api/1.0/projects/~alice/repos/r");
  });

  test("refuses a non-https primary (credentials would travel in clear)", () => {
    expect(() => new PrimaryRepoCheck({ baseUrl: "http://bb.example.com" })).toThrow(/https/);
  });
});

describe("PrimaryRepoCheck against the Bitbucket double (real TLS)", () => {
  let double: BitbucketDouble;
  let caPem: string;
  let check: PrimaryRepoCheck;

  beforeAll(async () => {
    const ca = await createCa();
    caPem = ca.certPem;
    const cert = await ca.issueServerCert(["localhost", "127.0.0.1"]);
    double = await startBitbucketDouble({ cert: fs.readFileSync(cert.chainPath, "utf8"), key: fs.readFileSync(cert.keyPath, "utf8") });
    double.addRepo("PROJ", "open");
    double.addRepo("PROJ", "secret");
    double.addUser("alice", "alice-pw", { token: "alice-token" });
    double.addUser("bob", "bob-pw", { canRead: { repos: ["PROJ/open"] } });
    check = new PrimaryRepoCheck({ baseUrl: double.url, caPem, timeoutMs: 5000 });
  });
  afterAll(() => check.close());

  test("allow, bad credentials, not permitted, missing", async () => {
    const r = (user: string, secret: string, slug: string) => check.check({ scheme: "basic", user, secret }, { project: "PROJ", slug });
    expect((await r("alice", "alice-pw", "secret")).verdict).toBe("allow");
    expect((await check.check({ scheme: "bearer", token: "alice-token" }, { project: "PROJ", slug: "secret" })).verdict).toBe("allow");
    expect((await r("alice", "wrong", "secret")).verdict).toBe("bad_credentials");
    expect((await r("mallory", "x", "open")).verdict).toBe("bad_credentials");
    expect((await r("bob", "bob-pw", "open")).verdict).toBe("allow");
    expect((await r("bob", "bob-pw", "secret")).verdict).toBe("forbidden");
    expect((await r("alice", "alice-pw", "nope")).verdict).toBe("forbidden");
    // The double saw the client's own credentials, once per check.
    expect(double.requests.filter((q) => q.user === "alice").length).toBeGreaterThan(0);
  });

  test("a primary with a certificate we do not trust is unavailable, never trusted", async () => {
    const untrusting = new PrimaryRepoCheck({ baseUrl: double.url, timeoutMs: 5000 });
    const r = await untrusting.check({ scheme: "basic", user: "alice", secret: "alice-pw" }, { project: "PROJ", slug: "open" });
    untrusting.close();
    expect(r.verdict).toBe("unavailable");
    expect(r.error).toMatch(/certificate/i);
  });

  test("outage: 503 and refused connections are unavailable", async () => {
    const c = { scheme: "basic" as const, user: "alice", secret: "alice-pw" };
    await double.setDown("503");
    expect((await check.check(c, { project: "PROJ", slug: "open" })).verdict).toBe("unavailable");
    await double.setDown("refused");
    expect((await check.check(c, { project: "PROJ", slug: "open" })).verdict).toBe("unavailable");
    await double.setDown(false);
    expect((await check.check(c, { project: "PROJ", slug: "open" })).verdict).toBe("allow");
  });
});
