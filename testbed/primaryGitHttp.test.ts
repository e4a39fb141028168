/**
 * The bench primary's smart-HTTP door (primaryGitHttp.ts behind the Bitbucket double): real
 * git clients over real TLS, real git http-backend, the same repositories as the SSH door.
 */
import { cgiEnv, parseCgiHeaders, parseScmTarget } from "./primaryGitHttp";
import { HttpsPrimary, startHttpsPrimary } from "./httpsPrimary";
import { git, GitError, workingClone } from "./repos";
import { tempDir } from "./resources";
import * as path from "node:path";

jest.setTimeout(120_000);

describe("pure parts", () => {
  test("targets: the three endpoints only, with the right methods", () => {
    expect(parseScmTarget("GET", "/scm/PROJ/app.git/info/refs?service=git-receive-pack")).toMatchObject({ project: "PROJ", slug: "app", service: "git-receive-pack", pathInfoTail: "info/refs" });
    expect(parseScmTarget("POST", "/scm/PROJ/app/git-upload-pack")).toMatchObject({ slug: "app", service: "git-upload-pack" });
    expect(parseScmTarget("GET", "/scm/PROJ/app.git/info/refs")).toBeUndefined();
    expect(parseScmTarget("GET", "/scm/PROJ/app.git/git-upload-pack")).toBeUndefined();
    expect(parseScmTarget("GET", "/scm/PROJ/../x.git/info/refs?service=git-upload-pack")).toBeUndefined();
    expect(parseScmTarget("GET", "/scm/PROJ/app.git/HEAD")).toBeUndefined();
  });
  test("CGI environment: REMOTE_USER only when authenticated; no CONTENT_LENGTH for a chunked body", () => {
    const env = cgiEnv({ method: "POST", headers: { "content-type": "application/x-git-receive-pack-request", "transfer-encoding": "chunked" } }, { reposRoot: "/r", pathInfo: "/P/a.git/git-receive-pack", query: "", user: null });
    expect(env.REMOTE_USER).toBeUndefined();
    expect(env.CONTENT_LENGTH).toBeUndefined();
    expect(cgiEnv({ method: "GET", headers: {} }, { reposRoot: "/r", pathInfo: "/P/a.git/info/refs", query: "service=git-receive-pack", user: "alice" }).REMOTE_USER).toBe("alice");
  });
  test("CGI headers", () => {
    expect(parseCgiHeaders("Status: 403 Forbidden\r\nContent-Type: text/plain\r\nExpires: x")).toEqual({ status: 403, headers: { "Content-Type": "text/plain", Expires: "x" } });
  });
});

describe("over HTTPS with git", () => {
  let hp: HttpsPrimary;
  beforeAll(async () => {
    hp = await startHttpsPrimary();
    await hp.createRepo("PROJ", "app");
    hp.double.addUser("alice", "alice-pw", { canWrite: { projects: ["PROJ"] } });
    hp.double.addUser("bob", "bob-pw");
  });

  async function fails(args: string[], cwd?: string): Promise<string> {
    try {
      await git(args, { env: hp.gitEnv(), cwd });
    } catch (e) {
      if (e instanceof GitError) return e.stderr;
      throw e;
    }
    throw new Error(`git ${args.join(" ")} succeeded`);
  }

  test("a writer pushes over HTTPS, the SSH door serves it; a reader may clone but not push; strangers get 401", async () => {
    const work = await workingClone({ url: hp.repoUrl("PROJ", "app", "alice:alice-pw"), env: hp.gitEnv() });
    const c1 = await work.commit({ "a.txt": "one\n" });
    await work.git(["push", "--quiet", "origin", "HEAD:refs/heads/main"], hp.gitEnv());
    expect((await git(["ls-remote", hp.primary.sshUrl("PROJ", "app"), "refs/heads/main"], { env: hp.primary.gitEnv() })).split("\t")[0]).toBe(c1);

    const dest = path.join(tempDir("clone"), "app");
    await git(["clone", "--quiet", hp.repoUrl("PROJ", "app", "bob:bob-pw"), dest], { env: hp.gitEnv() });
    await work.commit({ "a.txt": "two\n" });
    expect(await fails(["push", hp.repoUrl("PROJ", "app", "bob:bob-pw"), "HEAD:refs/heads/main"], work.dir)).toMatch(/403/);
    expect(await fails(["ls-remote", hp.repoUrl("PROJ", "app", "alice:wrong")])).toMatch(/Authentication failed/);
    expect(await fails(["ls-remote", hp.repoUrl("PROJ", "app")])).toMatch(/could not read Username|Authentication failed/);
    expect(hp.double.requests.some((r) => r.path.endsWith("/git-receive-pack") && r.user === "alice" && r.status === 200)).toBe(true);
  });
});
