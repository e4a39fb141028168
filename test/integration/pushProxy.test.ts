/**
 * The push proxy on the serving path alone (in-process Git routes, real git over HTTP, the
 * primary's real HTTPS door): what is relayed verbatim, TLS verification with and without the
 * primary's CA, and that credentials never reach the log. The end-to-end path through nginx and
 * the daemon (read-your-writes) is pushThroughMirror.test.ts.
 */
import * as http from "node:http";
import * as https from "node:https";
import { startInProcessGitServer } from "../../testbed/gitServer";
import { HttpsPrimary, startHttpsPrimary } from "../../testbed/httpsPrimary";
import { git, GitError, isolatedGitEnv, listRefs, workingClone, WorkingClone } from "../../testbed/repos";

jest.setTimeout(120_000);

let hp: HttpsPrimary;
let work: WorkingClone;
const env = isolatedGitEnv();

beforeAll(async () => {
  hp = await startHttpsPrimary();
  await hp.createRepo("PROJ", "app");
  hp.double.addUser("alice", "alice-pw", { canWrite: { projects: ["PROJ"] } });
  work = await workingClone({ url: hp.repoUrl("PROJ", "app", "alice:alice-pw"), env: hp.gitEnv() });
  await work.commit({ "a.txt": "one\n" });
});

async function pushFails(url: string): Promise<string> {
  try {
    await git(["push", url, "HEAD:refs/heads/main"], { cwd: work.dir, env });
  } catch (e) {
    if (e instanceof GitError) return e.stderr;
    throw e;
  }
  throw new Error("the push succeeded");
}

test("a primary whose certificate the mirror does not trust: 502 naming the primary and the CA setting; nothing pushed", async () => {
  // No caPem: only the system roots, which do not know the bench CA.
  const srv = await startInProcessGitServer(new Map(), { push: { upstreamUrl: hp.double.url, waitMs: 0 } });
  const stderr = await pushFails(`${srv.base}/scm/PROJ/app.git`.replace("http://", "http://alice:alice-pw@"));
  expect(stderr).toContain(`remote: The mirror forwards pushes to the primary (${hp.double.url}), and cannot reach it:`);
  expect(stderr).toContain("mirror.upstream.caFile");
  expect(stderr).toMatch(/502/);
  expect((await listRefs(hp.primary.repoPath("PROJ", "app"))).size).toBe(0);
  await srv.close();
});

test("with the primary's CA: the push lands; the primary's 401 and WWW-Authenticate are relayed verbatim; credentials never logged", async () => {
  const srv = await startInProcessGitServer(new Map(), { push: { upstreamUrl: hp.double.url, caPem: hp.ca.certPem, waitMs: 0 } });
  const anon = await srv.send("GET", "/scm/PROJ/app.git/info/refs?service=git-receive-pack", { headers: {} });
  expect(anon.status).toBe(401);
  const direct = await new Promise<{ status: number; wwwAuth: string | undefined }>((resolve, reject) => {
    https
      .get(`${hp.double.url}/scm/PROJ/app.git/info/refs?service=git-receive-pack`, { ca: hp.ca.certPem }, (r) => {
        r.resume();
        resolve({ status: r.statusCode ?? 0, wwwAuth: r.headers["www-authenticate"] });
      })
      .on("error", reject);
  });
  expect(direct).toEqual({ status: 401, wwwAuth: 'Basic realm="Atlassian Bitbucket"' });
  const viaMirror = await new Promise<string | undefined>((resolve, reject) => {
    http
      .get(`${srv.base}/scm/PROJ/app.git/info/refs?service=git-receive-pack`, (r) => {
        r.resume();
        resolve(r.headers["www-authenticate"]);
      })
      .on("error", reject);
  });
  expect(viaMirror).toBe(direct.wwwAuth);

  await git(["push", "--quiet", `${srv.base}/scm/PROJ/app.git`.replace("http://", "http://alice:alice-pw@"), "HEAD:refs/heads/main"], { cwd: work.dir, env });
  expect((await listRefs(hp.primary.repoPath("PROJ", "app"))).get("refs/heads/main")).toBe(await work.revParse("HEAD"));
  const logged = JSON.stringify(srv.logs);
  expect(logged).not.toContain("alice-pw");
  expect(logged).not.toContain(Buffer.from("alice:alice-pw").toString("base64"));
  // Not a repository this mirror carries: forwarded all the same, nothing to wait for.
  expect(srv.logs.some((l) => l.msg === "git push forwarded to the primary" && l.obj.readYourWrites === "not_mirrored")).toBe(true);
  const metrics = await srv.registry.metrics();
  expect(metrics).toContain('smart_mirror_push_read_your_writes_total{result="not_mirrored"} 1');
  expect(metrics).toMatch(/smart_mirror_git_requests_total\{endpoint="receive_pack",code="200"\} [1-9]/);
  await srv.close();
});
