/**
 * The v2 paths of the sync engine against a real sshd primary: a first clone over one v2
 * session (ls-refs + fetch on one channel, one index-pack), and the webhook fast path that
 * fetches the announced tips over a warm session and moves the refs only from the announced
 * old values. Every outcome says which path ran (SyncOutcome.via), so a silent fallback to
 * `git fetch` fails these tests.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { DaemonObserver } from "../../sync/daemon/daemon";
import { SyncOutcome } from "../../sync/daemon/engine";
import { RepoKey, repoKey } from "../../sync/types";
import { fingerprint, makeRefFilter } from "../../sync/upstream/refFilter";
import { startInProcessMirror, InProcessMirror } from "../../testbed/inProcessMirror";
import { startPrimary, Primary } from "../../testbed/primary";
import { assertSameRefsAndObjects, git, headOf, listRefs, workingClone, WorkingClone } from "../../testbed/repos";

jest.setTimeout(180_000);

const APP = { project: "PROJ", slug: "app" };
const KEY = repoKey(APP);

/** Every outcome of the daemon's sync jobs from now on, in order (taken where its observer gets them). */
function recordOutcomes(m: InProcessMirror): Array<{ key: RepoKey; outcome: SyncOutcome }> {
  const seen: Array<{ key: RepoKey; outcome: SyncOutcome }> = [];
  const obs = (m.daemon as unknown as { obs: DaemonObserver }).obs;
  const original = obs.syncSucceeded.bind(obs);
  obs.syncSucceeded = (key, reason, ms, outcome) => {
    seen.push({ key, outcome });
    original(key, reason, ms, outcome);
  };
  return seen;
}

let primary: Primary;
let wc: WorkingClone;

beforeAll(async () => {
  primary = await startPrimary();
  await primary.createRepo(APP.project, APP.slug, { initialBranch: "trunk" });
  wc = await workingClone(primary.remote(APP.project, APP.slug));
  await wc.checkout("trunk", { create: true });
  await wc.commit({ "a.txt": "1\n" });
  await wc.branch("feature");
  await wc.tag("v1", { message: "release 1" });
  await wc.tag("light");
  await wc.commit({ "b.txt": "2\n" });
  await wc.pushAll();
  await wc.push(["HEAD:refs/pull/1/head"]);
});

test("a new repository is cloned over one v2 session: same refs and objects, the primary's HEAD, excluded refs left out, a fingerprint a reconcile agrees with", async () => {
  const m = await startInProcessMirror(primary, [APP], { excludeRefs: ["refs/pull/*"] });
  await m.daemon.idle();
  const outcomes = recordOutcomes(m);
  const dir = m.daemon.repoDir(KEY);
  const src = primary.repoPath(APP.project, APP.slug);
  expect(await headOf(dir)).toBe("refs/heads/trunk");
  // Made by the v2 path (a skeleton written directly), not by `git init` + `git fetch`, which
  // leaves git's description file: a silent fallback would pass every other check here.
  expect(fs.existsSync(path.join(dir, "description"))).toBe(false);
  const primaryRefs = await listRefs(src);
  const kept = new Map([...primaryRefs].filter(([r]) => !r.startsWith("refs/pull/")));
  expect(kept.size).toBeGreaterThanOrEqual(4);
  expect(await listRefs(dir)).toEqual(kept);
  // Every object the refs reach is there (and the annotated tag's object with them).
  await git(["fsck", "--no-dangling", "--connectivity-only"], { cwd: dir });
  // The fingerprint written from ls-refs is the one the scan of the primary gives: a reconcile fetches nothing.
  const fp = fingerprint(primaryRefs, "refs/heads/trunk", makeRefFilter(["refs/pull/*"]));
  expect(fs.readFileSync(path.join(dir, "smart-mirror.fingerprint"), "utf8").trim()).toBe(fp);
  await m.daemon.reconcile();
  await m.daemon.idle();
  expect(outcomes.filter((o) => o.outcome.fetched)).toEqual([]);
  // No .keep left behind: the pack is an ordinary one for repacks.
  expect(fs.readdirSync(path.join(dir, "objects", "pack")).filter((f) => f.endsWith(".keep"))).toEqual([]);
  await m.stop();
});

test("webhook moves are fetched by their tips over a warm session; a move from a value the mirror does not hold falls back to a full fetch", async () => {
  const m = await startInProcessMirror(primary, [APP]);
  await m.daemon.idle();
  const outcomes = recordOutcomes(m);
  const dir = m.daemon.repoDir(KEY);

  // Three pushes, each announced: the first opens the session, the next ones reuse it.
  for (let i = 0; i < 3; i++) {
    const from = await wc.revParse("HEAD");
    const to = await wc.commit({ "c.txt": `push ${i}\n` });
    await wc.push(["HEAD:refs/heads/trunk"]);
    expect(m.daemon.refsChanged(KEY, [{ refId: "refs/heads/trunk", fromHash: from, toHash: to, type: "UPDATE" }])).toBe("queued");
    await m.daemon.idle();
    expect((await listRefs(dir)).get("refs/heads/trunk")).toBe(to);
  }
  expect(outcomes.map((o) => o.outcome.via)).toEqual(["v2-moves", "v2-moves", "v2-moves"]);

  // A webhook that does not name every change (Bitbucket cuts long lists; a new HEAD): the
  // announced ref comes by its move, the check against the primary finds the rest missing,
  // and the follow-up (a scan and a full fetch) brings it.
  const fromX = await wc.revParse("HEAD");
  const toX = await wc.commit({ "c.txt": "with an unannounced branch\n" });
  await wc.push(["HEAD:refs/heads/trunk", "HEAD:refs/heads/unannounced"]);
  m.daemon.refsChanged(KEY, [{ refId: "refs/heads/trunk", fromHash: fromX, toHash: toX, type: "UPDATE" }]);
  await m.daemon.idle();
  expect((await listRefs(dir)).get("refs/heads/unannounced")).toBe(toX);
  expect(outcomes.slice(-2).map((o) => [o.outcome.via, o.outcome.converged])).toEqual([
    ["v2-moves", false],
    ["git-fetch", true],
  ]);

  // A new branch and a deletion in one webhook.
  const tip = await wc.revParse("HEAD");
  await wc.push([`${tip}:refs/heads/topic`, ":refs/heads/feature"]);
  const featureWas = (await listRefs(dir)).get("refs/heads/feature")!;
  m.daemon.refsChanged(KEY, [
    { refId: "refs/heads/topic", fromHash: "0".repeat(40), toHash: tip, type: "ADD" },
    { refId: "refs/heads/feature", fromHash: featureWas, toHash: "0".repeat(40), type: "DELETE" },
  ]);
  await m.daemon.idle();
  const after = await listRefs(dir);
  expect(after.get("refs/heads/topic")).toBe(tip);
  expect(after.has("refs/heads/feature")).toBe(false);
  expect(outcomes.at(-1)?.outcome.via).toBe("v2-moves");

  // A stale webhook (its old value is not what the mirror holds): no ref moves backwards; the
  // full fetch brings the primary's truth.
  const old = await wc.revParse("HEAD~2");
  const newer = await wc.commit({ "c.txt": "after the stale one\n" });
  await wc.push(["HEAD:refs/heads/trunk"]);
  m.daemon.refsChanged(KEY, [{ refId: "refs/heads/trunk", fromHash: old, toHash: await wc.revParse("HEAD~1"), type: "UPDATE" }]);
  await m.daemon.idle();
  expect((await listRefs(dir)).get("refs/heads/trunk")).toBe(newer);
  expect(outcomes.at(-1)?.outcome.via).toBe("git-fetch");
  await assertSameRefsAndObjects(primary.repoPath(APP.project, APP.slug), dir);
  await m.stop();
});
