/**
 * The pure decisions of apply, as tables: files (new, same, mode, owner, content, conflicts),
 * rollback, services (watch, unit change, reload, validators, enable/start), accounts.
 */
import { AccountState, decideAccountActions, GroupEntry, parseGroupLine, parsePasswdLine, PasswdEntry } from "./accounts";
import { accountArgv } from "./accountsIo";
import { changedPaths, decideFileActions, Desired, FileAction, Observed, rollbackActions } from "./fileActions";
import { Plan, PLAN_VERSION } from "./plan";
import { decideServiceActions, isOwnUnitPath, isUnitPath, ServiceState } from "./serviceActions";

const A = "a".repeat(64);
const B = "b".repeat(64);
const file = (p: Partial<Extract<Desired, { kind: "file" }>> = {}): Desired => ({ kind: "file", path: "/etc/x.conf", mode: 0o644, uid: 0, gid: 0, sha256: A, secret: false, ...p });
const dir = (p: Partial<Extract<Desired, { kind: "dir" }>> = {}): Desired => ({ kind: "dir", path: "/var/lib/m", mode: 0o750, uid: 100, gid: 100, ...p });
const onDisk = (o: Observed) => () => o;

describe("decideFileActions", () => {
  const table: Array<[string, Desired, Observed, string | undefined, string[]]> = [
    ["new file is written", file(), { kind: "missing" }, "write", ["new"]],
    ["same content, mode, owner: nothing", file(), { kind: "file", sha256: A, mode: 0o644, uid: 0, gid: 0 }, undefined, []],
    ["content differs: written", file(), { kind: "file", sha256: B, mode: 0o644, uid: 0, gid: 0 }, "write", ["content"]],
    ["content and mode differ: one write carries both", file(), { kind: "file", sha256: B, mode: 0o600, uid: 0, gid: 0 }, "write", ["content", "mode"]],
    ["mode only: chmod, no rewrite", file(), { kind: "file", sha256: A, mode: 0o664, uid: 0, gid: 0 }, "chmod-chown", ["mode"]],
    ["owner only: chown", file({ uid: 5 }), { kind: "file", sha256: A, mode: 0o644, uid: 0, gid: 0 }, "chmod-chown", ["owner"]],
    ["group only: chown", file({ gid: 7 }), { kind: "file", sha256: A, mode: 0o644, uid: 0, gid: 0 }, "chmod-chown", ["group"]],
    ["owner not created yet (dry run): differs", file({ uid: null }), { kind: "file", sha256: A, mode: 0o644, uid: 0, gid: 0 }, "chmod-chown", ["owner"]],
    ["new dir is made", dir(), { kind: "missing" }, "mkdir", []],
    ["dir as planned: nothing", dir(), { kind: "dir", mode: 0o750, uid: 100, gid: 100 }, undefined, []],
    ["dir mode differs: chmod", dir(), { kind: "dir", mode: 0o755, uid: 100, gid: 100 }, "chmod-chown", ["mode"]],
    ["user home that exists is never touched", dir({ createOnly: true }), { kind: "dir", mode: 0o700, uid: 0, gid: 0 }, undefined, []],
  ];
  test.each(table)("%s", (_name, want, have, kind, reasons) => {
    const d = decideFileActions([want], onDisk(have));
    expect(d.conflicts).toEqual([]);
    if (kind === undefined) {
      expect(d.actions).toEqual([]);
      expect(d.unchanged).toEqual([want.path]);
    } else {
      expect(d.actions).toHaveLength(1);
      expect(d.actions[0].kind).toBe(kind);
      if (d.actions[0].kind !== "mkdir") expect(d.actions[0].reasons).toEqual(reasons);
      expect(d.unchanged).toEqual([]);
    }
  });

  test("a content write remembers the previous metadata and hash (for rollback and the summary)", () => {
    const [a] = decideFileActions([file()], onDisk({ kind: "file", sha256: B, mode: 0o600, uid: 3, gid: 4 })).actions;
    expect(a).toMatchObject({ kind: "write", previous: { sha256: B, mode: 0o600, uid: 3, gid: 4 } });
  });

  test.each<[string, Desired, Observed, RegExp]>([
    ["directory where a file belongs", file(), { kind: "dir", mode: 0o755, uid: 0, gid: 0 }, /should be a regular file but is a directory/],
    ["symlink where a file belongs", file(), { kind: "other", type: "symlink" }, /should be a regular file but is a symlink; remove it/],
    ["file where a directory belongs", dir(), { kind: "file", sha256: A, mode: 0o644, uid: 0, gid: 0 }, /should be a directory but is a file/],
  ])("conflict: %s is refused, not replaced", (_n, want, have, msg) => {
    const d = decideFileActions([want], onDisk(have));
    expect(d.actions).toEqual([]);
    expect(d.conflicts).toHaveLength(1);
    expect(d.conflicts[0]).toMatch(msg);
  });

  test("directories come first, parents before children, then files in plan order", () => {
    const d = decideFileActions(
      [file({ path: "/b/f2" }), dir({ path: "/a/b/c" }), file({ path: "/a/f1" }), dir({ path: "/a" }), dir({ path: "/a/b" })],
      onDisk({ kind: "missing" }),
    );
    expect(changedPaths(d.actions)).toEqual(["/a", "/a/b", "/a/b/c", "/b/f2", "/a/f1"]);
  });
});

describe("rollbackActions", () => {
  test("undoes in reverse: restore replaced files, remove new ones, restore metadata, remove new dirs", () => {
    const applied: FileAction[] = [
      { kind: "mkdir", path: "/d", mode: 0o755, uid: 0, gid: 0 },
      { kind: "write", path: "/d/new", mode: 0o644, uid: 0, gid: 0, sha256: A, secret: false, reasons: ["new"] },
      { kind: "write", path: "/etc/old", mode: 0o644, uid: 0, gid: 0, sha256: A, secret: false, previous: { sha256: B, mode: 0o600, uid: 0, gid: 0 }, reasons: ["content"] },
      { kind: "chmod-chown", path: "/etc/k", target: "file", mode: 0o600, uid: 5, gid: 5, previous: { mode: 0o644, uid: 0, gid: 0 }, reasons: ["mode", "owner", "group"] },
    ];
    expect(rollbackActions(applied)).toEqual([
      { kind: "chmod-chown", path: "/etc/k", mode: 0o644, uid: 0, gid: 0 },
      { kind: "restore-backup", path: "/etc/old" },
      { kind: "remove", path: "/d/new" },
      { kind: "rmdir", path: "/d" },
    ]);
  });
});

describe("decideServiceActions", () => {
  const daemon = { unit: "smart-mirror.service", watches: ["/var/lib/smart-mirror/shared"], enable: true };
  const nginx = { unit: "nginx.service", watches: ["/etc/nginx/conf.d/smart-mirror.conf", "/etc/ssl/smart-mirror"], reload: true, enable: true };
  const nginxTest = { argv: ["/usr/sbin/nginx", "-t"], when: ["/etc/nginx/conf.d/smart-mirror.conf", "/etc/ssl/smart-mirror"] };
  const running: ServiceState = { active: true, enabled: true };
  const states = (over: Record<string, ServiceState> = {}) => new Map<string, ServiceState>([["smart-mirror.service", running], ["nginx.service", running], ...Object.entries(over)]);
  const decide = (changed: string[], s = states()) => decideServiceActions([daemon, nginx], [nginxTest], changed, s);

  test("nothing changed, all running and enabled: nothing to do", () => {
    expect(decide([])).toEqual({ validate: [], daemonReload: false, enable: [], restart: [], reload: [], start: [] });
  });

  test("a file under a watched directory restarts only that service", () => {
    expect(decide(["/var/lib/smart-mirror/shared/bitbucket.properties"])).toMatchObject({ restart: ["smart-mirror.service"], reload: [], validate: [], daemonReload: false });
  });

  test("the unit file changed: daemon-reload, then restart", () => {
    expect(decide(["/etc/systemd/system/smart-mirror.service"])).toMatchObject({ daemonReload: true, restart: ["smart-mirror.service"], reload: [] });
  });

  test("a drop-in of a reload-preferring service changed: restart, not reload (a reload keeps the old ExecStart)", () => {
    expect(decide(["/etc/systemd/system/nginx.service.d/limits.conf"])).toMatchObject({ daemonReload: true, restart: ["nginx.service"], reload: [] });
  });

  test("nginx conf changed: validate, then reload nginx; the daemon is untouched", () => {
    expect(decide(["/etc/nginx/conf.d/smart-mirror.conf"])).toEqual({ validate: [nginxTest], daemonReload: false, enable: [], restart: [], reload: ["nginx.service"], start: [] });
  });

  test("a certificate under a watched directory also validates and reloads", () => {
    expect(decide(["/etc/ssl/smart-mirror/cert.pem"])).toMatchObject({ validate: [nginxTest], reload: ["nginx.service"] });
  });

  test("a path that only shares a prefix does not match (/etc/ssl/smart-mirror-old)", () => {
    expect(decide(["/etc/ssl/smart-mirror-old/cert.pem"])).toMatchObject({ validate: [], reload: [] });
  });

  test("touched but not running: start (a reload or restart would fail or be meaningless)", () => {
    expect(decide(["/etc/nginx/conf.d/smart-mirror.conf"], states({ "nginx.service": { active: false, enabled: true } }))).toMatchObject({ reload: [], restart: [], start: ["nginx.service"] });
  });

  test("first deploy: enable and start both", () => {
    const off = { active: false, enabled: false };
    const d = decide(["/etc/systemd/system/smart-mirror.service", "/etc/nginx/conf.d/smart-mirror.conf"], states({ "smart-mirror.service": off, "nginx.service": off }));
    expect(d).toEqual({ validate: [nginxTest], daemonReload: true, enable: ["smart-mirror.service", "nginx.service"], restart: [], reload: [], start: ["smart-mirror.service", "nginx.service"] });
  });

  test("an enabled service found stopped with nothing changed is started (apply converges)", () => {
    expect(decide([], states({ "smart-mirror.service": { active: false, enabled: true } }))).toMatchObject({ start: ["smart-mirror.service"], restart: [] });
  });

  test("an unrelated unit file still needs a daemon-reload", () => {
    expect(decide(["/etc/systemd/system/other.timer"])).toMatchObject({ daemonReload: true, restart: [], reload: [] });
  });

  test.each([
    ["/etc/systemd/system/smart-mirror.service", true],
    ["/lib/systemd/system/nginx.service", true],
    ["/etc/systemd/system/nginx.service.d/override.conf", true],
    ["/etc/systemd/system/README", false],
    ["/etc/systemd/system/nginx.service.d/notes.txt", false],
    ["/etc/nginx/nginx.service", false],
  ])("isUnitPath(%s) = %s", (p, want) => {
    expect(isUnitPath(p)).toBe(want);
  });

  test("isOwnUnitPath tells a unit's own file and drop-ins from another unit's", () => {
    expect(isOwnUnitPath("nginx.service", "/etc/systemd/system/nginx.service.d/x.conf")).toBe(true);
    expect(isOwnUnitPath("nginx.service", "/etc/systemd/system/smart-mirror.service")).toBe(false);
  });
});

describe("accounts", () => {
  const plan = (p: Partial<Plan>): Plan => ({ version: PLAN_VERSION, users: [], dirs: [], files: [], services: [], ...p });
  const pw = (name: string, uid: number, gid: number): PasswdEntry => ({ name, uid, gid, home: "/", shell: "/usr/sbin/nologin" });
  const gr = (name: string, gid: number, members: string[] = []): GroupEntry => ({ name, gid, members });
  const state = (users: PasswdEntry[], groups: GroupEntry[]): AccountState => ({ users: new Map(users.map((u) => [u.name, u])), groups: new Map(groups.map((g) => [g.name, g])) });

  test("getent lines parse (and garbage does not)", () => {
    expect(parsePasswdLine("smart-mirror:x:998:997:smart-mirror service account:/var/lib/smart-mirror:/usr/sbin/nologin\n")).toEqual({ name: "smart-mirror", uid: 998, gid: 997, home: "/var/lib/smart-mirror", shell: "/usr/sbin/nologin" });
    expect(parseGroupLine("smart-mirror:x:997:www-data,backup")).toEqual({ name: "smart-mirror", gid: 997, members: ["www-data", "backup"] });
    expect(parseGroupLine("empty:x:5:")).toEqual({ name: "empty", gid: 5, members: [] });
    expect(parsePasswdLine("nonsense")).toBeUndefined();
  });

  test("missing user: its group, then the user with the extra groups", () => {
    const d = decideAccountActions(plan({ users: [{ name: "smart-mirror", home: "/var/lib/smart-mirror", groups: ["ssl-cert"] }] }), state([], [gr("ssl-cert", 110)]));
    expect(d.problems).toEqual([]);
    expect(d.actions).toEqual([
      { kind: "groupadd", name: "smart-mirror" },
      { kind: "useradd", name: "smart-mirror", home: "/var/lib/smart-mirror", group: "smart-mirror", groups: ["ssl-cert"] },
    ]);
    expect(accountArgv(d.actions[1])).toEqual([
      "useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "--home-dir", "/var/lib/smart-mirror", "--gid", "smart-mirror", "--groups", "ssl-cert", "--comment", "smart-mirror service account", "smart-mirror",
    ]);
  });

  test("everything present: nothing to do", () => {
    const p = plan({ users: [{ name: "sm", home: "/h", groups: ["ssl-cert"] }], groups: [{ name: "sm", members: ["www-data"] }] });
    const d = decideAccountActions(p, state([pw("sm", 998, 997), pw("www-data", 33, 33)], [gr("sm", 997, ["www-data"]), gr("ssl-cert", 110, ["sm"])]));
    expect(d).toEqual({ actions: [], problems: [] });
  });

  test("existing user, missing membership: only the membership is added", () => {
    const p = plan({ users: [{ name: "sm", home: "/h" }], groups: [{ name: "sm", members: ["www-data"] }] });
    const d = decideAccountActions(p, state([pw("sm", 998, 997), pw("www-data", 33, 33)], [gr("sm", 997)]));
    expect(d.actions).toEqual([{ kind: "add-member", user: "www-data", group: "sm" }]);
    expect(accountArgv(d.actions[0])).toEqual(["usermod", "--append", "--groups", "sm", "www-data"]);
  });

  test("a missing extra group or member is a problem that names the fix", () => {
    const p = plan({ users: [{ name: "sm", home: "/h", groups: ["www-data"] }], groups: [{ name: "sm", members: ["nginx"] }] });
    const d = decideAccountActions(p, state([], []));
    expect(d.problems.join("\n")).toMatch(/group www-data \(an extra group of user sm\) does not exist: install the package that provides it, or add \{ "name": "www-data" \} to plan.groups/);
    expect(d.problems.join("\n")).toMatch(/user nginx \(a member of group sm\) does not exist/);
  });
});
