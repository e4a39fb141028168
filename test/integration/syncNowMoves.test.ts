/**
 * Daemon.syncNow with the ref moves of a push the mirror forwarded (read-your-writes,
 * sync/serve/push): it settles as soon as the job applied and recorded exactly those moves,
 * before the job's convergence check ends; without moves, or with moves that do not match what
 * was applied, only when the job ends. Real sshd primary, the in-process daemon.
 */
import { startInProcessMirror, InProcessMirror } from "../../testbed/inProcessMirror";
import { Primary, startPrimary } from "../../testbed/primary";
import { listRefs, workingClone, WorkingClone } from "../../testbed/repos";

jest.setTimeout(120_000);

const ID = { project: "PROJ", slug: "app" };
const KEY = "PROJ/app";
let primary: Primary;
let m: InProcessMirror;
let wc: WorkingClone;

beforeAll(async () => {
  primary = await startPrimary();
  await primary.createRepo(ID.project, ID.slug);
  wc = await workingClone(primary.remote(ID.project, ID.slug));
  await wc.commit({ "a.txt": "one\n" });
  await wc.push(["HEAD:refs/heads/main"]);
  m = await startInProcessMirror(primary, [ID]);
  await m.daemon.idle();
});

async function pushed(): Promise<{ old: string; new: string }> {
  const old = await wc.revParse("HEAD");
  const neu = await wc.commit({ "a.txt": `${Date.now()}\n` });
  await wc.push(["HEAD:refs/heads/main"]);
  return { old, new: neu };
}

test("with the push's moves: settled once they are on disk, while the job still runs its convergence check", async () => {
  const p = await pushed();
  const r = await m.daemon.syncNow(KEY, [{ refId: "refs/heads/main", fromHash: p.old, toHash: p.new }]);
  expect(r).toEqual({ ok: true });
  // Served from here on...
  expect((await listRefs(m.daemon.repoDir(KEY))).get("refs/heads/main")).toBe(p.new);
  // ...and settled before the job ended (its ls-refs on a fresh session was still to come).
  expect(m.daemon.scheduler.repo(KEY)?.running).toBe(true);
  await m.daemon.idle();
});

test("moves that are not what the job applied (a stale old value): settled by the job's end, refs right all the same", async () => {
  const p = await pushed();
  const r = await m.daemon.syncNow(KEY, [{ refId: "refs/heads/main", fromHash: "1".repeat(40), toHash: p.new }]);
  expect(r).toEqual({ ok: true });
  expect(m.daemon.scheduler.repo(KEY)?.running ?? false).toBe(false);
  expect((await listRefs(m.daemon.repoDir(KEY))).get("refs/heads/main")).toBe(p.new);
});
