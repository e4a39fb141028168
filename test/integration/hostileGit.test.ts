/**
 * Malformed and hostile upload-pack requests (issue 12, item 4): a client's bad request gets a
 * 4xx, or git's own error inside a 200 (an ERR pkt-line, as git-http-backend's stream would
 * carry), never a 5xx or a reset, both straight to the daemon and through the rendered nginx
 * site over real TLS; git's reason reaches the client; what git echoes of the client's bytes
 * stays bounded in the logs.
 */
import * as path from "node:path";
import { startInProcessGitServer, InProcessGitServer } from "../../testbed/gitServer";
import { HOSTILE_REQUESTS, HostileAnswer, HostileContext, isServerFailure, sendHostile } from "../../testbed/hostileRequests";
import { mirrorCertificate, startTlsFront, TlsFront } from "../../testbed/mirrorBehindNginx";
import { git, GitError, initBare, workingClone } from "../../testbed/repos";
import { tempDir } from "../../testbed/resources";
import { MAX_LOGGED_STDERR } from "../../sync/serve/git/requestCheck";

jest.setTimeout(240_000);

let catalog: Map<string, string>;
let ctx: HostileContext;

beforeAll(async () => {
  const dir = path.join(tempDir("hostile"), "app.git");
  await initBare(dir);
  const w = await workingClone(dir);
  await w.commit({ "README.md": "# app\n" });
  const head = await w.commit({ "a.txt": "a\n" });
  await w.push(["main"]);
  catalog = new Map([["PROJ/app", dir]]);
  ctx = { repoPath: "/scm/PROJ/app.git", head };
});

async function sendAll(send: Parameters<typeof sendHostile>[2]): Promise<HostileAnswer[]> {
  const out: HostileAnswer[] = [];
  for (const h of HOSTILE_REQUESTS) out.push(await sendHostile(h, ctx, send));
  return out;
}

const failures = (answers: HostileAnswer[]) => answers.filter((a) => isServerFailure(a.status)).map((a) => `${a.name}: ${a.status} ${a.text.slice(0, 120)}`);

describe.each([
  ["without the pack cache", false],
  ["with the pack cache (scope all)", true],
])("hostile upload-pack requests straight to the daemon, %s", (_label, cached) => {
  let srv: InProcessGitServer;
  beforeAll(async () => {
    srv = await startInProcessGitServer(catalog, cached ? { packCache: { dir: tempDir("packcache"), maxBytes: 64 << 20, scope: "all" } } : {});
  });
  afterAll(() => srv.close());

  test("no 5xx, no reset: every one is a 4xx or git's error in the protocol", async () => {
    expect(failures(await sendAll(srv.send))).toEqual([]);
  });

  test("not pkt-lines: 400 naming the problem, before git runs", async () => {
    for (const name of ["zzzz", "70 KB of A", "truncated pkt-line"]) {
      const a = await sendHostile(HOSTILE_REQUESTS.find((h) => h.name === name)!, ctx, srv.send);
      expect([name, a.status]).toEqual([name, 400]);
      expect(a.text).toMatch(/malformed upload-pack request/);
    }
  });

  test("framed but refused by git: 400 with git's own reason", async () => {
    const a = await sendHostile(HOSTILE_REQUESTS.find((h) => h.name === "done without wants")!, ctx, srv.send);
    expect(a.status).toBe(400);
    expect(a.text).toContain("expected to get object ID, not 'done'");
  });

  test("git's stderr echoing the client's bytes is bounded in the logs", async () => {
    await sendAll(srv.send);
    const stderrs = srv.logs.map((l) => l.obj.stderr).filter((s): s is string => typeof s === "string");
    expect(stderrs.length).toBeGreaterThan(0);
    for (const s of stderrs) expect(s.length).toBeLessThanOrEqual(MAX_LOGGED_STDERR + 3);
    expect(srv.logs.filter((l) => l.level === "error")).toEqual([]);
  });
});

describe("hostile upload-pack requests through nginx (rendered site, real TLS)", () => {
  let srv: InProcessGitServer;
  let front: TlsFront;
  beforeAll(async () => {
    srv = await startInProcessGitServer(catalog);
    front = await startTlsFront(await mirrorCertificate(), { host: "127.0.0.1", port: srv.port });
  });
  afterAll(() => srv.close());

  test("no 5xx (nginx's 502 included), no reset", async () => {
    const answers = await sendAll((m, t, o) => front.request(m, t, o));
    expect(failures(answers)).toEqual([]);
  });

  test("git's reason reaches the client inside the protocol, also after the 200 went out (a hand-off)", async () => {
    const a = await sendHostile(HOSTILE_REQUESTS.find((h) => h.name === "deepen-not ambiguous")!, ctx, (m, t, o) => front.request(m, t, o));
    expect(a.status).toBe(200);
    expect(a.text).toMatch(/^[0-9a-f]{4}ERR git upload-pack refused the request: git upload-pack: ambiguous deepen-not/);
  });

  test("a real git client's refused shallow clone fails with git's error, not an HTTP 5xx", async () => {
    const dest = path.join(tempDir("clone"), "x");
    let stderr = "";
    try {
      await git(["clone", "--quiet", "--shallow-exclude=refs/heads", `${front.base}/scm/PROJ/app.git`, dest], { env: front.gitEnv({ GIT_TERMINAL_PROMPT: "0" }) });
    } catch (e) {
      stderr = (e as GitError).stderr;
    }
    expect(stderr).toMatch(/fatal/);
    expect(stderr).not.toMatch(/HTTP 5\d\d|\b50[0-9]\b/);
  });
});
