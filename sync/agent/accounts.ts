/**
 * System groups and users a plan needs, decided from `getent` answers: pure. Accounts are
 * only ever added (groups, users, memberships), never changed or removed: an existing account
 * may be used by something else on the host.
 */
import { Plan } from "./plan";

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  /** Supplementary members (primary members are not listed by the group database). */
  members: string[];
}

/** One `getent passwd NAME` line: name:x:uid:gid:gecos:home:shell. */
export function parsePasswdLine(line: string): PasswdEntry | undefined {
  const f = line.trim().split(":");
  if (f.length < 7 || !/^\d+$/.test(f[2]) || !/^\d+$/.test(f[3])) return undefined;
  return { name: f[0], uid: Number(f[2]), gid: Number(f[3]), home: f[5], shell: f[6] };
}

/** One `getent group NAME` line: name:x:gid:member,member. */
export function parseGroupLine(line: string): GroupEntry | undefined {
  const f = line.trim().split(":");
  if (f.length < 4 || !/^\d+$/.test(f[2])) return undefined;
  return { name: f[0], gid: Number(f[2]), members: f[3] ? f[3].split(",").filter(Boolean) : [] };
}

export interface AccountState {
  users: ReadonlyMap<string, PasswdEntry>;
  groups: ReadonlyMap<string, GroupEntry>;
  /** Of the fixed uids/gids the plan asks for, those another account or group already has. */
  takenUids?: ReadonlySet<number>;
  takenGids?: ReadonlySet<number>;
}

export type AccountAction =
  | { kind: "groupadd"; name: string; gid?: number }
  | { kind: "useradd"; name: string; home: string; group: string; groups: string[]; uid?: number }
  | { kind: "add-member"; user: string; group: string };

export interface AccountDecision {
  actions: AccountAction[];
  problems: string[];
}

/** Every account name the plan mentions, for the shell to look up. */
export function accountNames(plan: Plan): { users: string[]; groups: string[]; uids: number[]; gids: number[] } {
  const users = new Set<string>();
  const groups = new Set<string>();
  for (const g of plan.groups ?? []) {
    groups.add(g.name);
    for (const m of g.members ?? []) users.add(m);
  }
  for (const u of plan.users) {
    users.add(u.name);
    groups.add(u.group ?? u.name);
    for (const g of u.groups ?? []) groups.add(g);
  }
  for (const e of [...plan.dirs, ...plan.files]) {
    if (e.owner) users.add(e.owner);
    if (e.group) groups.add(e.group);
  }
  return { users: [...users], groups: [...groups], uids: plan.users.flatMap((u) => (u.uid !== undefined ? [u.uid] : [])), gids: (plan.groups ?? []).flatMap((g) => (g.gid !== undefined ? [g.gid] : [])) };
}

/** `useradd` renders an account line; the short form used in summaries and logs. */
export function describeAccountAction(a: AccountAction): string {
  switch (a.kind) {
    case "groupadd":
      return `group ${a.name}`;
    case "useradd":
      return `user ${a.name}`;
    case "add-member":
      return `member ${a.user} of ${a.group}`;
  }
}

export function decideAccountActions(plan: Plan, state: AccountState): AccountDecision {
  const actions: AccountAction[] = [];
  const problems: string[] = [];
  const groupsToCreate = new Set<string>();
  const usersToCreate = new Map<string, { group: string; groups: string[] }>();

  // A fixed id is used only while nobody else has it; otherwise the system picks one and
  // apply re-owns the home (reown.ts), so a taken id never fails the deploy.
  const fixedGid = new Map((plan.groups ?? []).filter((g) => g.gid !== undefined && !state.takenGids?.has(g.gid)).map((g) => [g.name, g.gid as number]));
  const wantGroup = (name: string) => {
    if (!state.groups.has(name) && !groupsToCreate.has(name)) {
      groupsToCreate.add(name);
      const gid = fixedGid.get(name);
      actions.push({ kind: "groupadd", name, ...(gid !== undefined ? { gid } : {}) });
    }
  };
  for (const g of plan.groups ?? []) wantGroup(g.name);
  for (const u of plan.users) if (!state.users.has(u.name)) wantGroup(u.group ?? u.name);

  const groupExists = (g: string) => state.groups.has(g) || groupsToCreate.has(g);
  const isMember = (user: string, group: string): boolean => {
    const g = state.groups.get(group);
    const u = state.users.get(user);
    if (!g || !u) return false;
    return g.members.includes(user) || u.gid === g.gid;
  };

  for (const u of plan.users) {
    const extras = u.groups ?? [];
    const missing = extras.filter((g) => !groupExists(g));
    for (const g of missing) problems.push(`group ${g} (an extra group of user ${u.name}) does not exist: install the package that provides it, or add { "name": "${g}" } to plan.groups`);
    const existing = state.users.get(u.name);
    if (!existing) {
      const group = u.group ?? u.name;
      const groups = extras.filter((g) => groupExists(g));
      usersToCreate.set(u.name, { group, groups });
      const uid = u.uid !== undefined && !state.takenUids?.has(u.uid) ? { uid: u.uid } : {};
      actions.push({ kind: "useradd", name: u.name, home: u.home, group, groups, ...uid });
      continue;
    }
    if (u.group && state.groups.get(u.group)?.gid !== existing.gid) {
      problems.push(`user ${u.name} exists with primary gid ${existing.gid}, not group ${u.group}; apply never changes an existing account: fix it with usermod -g ${u.group} ${u.name}, or drop "group" from plan.users`);
    }
    for (const g of extras) if (groupExists(g) && !isMember(u.name, g)) actions.push({ kind: "add-member", user: u.name, group: g });
  }

  for (const g of plan.groups ?? []) {
    for (const m of g.members ?? []) {
      const created = usersToCreate.get(m);
      if (created) {
        if (created.group !== g.name && !created.groups.includes(g.name)) actions.push({ kind: "add-member", user: m, group: g.name });
        continue;
      }
      if (!state.users.has(m)) {
        problems.push(`user ${m} (a member of group ${g.name}) does not exist: install the package that provides it, or add it to plan.users`);
        continue;
      }
      if (!isMember(m, g.name) && !actions.some((a) => a.kind === "add-member" && a.user === m && a.group === g.name)) actions.push({ kind: "add-member", user: m, group: g.name });
    }
  }
  return { actions, problems };
}
