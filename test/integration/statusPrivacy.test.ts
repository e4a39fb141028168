/**
 * The public /status through the rendered nginx site is coarse (issue 12, item 10): no SSH
 * address of the primary, no repository names in errors. The details are on /status/detail,
 * which only the daemon's own listener serves: nginx answers 404 for it, to every address.
 */
import { startInProcessGitServer, InProcessGitServer } from "../../testbed/gitServer";
import { mirrorCertificate, startTlsFront, TlsFront } from "../../testbed/mirrorBehindNginx";

jest.setTimeout(120_000);

const SSH_ERROR = "ssh: connect to host git.internal.example.com port 7999: Connection refused";

let srv: InProcessGitServer;
let front: TlsFront;

beforeAll(async () => {
  srv = await startInProcessGitServer(new Map());
  srv.board.setInfo({ upstreamUrl: "https://bitbucket.internal.example.com" });
  srv.board.setCatalog(["SECRET/payroll", "PROJ/app"]);
  srv.board.syncSucceeded("PROJ/app", { durationMs: 10, changed: true, bytes: 1 });
  srv.board.syncFailed("SECRET/payroll", new Error(`fetch SECRET/payroll: ${SSH_ERROR}`), { nextRetryAt: Date.now() + 60_000 });
  srv.board.primaryReachable(false, new Error(SSH_ERROR));
  srv.board.reconcileDone({ durationMs: 3, changed: 0, checked: 1, error: `cannot list SECRET/payroll: ${SSH_ERROR}` });
  // The internal allow-list would let loopback read /status/*: /status/detail must be refused anyway.
  front = await startTlsFront(await mirrorCertificate(), { host: "127.0.0.1", port: srv.port });
});
afterAll(() => srv.close());

test("public /status through nginx: Bitbucket's fields, and no address, error text or repository name", async () => {
  const r = await front.request("GET", "/status");
  const text = r.body.toString("utf8");
  expect(JSON.parse(text)).toMatchObject({ state: expect.any(String), syncedRepos: 1, totalRepos: 2, primary: { reachable: false } });
  expect(text).not.toMatch(/git\.internal|7999|Connection refused|SECRET|payroll|bitbucket\.internal/);
});

test("/status/detail: 404 through nginx, the details on the daemon's own listener", async () => {
  const viaNginx = await front.request("GET", "/status/detail");
  expect(viaNginx.status).toBe(404);
  expect(viaNginx.body.toString()).not.toMatch(/7999|payroll/);
  const direct = await srv.send("GET", "/status/detail", { headers: {} });
  expect(direct.status).toBe(200);
  const doc = JSON.parse(direct.body.toString("utf8")) as { primary: { lastError: string; url: string }; lastReconcile: { error: string } };
  expect(doc.primary.lastError).toContain("port 7999");
  expect(doc.primary.url).toBe("https://bitbucket.internal.example.com");
  expect(doc.lastReconcile.error).toContain("SECRET/payroll");
});

test("the daemon itself refuses /status/detail to a request the proxy forwarded (defence in depth)", async () => {
  const r = await srv.send("GET", "/status/detail", { headers: { "X-Forwarded-For": "127.0.0.1" } });
  expect(r.status).toBe(404);
});

test("the repo-hashes API and the resync route are not proxied: nginx answers 404 itself (issue 14: hashes of private repositories stay on the host)", async () => {
  for (const [method, p] of [["GET", "/rest/mirroring/latest/repo-hashes"], ["GET", "/rest/mirroring/latest/repo-hashes/SECRET/payroll"], ["POST", "/rest/mirroring/latest/repos/SECRET/payroll/synchronization"]]) {
    const r = await front.request(method, p);
    expect([p, r.status]).toEqual([p, 404]);
    expect(r.body.toString()).not.toMatch(/contentHash|payroll/);
  }
});
