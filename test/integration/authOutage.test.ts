/**
 * mirror.serve.auth=primary against a primary that misbehaves (issue 12, item 8), with the
 * Bitbucket REST double over real TLS and a black-hole TCP server (accepts, never answers):
 * - a primary that stops answering costs one check's timeout, then is remembered as
 *   unavailable: known users get the outage grace at once, without a connection per request;
 * - denials never evict remembered allows (separate bounded caches);
 * - bogus credentials do not cost a REST call each: wrong credentials are remembered for every
 *   repository, and a client's failed checks are budgeted (then 429, no call).
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { primaryAuthorizer } from "../../sync/auth/authorizer";
import { PrimaryRepoCheck } from "../../sync/auth/primaryCheck";
import type { RepoId } from "../../sync/types";
import { startBitbucketDouble, BitbucketDouble } from "../../testbed/bitbucketDouble";
import { startInProcessGitServer } from "../../testbed/gitServer";
import { initBare } from "../../testbed/repos";
import { onCleanup, tempDir } from "../../testbed/resources";
import { createCa } from "../../testbed/tls";

jest.setTimeout(120_000);

const APP: RepoId = { project: "PROJ", slug: "app" };
const basic = (user: string, pw: string) => `Basic ${Buffer.from(`${user}:${pw}`).toString("base64")}`;

let double: BitbucketDouble;
let caPem: string;

beforeAll(async () => {
  const ca = await createCa();
  caPem = ca.certPem;
  const cert = await ca.issueServerCert(["localhost", "127.0.0.1"]);
  double = await startBitbucketDouble({ cert: fs.readFileSync(cert.chainPath, "utf8"), key: fs.readFileSync(cert.keyPath, "utf8") });
  for (let i = 0; i < 300; i++) double.addRepo("PROJ", i === 0 ? "app" : `r${i}`);
  double.addUser("alice", "alice-pw");
});

/** Accepts TCP connections and never says a word: a hung primary. */
async function blackHole(): Promise<{ url: string; connections: () => number }> {
  let n = 0;
  const held: net.Socket[] = [];
  const srv = net.createServer((s) => {
    n++;
    held.push(s);
    s.on("error", () => undefined);
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  onCleanup(() => {
    for (const s of held) s.destroy();
    return new Promise<void>((r) => srv.close(() => r()));
  });
  return { url: `https://127.0.0.1:${(srv.address() as net.AddressInfo).port}`, connections: () => n };
}

const restCalls = (user?: string) => double.requests.filter((r) => r.path.startsWith("/rest/api/1.0/projects/") && (user === undefined || r.user === user)).length;

test("a primary that accepts but never answers: one timeout, then the outage grace at once for known users", async () => {
  const hole = await blackHole();
  const healthy = new PrimaryRepoCheck({ baseUrl: double.url, caPem });
  const hung = new PrimaryRepoCheck({ baseUrl: hole.url, timeoutMs: 1000 });
  let current = healthy;
  // allowTtl 1 ms: every request asks the primary again, so only the grace can answer during the outage.
  const auth = primaryAuthorizer({ check: (c, r) => current.check(c, r), cache: { allowTtlMs: 1, graceMs: 3_600_000 }, breakerOpenMs: 600_000, close: () => (healthy.close(), hung.close()) });
  onCleanup(() => auth.close());
  expect(await auth.authorize(basic("alice", "alice-pw"), APP, "198.51.100.1")).toMatchObject({ allowed: true, via: "primary" });

  current = hung;
  const results = [];
  for (let i = 0; i < 20; i++) results.push(await auth.authorize(basic("alice", "alice-pw"), APP, "198.51.100.1"));
  expect(results.every((r) => r.allowed && r.via === "grace")).toBe(true);
  // Someone the mirror never saw: "unavailable" (503), not a guess, and no new connection either.
  expect(await auth.authorize(basic("mallory", "x"), APP, "198.51.100.2")).toMatchObject({ allowed: false, reason: "unavailable" });
  // One connection: the check that timed out; every later one was answered from the breaker.
  expect(hole.connections()).toBe(1);
  expect(auth.breaker.shortCircuited).toBeGreaterThanOrEqual(20);
});

test("denials do not evict remembered allows; the same bogus credentials cost one REST call for any number of repositories", async () => {
  const check = new PrimaryRepoCheck({ baseUrl: double.url, caPem });
  const auth = primaryAuthorizer({ check: (c, r) => check.check(c, r), cache: { allowTtlMs: 3_600_000, maxEntries: 100, maxDenials: 100 }, failures: { burst: 1_000_000 }, close: () => check.close() });
  onCleanup(() => auth.close());
  expect(await auth.authorize(basic("alice", "alice-pw"), APP, "198.51.100.1")).toMatchObject({ allowed: true, via: "primary" });

  // 500 different bogus credentials from 500 addresses: five times the denial cache's size.
  for (let i = 0; i < 500; i++) expect(await auth.authorize(basic(`bogus${i}`, "pw"), APP, `10.1.${i >> 8}.${i & 255}`)).toMatchObject({ allowed: false, reason: "bad_credentials" });
  const before = restCalls("alice");
  expect(await auth.authorize(basic("alice", "alice-pw"), APP, "198.51.100.1")).toMatchObject({ allowed: true, via: "cache" });
  expect(restCalls("alice")).toBe(before);

  // One wrong password tried on 299 repositories: the primary is asked once.
  const calls = restCalls();
  for (let i = 1; i < 300; i++) await auth.authorize(basic("alice", "wrong"), { project: "PROJ", slug: `r${i}` }, "198.51.100.3");
  expect(restCalls() - calls).toBe(1);
});

test("a client spraying bogus credentials gets 429 after its budget, without a REST call each (through the Git handler)", async () => {
  const dir = path.join(tempDir("auth"), "app.git");
  await initBare(dir);
  const check = new PrimaryRepoCheck({ baseUrl: double.url, caPem });
  const authorizer = primaryAuthorizer({ check: (c, r) => check.check(c, r), cache: { allowTtlMs: 60_000 }, failures: { burst: 10, refillMs: 600_000 }, close: () => check.close() });
  const srv = await startInProcessGitServer(new Map([["PROJ/app", dir]]), { authorizer });
  const calls = restCalls();
  const statuses: number[] = [];
  for (let i = 0; i < 200; i++) {
    const r = await srv.send("GET", "/scm/PROJ/app.git/info/refs?service=git-upload-pack", { headers: { Authorization: basic(`spray${i}`, "pw"), "X-Real-IP": "203.0.113.7" } });
    statuses.push(r.status);
  }
  expect(statuses.slice(0, 10).every((s) => s === 401)).toBe(true);
  expect(statuses.slice(10).every((s) => s === 429)).toBe(true);
  expect(restCalls() - calls).toBe(10);
  // Another address is not affected, and a known user's access goes on.
  const other = await srv.send("GET", "/scm/PROJ/app.git/info/refs?service=git-upload-pack", { headers: { Authorization: basic("alice", "alice-pw"), "X-Real-IP": "203.0.113.8" } });
  expect(other.status).toBe(200);
  await srv.close();
});
