/**
 * Fixed account ids and re-owning a kept home, for real: real accounts (useradd/groupadd,
 * deleted afterwards), a real home under a temp root with files of a previous owner, the
 * agent's applyPlan. What a replaced EC2 instance meets when it mounts the kept data volume.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { onCleanup, tempDir } from "../../testbed/resources";
import { lookupGroup, lookupUser } from "./accountsIo";
import { applyPlan } from "./apply";
import { Plan, PLAN_VERSION } from "./plan";
import { decideReown, reownArgv } from "./reown";
import { runProcess } from "./runProcess";
import { ServiceManager } from "./serviceManager";

const IS_ROOT = process.geteuid?.() === 0;
const rootTest = IS_ROOT ? test : test.skip;

const noServices: ServiceManager = {
  name: "none",
  state: async () => ({ active: false, enabled: false }),
  daemonReload: async () => undefined,
  enable: async () => undefined,
  start: async () => undefined,
  restart: async () => undefined,
  reload: async () => undefined,
};

/** A system account name nobody else uses; deleted (with its group) after the test file. */
function testAccount(tag: string): string {
  const name = `smr${tag}${process.pid.toString(36)}${Math.random().toString(36).slice(2, 5)}`;
  onCleanup(async () => {
    await runProcess(["userdel", name]);
    await runProcess(["groupdel", name]);
  });
  return name;
}

/** An id that is neither a uid nor a gid on this machine. */
async function freeId(): Promise<number> {
  for (;;) {
    const id = 40000 + Math.floor(Math.random() * 9000);
    const u = await runProcess(["getent", "passwd", String(id)]);
    const g = await runProcess(["getent", "group", String(id)]);
    if (u.code === 2 && g.code === 2) return id;
  }
}

const HOME = "/var/lib/smart-mirror";
const plan = (user: string, id: number): Plan => ({
  version: PLAN_VERSION,
  groups: [{ name: user, gid: id }],
  users: [{ name: user, home: HOME, group: user, uid: id }],
  dirs: [{ path: HOME, mode: 0o750, owner: user, group: user }],
  files: [],
  services: [],
});
const owner = (p: string) => {
  const st = fs.lstatSync(p);
  return { uid: st.uid, gid: st.gid };
};

describe("decideReown / reownArgv", () => {
  test("nothing to do for a missing home or one that is already the account's", () => {
    expect(decideReown(HOME, undefined, { uid: 617, gid: 617 })).toBeUndefined();
    expect(decideReown(HOME, { uid: 617, gid: 617 }, { uid: 617, gid: 617 })).toBeUndefined();
  });
  test("only the previous owner's files move, symlinks are not followed", () => {
    const r = decideReown(HOME, { uid: 998, gid: 997 }, { uid: 617, gid: 617 });
    expect(r && reownArgv(r, `/R${HOME}`)).toEqual([
      ["chown", "-R", "-h", "--from=998", "617", "--", `/R${HOME}`],
      ["chown", "-R", "-h", "--from=:997", ":617", "--", `/R${HOME}`],
    ]);
  });
});

describe("a kept home on a new machine (real accounts)", () => {
  rootTest("the account gets the fixed ids; the old owner's files are re-owned, others' and symlink targets are not; a second apply does nothing", async () => {
    const root = tempDir("reown-root");
    const user = testAccount("r");
    const id = await freeId();
    // The kept volume: written by a daemon whose account had the ids 54321:54322.
    const home = path.join(root, HOME);
    fs.mkdirSync(path.join(home, "repos", "PROJ", "r.git", "objects"), { recursive: true });
    fs.writeFileSync(path.join(home, "repos", "PROJ", "r.git", "HEAD"), "ref: refs/heads/main\n");
    fs.writeFileSync(path.join(home, "someone-elses"), "x\n");
    const outside = path.join(tempDir("reown-outside"), "target");
    fs.writeFileSync(outside, "not the daemon's\n");
    fs.symlinkSync(outside, path.join(home, "repos", "link"));
    await runProcess(["chown", "-R", "-h", "54321:54322", home]);
    fs.chownSync(path.join(home, "someone-elses"), 54999, 54999);

    const first = await applyPlan(plan(user, id), { root, services: noServices });
    expect(first.ok).toBe(true);
    expect(await lookupUser(user)).toMatchObject({ uid: id, gid: id });
    expect((await lookupGroup(user))?.gid).toBe(id);
    expect(first.accounts).toEqual([`group ${user}`, `user ${user}`, `home ${HOME} re-owned from 54321:54322 to ${id}:${id}`]);
    for (const p of ["", "repos", "repos/PROJ/r.git/objects", "repos/PROJ/r.git/HEAD", "repos/link"]) expect([p, owner(path.join(home, p))]).toEqual([p, { uid: id, gid: id }]);
    expect(owner(path.join(home, "someone-elses"))).toEqual({ uid: 54999, gid: 54999 });
    expect(owner(outside)).toEqual({ uid: 0, gid: 0 });

    const again = await applyPlan(plan(user, id), { root, services: noServices });
    expect(again.accounts).toEqual([]);
    expect(again.changed).toEqual([]);
  });

  rootTest("the fixed id is taken by another account: the system picks one, the deploy does not fail", async () => {
    const root = tempDir("reown-taken");
    const id = await freeId();
    const other = testAccount("o");
    expect((await runProcess(["groupadd", "--system", "--gid", String(id), other])).code).toBe(0);
    expect((await runProcess(["useradd", "--system", "--no-create-home", "--uid", String(id), "--gid", other, other])).code).toBe(0);
    const user = testAccount("t");
    const s = await applyPlan(plan(user, id), { root, services: noServices });
    expect(s.ok).toBe(true);
    const pw = await lookupUser(user);
    expect(pw?.uid).not.toBe(id);
    expect(pw?.uid).toBeLessThan(1000);
    expect(owner(path.join(root, HOME))).toEqual({ uid: pw?.uid, gid: pw?.gid });
  });
});
