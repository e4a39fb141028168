/**
 * The sync daemon against a real OpenSSH primary: exact mirrors, following every kind of
 * change, refusing a wrong host key, and riding out an outage of the primary.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { makeMirrorHome } from "../../testbed/mirrorHome";
import { startInProcessMirror } from "../../testbed/inProcessMirror";
import { startPrimary, Primary } from "../../testbed/primary";
import { assertSameRefsAndObjects, listRefs, workingClone, WorkingClone } from "../../testbed/repos";
import { RepoId } from "../../sync/types";
import { parsePinnedKeys } from "../../sync/upstream/hostKeys";
import { repoKey } from "../../sync/types";

jest.setTimeout(180_000);

async function seed(primary: Primary, project: string, slug: string, i: number): Promise<WorkingClone> {
  await primary.createRepo(project, slug);
  const wc = await workingClone(primary.remote(project, slug));
  await wc.commit({ "README.md": `# ${slug}\n`, [`src/${i}.txt`]: `content ${i}\n` });
  await wc.branch("feature");
  await wc.commit({ "b.txt": `branch ${i}\n` });
  await wc.tag(`v${i}.0`, { message: `release ${i}` });
  await wc.tag(`light-${i}`);
  await wc.pushAll();
  return wc;
}

describe("sync daemon against a real sshd primary", () => {
  let primary: Primary;
  const repos: RepoId[] = [];
  const clones = new Map<string, WorkingClone>();

  beforeAll(async () => {
    primary = await startPrimary();
    for (let i = 0; i < 6; i++) {
      const id = { project: i % 2 ? "PROJ" : "TEAM", slug: `repo-${i}` };
      repos.push(id);
      clones.set(repoKey(id), await seed(primary, id.project, id.slug, i));
    }
  });

  test("initial sync mirrors every ref and object exactly; status says synchronized", async () => {
    const m = await startInProcessMirror(primary, repos);
    await m.daemon.idle();
    for (const id of repos) await assertSameRefsAndObjects(primary.repoPath(id.project, id.slug), m.daemon.repoDir(repoKey(id)));
    const snap = m.board.snapshot();
    expect(snap.state).toBe("SYNCHRONIZED");
    expect(snap.facts.everSynced).toBe(repos.length);
    expect(snap.lastReconcile?.result).toBe("ok");

    // A no-change reconcile checks every repository and fetches nothing: fingerprints match.
    await m.daemon.reconcile();
    expect(m.board.snapshot().lastReconcile?.changed).toBe(0);
    expect(m.board.snapshot().lastReconcile?.checked).toBe(repos.length);
    await m.stop();
  });

  test("force-push, branch and tag deletion, new and deleted repos are followed exactly", async () => {
    const m = await startInProcessMirror(primary, [...repos]);
    await m.daemon.idle();
    const [a, b] = repos;
    const wa = clones.get(repoKey(a))!;
    await wa.checkout("main");
    await wa.forcePushRewrite("main", { "rewritten.txt": "history rewritten\n" });
    await wa.deleteBranch("feature");
    await wa.deleteTag("v0.0");
    const wb = clones.get(repoKey(b))!;
    await wb.checkout("main");
    await wb.commit({ "more.txt": "more\n" });
    await wb.push(["main"]);
    // New repository on the primary; and one repository removed from the catalog.
    const fresh = { project: "PROJ", slug: "brand-new" };
    await seed(primary, fresh.project, fresh.slug, 99);
    const removed = repos[5];
    const catalog = m.settings.catalog as { kind: "static"; repos: RepoId[] };
    catalog.repos = [...repos.filter((r) => r !== removed), fresh];
    // Six local repos, one removed = 16.7%: above the default guard, so allow it explicitly.
    m.settings.purge.protectPercent = 50;
    await m.daemon.reconcile();
    await m.daemon.idle();
    for (const id of [a, b, fresh]) await assertSameRefsAndObjects(primary.repoPath(id.project, id.slug), m.daemon.repoDir(repoKey(id)));
    const refsA = await listRefs(m.daemon.repoDir(repoKey(a)));
    expect(refsA.has("refs/heads/feature")).toBe(false);
    expect(refsA.has("refs/tags/v0.0")).toBe(false);
    expect(m.daemon.isServed(repoKey(removed))).toBe(false);
    expect(m.daemon.catalogKeys()).toContain(repoKey(fresh));
    await m.stop();
  });

  test("the purge guard refuses a suspicious shrink and keeps serving", async () => {
    const m = await startInProcessMirror(primary, [...repos.slice(0, 5)]);
    await m.daemon.idle();
    (m.settings.catalog as { kind: "static"; repos: RepoId[] }).repos = repos.slice(0, 1);
    await m.daemon.reconcile();
    for (const id of repos.slice(0, 5)) expect(m.daemon.isServed(repoKey(id))).toBe(true);
    await m.stop();
  });

  test("a wrong pinned host key is refused: nothing fetched, status reports it", async () => {
    const other = await startPrimary({ label: "impostor" });
    const mh = await makeMirrorHome(primary);
    // Pin the other server's key while talking to our primary.
    const wrong = await startInProcessMirror(primary, repos.slice(0, 2), {
      upstream: { host: primary.host, port: primary.port, user: primary.user, keyFile: mh.keyFile, pinned: parsePinnedKeys(other.hostKeyLine) },
    }, mh);
    await wrong.daemon.idle();
    const snap = wrong.board.snapshot();
    expect(snap.primary.reachable).toBe(false);
    expect(snap.primary.lastError).toMatch(/host key mismatch/);
    expect(snap.state).not.toBe("SYNCHRONIZED");
    for (const id of repos.slice(0, 2)) expect(wrong.daemon.isServed(repoKey(id))).toBe(false);
    expect(fs.existsSync(path.join(mh.home, "repos", repos[0].project))).toBe(false);
    await wrong.stop();
  });

  test("primary down: last good copy kept, DEGRADED, recovery when it returns", async () => {
    const m = await startInProcessMirror(primary, repos.slice(0, 3));
    await m.daemon.idle();
    const dir = m.daemon.repoDir(repoKey(repos[0]));
    const refsBefore = await listRefs(dir);
    await primary.stop();
    await m.daemon.reconcile();
    await m.daemon.idle();
    expect(m.board.snapshot().state).toBe("DEGRADED");
    expect(await listRefs(dir)).toEqual(refsBefore);
    expect(m.daemon.isServed(repoKey(repos[0]))).toBe(true);
    await primary.restart();
    const wc = clones.get(repoKey(repos[0]))!;
    await wc.checkout("main");
    await wc.commit({ "after-outage.txt": "back\n" });
    await wc.push(["main"]);
    await m.daemon.reconcile();
    await m.daemon.idle();
    expect(m.board.snapshot().state).toBe("SYNCHRONIZED");
    await assertSameRefsAndObjects(primary.repoPath(repos[0].project, repos[0].slug), dir);
    expect(path.basename(dir)).toBe(`${repos[0].slug}.git`);
    await m.stop();
  });
});
