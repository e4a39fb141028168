/**
 * The accounts shell: look names up with getent (NSS, so LDAP-provided groups count too) and
 * create what decideAccountActions asked for with the shadow-utils commands.
 */
import { AccountAction, AccountState, GroupEntry, parseGroupLine, parsePasswdLine, PasswdEntry } from "./accounts";
import { mustRun, runProcess } from "./runProcess";

/** getent exits 2 for "not found"; anything else non-zero is a real failure. */
async function getent(db: "passwd" | "group", name: string): Promise<string | undefined> {
  const r = await runProcess(["getent", db, name]);
  if (r.code === 2) return undefined;
  if (r.code !== 0) throw new Error(`getent ${db} ${name} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout.split("\n")[0];
}

export async function lookupUser(name: string): Promise<PasswdEntry | undefined> {
  const line = await getent("passwd", name);
  return line === undefined ? undefined : parsePasswdLine(line);
}

export async function lookupGroup(name: string): Promise<GroupEntry | undefined> {
  const line = await getent("group", name);
  return line === undefined ? undefined : parseGroupLine(line);
}

export async function observeAccounts(names: { users: string[]; groups: string[]; uids?: number[]; gids?: number[] }): Promise<AccountState> {
  const users = new Map<string, PasswdEntry>();
  const groups = new Map<string, GroupEntry>();
  for (const n of names.users) {
    const u = await lookupUser(n);
    if (u) users.set(n, u);
  }
  for (const n of names.groups) {
    const g = await lookupGroup(n);
    if (g) groups.set(n, g);
  }
  // A wanted id is taken when getent knows it under another name (NSS: LDAP accounts count).
  const takenUids = new Set<number>();
  for (const id of names.uids ?? []) {
    const u = await lookupUser(String(id));
    if (u && !names.users.includes(u.name)) takenUids.add(id);
  }
  const takenGids = new Set<number>();
  for (const id of names.gids ?? []) {
    const g = await lookupGroup(String(id));
    if (g && !names.groups.includes(g.name)) takenGids.add(id);
  }
  return { users, groups, takenUids, takenGids };
}

/** The shadow-utils argv for one action; pure, shown in the dry-run output and tested. */
export function accountArgv(a: AccountAction): string[] {
  switch (a.kind) {
    case "groupadd":
      return ["groupadd", "--system", ...(a.gid !== undefined ? ["--gid", String(a.gid)] : []), a.name];
    case "useradd":
      // No home is created here: the plan creates it (mode, owner) under --root like every dir.
      return [
        "useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
        "--home-dir", a.home, "--gid", a.group,
        ...(a.uid !== undefined ? ["--uid", String(a.uid)] : []),
        ...(a.groups.length > 0 ? ["--groups", a.groups.join(",")] : []),
        "--comment", "smart-mirror service account",
        a.name,
      ];
    case "add-member":
      return ["usermod", "--append", "--groups", a.group, a.user];
  }
}

export async function runAccountAction(a: AccountAction): Promise<void> {
  await mustRun(accountArgv(a), `cannot create ${a.kind === "add-member" ? `membership of ${a.user} in ${a.group}` : a.name} (apply must run as root)`);
}
