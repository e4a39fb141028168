/**
 * `smart-mirror apply`: lay a plan down and restart what changed. A thin shell around the
 * pure decisions (accounts.ts, fileActions.ts, serviceActions.ts):
 *
 *   1. accounts: getent -> decide -> groupadd/useradd/usermod
 *   2. files:    resolve owners, hash the plan's content, observe the disk -> decide -> write
 *                (atomic, only what differs; the previous version kept for a rollback)
 *   3. checks:   the validators whose paths changed (nginx -t); a failure restores every
 *                file and fails the apply with the validator's output; nothing is restarted
 *   4. services: daemon-reload if a unit changed, enable, restart/reload/start
 *
 * Idempotent: a second apply of the same plan finds nothing to do. Secrets never reach a log
 * or the summary (not even a hash prefix: a short secret could be guessed from one).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { AccountState, accountNames, decideAccountActions, describeAccountAction } from "./accounts";
import { lookupGroup, lookupUser, observeAccounts, runAccountAction } from "./accountsIo";
import { changedPaths, decideFileActions, Desired, FileAction, Observed, Reason, rollbackActions } from "./fileActions";
import { commit, Content, hostPath, observe, perform, sha256OfBuffer, sha256OfFile, undo } from "./fsOps";
import { Plan } from "./plan";
import { decideReown, describeReown, reownArgv } from "./reown";
import { mustRun, runProcess, showArgv } from "./runProcess";
import { UnsafePathError } from "./safePath";
import { decideServiceActions, ServiceState } from "./serviceActions";
import { ServiceManager } from "./serviceManager";

export interface ApplyOptions {
  /** Apply under this prefix instead of "/" (tests, `npm start`). Accounts are always the host's. */
  root?: string;
  services: ServiceManager;
  /** Decide and report, change nothing. */
  dryRun?: boolean;
  /** Progress lines (stderr in the CLI); never given content or secrets. */
  log?: (line: string) => void;
}

export interface FileChange {
  path: string;
  reasons: Reason[];
  /** sha256 prefixes of the old and new content; absent for secrets and unchanged content. */
  from?: string;
  to?: string;
  secret?: true;
}

export interface ApplySummary {
  ok: boolean;
  dryRun: boolean;
  /** Accounts created or memberships added: "group g", "user u", "member u of g". */
  accounts: string[];
  /** Plan paths written, created, or given a new mode/owner. */
  changed: string[];
  details: FileChange[];
  /** Number of plan paths (and user homes) that already were as planned. */
  unchanged: number;
  /** Validator commands that ran (and passed, unless ok is false). */
  validated: string[];
  daemonReload: boolean;
  enabled: string[];
  restarted: string[];
  reloaded: string[];
  started: string[];
  /** After a failed check: the paths restored to their previous state. */
  rolledBack?: string[];
  error?: string;
}

export class ApplyError extends Error {
  constructor(
    message: string,
    readonly summary: ApplySummary,
  ) {
    super(message);
    this.name = "ApplyError";
  }
}

const PREFIX = 12;
const short = (h: string | undefined) => h?.slice(0, PREFIX);

function emptySummary(dryRun: boolean): ApplySummary {
  return { ok: true, dryRun, accounts: [], changed: [], details: [], unchanged: 0, validated: [], daemonReload: false, enabled: [], restarted: [], reloaded: [], started: [] };
}

export function describeChange(a: FileAction): FileChange {
  const c: FileChange = { path: a.path, reasons: a.kind === "mkdir" ? ["new"] : a.reasons };
  if (a.kind === "write") {
    if (a.secret) c.secret = true;
    else {
      if (a.previous) c.from = short(a.previous.sha256);
      c.to = short(a.sha256);
    }
  }
  return c;
}

function logLine(c: FileChange): string {
  const hashes = c.to ? `; sha256 ${c.from ?? "(none)"} -> ${c.to}` : "";
  return `${c.path}: ${c.reasons.join(", ")}${c.secret ? " (secret)" : ""}${hashes}`;
}

/** One apply at a time per root: two deploys racing would interleave backups and restarts. */
function takeLock(root: string): () => void {
  const file = hostPath(root, "/run/smart-mirror-apply.lock");
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: "wx", mode: 0o644 });
      return () => fs.rmSync(file, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const owner = Number(fs.readFileSync(file, "utf8").trim());
      let alive = false;
      try {
        process.kill(owner, 0);
        alive = owner > 0;
      } catch {
        alive = false;
      }
      if (alive) throw new Error(`another apply (pid ${owner}) holds ${file}; wait for it to finish`);
      fs.rmSync(file, { force: true }); // its owner died: stale
    }
  }
  throw new Error(`cannot take ${file}`);
}

/** Owner and group names -> ids, with the defaults of plan.ts; null = account not there (dry run). */
async function idResolver(): Promise<(owner?: string, group?: string) => Promise<{ uid: number | null; gid: number | null }>> {
  const users = new Map<string, { uid: number; gid: number } | null>();
  const groups = new Map<string, number | null>();
  const user = async (n: string) => {
    if (!users.has(n)) {
      const u = await lookupUser(n);
      users.set(n, u ? { uid: u.uid, gid: u.gid } : null);
    }
    return users.get(n) ?? null;
  };
  const group = async (n: string) => {
    if (!groups.has(n)) groups.set(n, (await lookupGroup(n))?.gid ?? null);
    return groups.get(n) ?? null;
  };
  const euid = process.geteuid?.() ?? 0;
  const egid = process.getegid?.() ?? 0;
  return async (owner, grp) => {
    const u = owner ? await user(owner) : { uid: euid, gid: egid };
    const gid = grp ? await group(grp) : (u?.gid ?? null);
    return { uid: u?.uid ?? null, gid };
  };
}

export async function applyPlan(plan: Plan, opts: ApplyOptions): Promise<ApplySummary> {
  const root = opts.root ?? "/";
  const dryRun = opts.dryRun ?? false;
  const log = opts.log ?? (() => undefined);
  const summary = emptySummary(dryRun);
  const release = dryRun ? () => undefined : takeLock(root);
  try {
    return await applyLocked(plan, root, dryRun, log, opts.services, summary);
  } finally {
    release();
  }
}

async function applyLocked(plan: Plan, root: string, dryRun: boolean, log: (l: string) => void, services: ServiceManager, summary: ApplySummary): Promise<ApplySummary> {
  // 1. accounts
  const accounts: AccountState = await observeAccounts(accountNames(plan));
  const acc = decideAccountActions(plan, accounts);
  if (acc.problems.length > 0) throw new Error(`cannot set up accounts:\n${acc.problems.map((p) => `  - ${p}`).join("\n")}`);
  for (const a of acc.actions) {
    summary.accounts.push(describeAccountAction(a));
    log(`${dryRun ? "would create" : "create"} ${describeAccountAction(a)}`);
    if (!dryRun) await runAccountAction(a);
  }

  // 2. files: desired state (ids resolved after the accounts exist), then the disk
  const ids = await idResolver();

  // A kept home written under other ids (a replaced machine) goes to the account first.
  for (const u of plan.users) {
    const id = await ids(u.name, u.group);
    if (id.uid === null || id.gid === null) continue; // dry run: the account does not exist yet
    let observed: { uid: number; gid: number } | undefined;
    try {
      const st = fs.lstatSync(hostPath(root, u.home));
      observed = st.isDirectory() ? { uid: st.uid, gid: st.gid } : undefined;
    } catch {
      observed = undefined;
    }
    const r = decideReown(u.home, observed, { uid: id.uid, gid: id.gid });
    if (!r) continue;
    summary.accounts.push(describeReown(r));
    log(`${dryRun ? "would re-own" : "re-own"}: ${describeReown(r)}`);
    if (dryRun) continue;
    for (const argv of reownArgv(r, hostPath(root, u.home))) await mustRun(argv, `cannot re-own ${u.home}`);
  }

  const contents = new Map<string, Content>();
  const desired: Desired[] = [];
  const listed = new Set(plan.dirs.map((d) => d.path));
  for (const u of plan.users) {
    if (listed.has(u.home)) continue;
    const id = await ids(u.name, u.group);
    desired.push({ kind: "dir", path: u.home, mode: 0o750, ...id, createOnly: true });
  }
  for (const d of plan.dirs) desired.push({ kind: "dir", path: d.path, mode: d.mode, ...(await ids(d.owner, d.group)) });
  for (const f of plan.files) {
    let content: Content;
    let sha256: string;
    if (f.contentBase64 !== undefined) {
      const data = Buffer.from(f.contentBase64, "base64");
      content = { kind: "inline", data };
      sha256 = sha256OfBuffer(data);
    } else {
      const src = f.sourcePath as string;
      if (!fs.existsSync(src)) throw new Error(`${f.path}: its sourcePath ${src} does not exist on this host; copy it there before apply`);
      content = { kind: "source", path: src };
      sha256 = await sha256OfFile(src);
    }
    contents.set(f.path, content);
    desired.push({ kind: "file", path: f.path, mode: f.mode, ...(await ids(f.owner, f.group)), sha256, secret: f.secret ?? false });
  }
  const observed = new Map<string, Observed>();
  const unsafe: string[] = [];
  for (const d of desired) {
    try {
      observed.set(d.path, await observe(root, d.path, d.kind));
    } catch (e) {
      // A symlink the service account could have made on the way: refuse before changing anything.
      if (!(e instanceof UnsafePathError)) throw e;
      unsafe.push(`${d.path}: ${e.message}`);
    }
  }
  if (unsafe.length > 0) {
    const msg = `refusing to apply, nothing was changed; unsafe paths:\n${[...new Set(unsafe)].map((u) => `  - ${u}`).join("\n")}`;
    throw new ApplyError(msg, fail(summary, new Error(msg)));
  }
  const files = decideFileActions(desired, (p) => observed.get(p) as Observed);
  if (files.conflicts.length > 0) throw new Error(`cannot apply:\n${files.conflicts.map((c) => `  - ${c}`).join("\n")}`);
  summary.unchanged = files.unchanged.length;
  summary.changed = changedPaths(files.actions);
  summary.details = files.actions.map(describeChange);

  const states = new Map<string, ServiceState>();
  for (const s of plan.services) states.set(s.unit, await services.state(s.unit));
  const svc = decideServiceActions(plan.services, plan.validate ?? [], summary.changed, states);
  summary.daemonReload = svc.daemonReload;

  if (dryRun) {
    for (const c of summary.details) log(`would change ${logLine(c)}`);
    summary.validated = svc.validate.map((v) => showArgv(v.argv));
    Object.assign(summary, { enabled: svc.enable, restarted: svc.restart, reloaded: svc.reload, started: svc.start });
    return summary;
  }

  const applied: FileAction[] = [];
  const rollback = async (): Promise<string[]> => {
    const undos = rollbackActions(applied);
    for (const u of undos) await undo(root, u);
    return undos.map((u) => u.path);
  };
  try {
    for (const a of files.actions) {
      await perform(root, a, (p) => contents.get(p) as Content);
      applied.push(a);
      log(`changed ${logLine(describeChange(a))}`);
    }
  } catch (e) {
    summary.rolledBack = await rollback();
    const failed = files.actions[applied.length]?.path ?? "the plan";
    const msg = `could not apply ${failed}: ${(e as Error).message}; rolled back ${summary.rolledBack.length} change(s)`;
    throw new ApplyError(msg, fail(summary, new Error(msg)));
  }

  // 3. checks, before any service sees the new files
  for (const v of svc.validate) {
    const shown = showArgv(v.argv);
    summary.validated.push(shown);
    log(`check: ${shown}`);
    const r = await runProcess(v.argv);
    if (r.code !== 0) {
      summary.rolledBack = await rollback();
      const output = (r.stderr.trim() + "\n" + r.stdout.trim()).trim();
      const msg = `check failed: \`${shown}\` exited ${r.code}${output ? `:\n${output}` : ""}\nrolled back ${summary.rolledBack.length} change(s) (${summary.rolledBack.join(", ")}); no service was touched`;
      throw new ApplyError(msg, fail(summary, new Error(msg)));
    }
  }
  await commit(root, applied);

  // 4. services
  try {
    if (svc.daemonReload) {
      log("daemon-reload");
      await services.daemonReload();
    }
    // In this order: a unit is enabled before it starts, restarted/reloaded units take the new files.
    const steps = [
      ["enable", svc.enable, summary.enabled],
      ["restart", svc.restart, summary.restarted],
      ["reload", svc.reload, summary.reloaded],
      ["start", svc.start, summary.started],
    ] as const;
    for (const [action, units, done] of steps) {
      for (const u of units) {
        log(`${action} ${u}`);
        await services[action](u);
        done.push(u);
      }
    }
  } catch (e) {
    throw new ApplyError((e as Error).message, fail(summary, e));
  }
  return summary;
}

function fail(summary: ApplySummary, e: unknown): ApplySummary {
  summary.ok = false;
  summary.error = e instanceof Error ? e.message : String(e);
  return summary;
}
