/**
 * A 200 MB push through the mirror (nginx -> the daemon as its own process -> the primary's
 * HTTPS door) streams: the daemon's resident memory, sampled from /proc while the push runs,
 * grows by a small fraction of the pack, and the push is served by the mirror when `git push`
 * returns. The growth is printed (the report the issue asks for) and bounded well below the
 * pack's size: a proxy that buffered the pack would hold 200 MB.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { startMirrorBehindNginx } from "../../testbed/mirrorBehindNginx";
import { startHttpsPrimary } from "../../testbed/httpsPrimary";
import { git, listRefs, workingClone } from "../../testbed/repos";
import { rssSampler } from "../../testbed/rss";

jest.setTimeout(600_000);

const APP = { project: "PROJ", slug: "big" };
const PACK_MB = 200;

test(`a ${PACK_MB} MB push streams through the mirror with bounded daemon memory, and is served right after`, async () => {
  const hp = await startHttpsPrimary();
  await hp.createRepo(APP.project, APP.slug);
  hp.double.addUser("alice", "alice-pw", { canWrite: { projects: ["PROJ"] } });
  const seed = await workingClone({ url: hp.repoUrl(APP.project, APP.slug, "alice:alice-pw"), env: hp.gitEnv() });
  await seed.commit({ "README.md": "big\n" });
  await seed.git(["push", "--quiet", "origin", "HEAD:refs/heads/main"], hp.gitEnv());

  const m = await startMirrorBehindNginx({
    primary: hp.primary,
    repos: [APP],
    properties: { "plugin.mirroring.upstream.url": hp.double.url, "mirror.upstream.caFile": hp.ca.certPath, "mirror.serve.freshness": "never", "mirror.serve.onDemandWait": "120s" },
  });
  await m.waitSynchronized();
  const work = await workingClone({ url: m.url(APP.project, APP.slug).replace("https://", "https://alice:alice-pw@"), env: m.gitEnv() });
  // Incompressible content: the pack is as big as the file.
  const fd = fs.openSync(path.join(work.dir, "blob.bin"), "w");
  for (let i = 0; i < PACK_MB; i++) fs.writeSync(fd, crypto.randomBytes(1024 * 1024));
  fs.closeSync(fd);
  await work.git(["add", "blob.bin"]);
  await work.git(["commit", "--quiet", "-m", "200 MB of noise"]);
  const c = await work.revParse("HEAD");

  const pid = m.daemon.child.pid as number;
  const rss = rssSampler(pid, 50);
  // The primary's ref moves when its receive-pack took the whole pack: up to then the daemon only
  // relayed; after it, the daemon fetches the push back (read-your-writes).
  let relayMaxKb: number | undefined;
  const primaryRef = path.join(hp.primary.repoPath(APP.project, APP.slug), "refs/heads/main");
  const before = fs.readFileSync(primaryRef, "utf8");
  const watch = setInterval(() => {
    if (relayMaxKb === undefined && fs.readFileSync(primaryRef, "utf8") !== before) relayMaxKb = rss.maxSoFarKb();
  }, 20);
  await git(["push", "--quiet", "origin", "HEAD:refs/heads/main"], { cwd: work.dir, env: m.gitEnv() });
  clearInterval(watch);
  const r = rss.stop();

  const growthMb = (r.maxKb - r.baselineKb) / 1024;
  const relayMb = ((relayMaxKb ?? r.maxKb) - r.baselineKb) / 1024;
  // The report: what the daemon held while a 200 MB pack went through it, and with its fetch of it.
  console.log(
    `daemon RSS during a ${PACK_MB} MB push: baseline ${(r.baselineKb / 1024).toFixed(1)} MB; growth while relaying the pack ${relayMb.toFixed(1)} MB; ` +
      `growth including the read-your-writes fetch of the push ${growthMb.toFixed(1)} MB (max ${(r.maxKb / 1024).toFixed(1)} MB, ${r.samples} samples)`,
  );
  expect(r.samples).toBeGreaterThan(3);
  expect(relayMaxKb).toBeDefined();
  expect(relayMb).toBeLessThan(PACK_MB / 4);
  // With the fetch: the pack comes back over the daemon's in-process SSH session (ssh2) on its
  // way to git index-pack; still far from holding it (38 MB measured alone, 45 MB beside others).
  expect(growthMb).toBeLessThan(PACK_MB / 2);
  // Read-your-writes for a big push too.
  expect((await listRefs(m.repoDir(APP.project, APP.slug))).get("refs/heads/main")).toBe(c);
  expect((await listRefs(hp.primary.repoPath(APP.project, APP.slug))).get("refs/heads/main")).toBe(c);
});
