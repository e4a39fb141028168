/**
 * Catalog names the mirror cannot carry are skipped and reported; the rest syncs. Bitbucket
 * personal projects (`~USER`, clone URLs /scm/~user/repo.git) are mirrored and served.
 */
import * as fs from "node:fs";
import { anonymousAuthorizer } from "../../sync/auth/authorizer";
import { catalogResolver, mountGitRoutes } from "../../sync/serve/git";
import { listen } from "../../sync/serve/listen";
import { Router } from "../../sync/serve/router";
import { createServer } from "../../sync/serve/server";
import { statusDocument } from "../../sync/serve/statusDocument";
import { startBitbucketDouble } from "../../testbed/bitbucketDouble";
import { startInProcessMirror } from "../../testbed/inProcessMirror";
import { startPrimary } from "../../testbed/primary";
import { assertSameRefsAndObjects, git, isolatedGitEnv, listRefs, workingClone } from "../../testbed/repos";
import { onCleanup, tempDir } from "../../testbed/resources";
import { createCa } from "../../testbed/tls";

jest.setTimeout(180_000);

test("a bad catalog name is skipped and reported; personal ~USER repositories mirror and serve", async () => {
  const primary = await startPrimary();
  const ca = await createCa();
  const cert = await ca.issueServerCert(["localhost"]);
  const double = await startBitbucketDouble({ cert: fs.readFileSync(cert.chainPath, "utf8"), key: fs.readFileSync(cert.keyPath, "utf8") });
  double.addUser("mirror", "unused", { token: "mirror-token", canRead: () => true });
  const good = [
    ["PROJ", "app"],
    ["~JOHN.DOE", "notes"],
  ] as const;
  for (const [p, s] of good) {
    double.addRepo(p, s);
    await primary.createRepo(p, s);
    const wc = await workingClone(primary.remote(p, s));
    await wc.commit({ "README.md": `${p}/${s}\n` });
    await wc.pushAll();
  }
  // A name the store refuses (a path-like ".."): it once failed every reconcile.
  double.addRepo("PROJ", "release..notes");

  const m = await startInProcessMirror(primary, [], { catalog: { kind: "rest", baseUrl: double.url, token: "mirror-token", ca: ca.certPem } });
  await m.daemon.idle();
  const snap = m.board.snapshot();
  expect(snap.lastReconcile).toMatchObject({ result: "ok" });
  expect(snap.primary.reachable).toBe(true);
  expect(snap.state).toBe("SYNCHRONIZED");
  expect(snap.skippedRepos).toBe(1);
  expect(snap.skipped).toEqual([{ key: "PROJ/release..notes", problem: expect.stringContaining('contains ".."') }]);
  expect(statusDocument(snap)).toMatchObject({ state: "SYNCHRONIZED", syncedRepos: 2, totalRepos: 2, skippedRepos: 1 });
  expect((await m.board.metrics.exposition()).body).toMatch(/^smart_mirror_repos_skipped 1$/m);
  for (const [p, s] of good) await assertSameRefsAndObjects(primary.repoPath(p, s), m.daemon.repoDir(`${p}/${s}`));

  // Served at Bitbucket's clone URL for a personal repository: the user slug in lower case.
  const router = new Router();
  const routes = mountGitRoutes(router, {
    resolve: catalogResolver((key) => (m.daemon.isServed(key) ? m.daemon.repoDir(key) : undefined)),
    authorizer: anonymousAuthorizer(),
    primaryUrl: double.url,
    gitEnv: isolatedGitEnv() as NodeJS.ProcessEnv,
    registry: m.board.metrics.registry,
  });
  const server = createServer({ board: m.board, router });
  const addr = await listen(server, "127.0.0.1:0");
  onCleanup(async () => {
    routes.close();
    await new Promise((r) => server.close(r));
  });
  if (addr.kind !== "tcp") throw new Error("want tcp");
  const dest = `${tempDir("clone")}/notes`;
  await git(["clone", "--quiet", "--bare", `http://127.0.0.1:${addr.port}/scm/~john.doe/notes.git`, dest]);
  expect(await listRefs(dest)).toEqual(await listRefs(primary.repoPath("~JOHN.DOE", "notes")));

  // The name goes away on the primary: the skip report clears.
  double.removeRepo("PROJ", "release..notes");
  await m.daemon.reconcile();
  expect(m.board.snapshot().skippedRepos).toBe(0);
  await m.stop();
});
