/**
 * Webhooks for repositories outside the catalog (issue 12, item 9): each one used to start a
 * full reconcile (a catalog listing on the primary's REST API plus a scan of every repository).
 * Now 100 of them cost at most two catalog listings (one at once, one trailing), counted at the
 * REST double; and a repository really created on the primary still gets synced.
 */
import * as fs from "node:fs";
import { startBitbucketDouble, BitbucketDouble } from "../../testbed/bitbucketDouble";
import { startInProcessMirror } from "../../testbed/inProcessMirror";
import { startPrimary, Primary } from "../../testbed/primary";
import { assertSameRefsAndObjects, workingClone } from "../../testbed/repos";
import { waitFor } from "../../testbed/resources";
import { createCa } from "../../testbed/tls";

jest.setTimeout(180_000);

let primary: Primary;
let double: BitbucketDouble;
let caPem: string;

async function repoWithCommit(p: string, s: string): Promise<void> {
  double.addRepo(p, s);
  await primary.createRepo(p, s);
  const wc = await workingClone(primary.remote(p, s));
  await wc.commit({ "README.md": `${p}/${s}\n` });
  await wc.pushAll();
}

beforeAll(async () => {
  primary = await startPrimary();
  const ca = await createCa();
  const cert = await ca.issueServerCert(["localhost"]);
  caPem = ca.certPem;
  double = await startBitbucketDouble({ cert: fs.readFileSync(cert.chainPath, "utf8"), key: fs.readFileSync(cert.keyPath, "utf8") });
  double.addUser("mirror", "unused", { token: "mirror-token", canRead: () => true });
  await repoWithCommit("PROJ", "app");
});

test("100 webhooks for unknown repositories: at most 2 catalog listings; a new repository still arrives", async () => {
  // Throttle interval long enough that the trailing refresh cannot pass before we count, yet short for the test.
  const m = await startInProcessMirror(primary, [], { catalog: { kind: "rest", baseUrl: double.url, token: "mirror-token", ca: caPem }, webhookRefreshMinMs: 3000 });
  await m.daemon.idle();
  expect(m.daemon.isServed("PROJ/app")).toBe(true);
  const listings = () => double.requests.filter((r) => r.path === "/rest/api/1.0/repos").length;
  const before = listings();

  // 99 webhooks for names that do not exist, one after the other (each may finish its work
  // before the next arrives), then a real repository appears on the primary.
  for (let i = 0; i < 99; i++) {
    expect(m.daemon.refsChanged(`PROJ/ghost-${i}`)).toBe("unknown");
    await m.daemon.idle();
  }
  await repoWithCommit("PROJ", "brand-new");
  expect(m.daemon.refsChanged("PROJ/brand-new")).toBe("unknown");

  await waitFor("the new repository synced", () => m.daemon.isServed("PROJ/brand-new"), 60_000, 50);
  await m.daemon.idle();
  await assertSameRefsAndObjects(primary.repoPath("PROJ", "brand-new"), m.daemon.repoDir("PROJ/brand-new"));
  // One refresh at once, at most one trailing one, whatever else arrives meanwhile.
  expect(listings() - before).toBeLessThanOrEqual(2);
  expect(m.daemon.webhookRefreshes).toBeLessThanOrEqual(2);
  await m.stop();
});
