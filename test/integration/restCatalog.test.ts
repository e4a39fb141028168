/**
 * The catalog from the primary's Bitbucket REST API (the REST double, over HTTPS with the
 * test CA, paged), with project selection: ALL -> selected -> ALL, which Bitbucket itself
 * cannot undo. A token the primary refuses deletes nothing.
 */
import * as fs from "node:fs";
import { startBitbucketDouble, BitbucketDouble } from "../../testbed/bitbucketDouble";
import { startInProcessMirror } from "../../testbed/inProcessMirror";
import { startPrimary, Primary } from "../../testbed/primary";
import { assertSameRefsAndObjects, workingClone } from "../../testbed/repos";
import { createCa } from "../../testbed/tls";
import { listRepos } from "../../sync/catalog/bitbucketRest";

jest.setTimeout(180_000);

const REPOS = [
  ["ALPHA", "api"],
  ["ALPHA", "web"],
  ["ALPHA", "docs"],
  ["BETA", "tools"],
  ["BETA", "infra"],
] as const;

describe("REST catalog", () => {
  let primary: Primary;
  let double: BitbucketDouble;
  let caPem: string;

  beforeAll(async () => {
    primary = await startPrimary();
    const ca = await createCa();
    const cert = await ca.issueServerCert(["localhost"]);
    caPem = ca.certPem;
    double = await startBitbucketDouble({ cert: fs.readFileSync(cert.chainPath, "utf8"), key: fs.readFileSync(cert.keyPath, "utf8"), defaultLimit: 2 });
    double.addUser("mirror", "unused", { token: "mirror-token", canRead: () => true });
    for (const [p, s] of REPOS) {
      double.addRepo(p, s);
      await primary.createRepo(p, s);
      const wc = await workingClone(primary.remote(p, s));
      await wc.commit({ "README.md": `${p}/${s}\n` });
      await wc.pushAll();
    }
  });

  test("pages through every repository the token can read, TLS verified against the CA", async () => {
    const repos = await listRepos({ baseUrl: double.url, token: "mirror-token", ca: caPem, pageSize: 2 });
    expect(repos.map((r) => `${r.project}/${r.slug}`).sort()).toEqual(REPOS.map(([p, s]) => `${p}/${s}`).sort());
    expect(double.requests.filter((r) => r.path === "/rest/api/1.0/repos").length).toBe(3);
    // Without the CA the primary's certificate is not trusted: no silent fallback.
    await expect(listRepos({ baseUrl: double.url, token: "mirror-token" })).rejects.toThrow(/cannot reach the primary's REST API/);
    await expect(listRepos({ baseUrl: double.url, token: "wrong", ca: caPem })).rejects.toThrow(/refused the mirror's token.*mirror.upstream.tokenFile/);
  });

  test("ALL -> selected -> ALL: repositories follow the selection; a refused token deletes nothing", async () => {
    const m = await startInProcessMirror(primary, [], { catalog: { kind: "rest", baseUrl: double.url, token: "mirror-token", ca: caPem } });
    await m.daemon.idle();
    const served = () => REPOS.filter(([p, s]) => m.daemon.isServed(`${p}/${s}`)).map(([p, s]) => `${p}/${s}`);
    expect(served()).toHaveLength(5);
    for (const [p, s] of REPOS) await assertSameRefsAndObjects(primary.repoPath(p, s), m.daemon.repoDir(`${p}/${s}`));

    m.settings.projects = ["ALPHA"];
    await m.daemon.reconcile();
    await m.daemon.idle();
    expect(served()).toEqual(["ALPHA/api", "ALPHA/web", "ALPHA/docs"]);
    expect(fs.existsSync(m.daemon.repoDir("BETA/tools"))).toBe(false);

    m.settings.projects = "ALL";
    await m.daemon.reconcile();
    await m.daemon.idle();
    expect(served()).toHaveLength(5);
    await assertSameRefsAndObjects(primary.repoPath("BETA", "tools"), m.daemon.repoDir("BETA/tools"));

    // The token stops working: the catalog cannot be read, and nothing is purged.
    (m.settings.catalog as { token?: string }).token = "revoked";
    await m.daemon.reconcile();
    expect(served()).toHaveLength(5);
    const snap = m.board.snapshot();
    expect(snap.lastReconcile?.result).toBe("error");
    expect(snap.lastReconcile?.error).toMatch(/refused the mirror's token/);
    await m.stop();
  });
});
