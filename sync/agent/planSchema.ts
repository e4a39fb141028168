/**
 * Parses and checks a deploy plan (JSON) before anything is touched: every problem is listed
 * at once, each with the field it is in and what to write instead. A plan that passes here
 * can still fail at apply time only for reasons of the host (a missing group, a full disk).
 */
import * as path from "node:path";
import { z } from "zod";
import { Plan, PLAN_VERSION } from "./plan";

export class PlanError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid deploy plan, ${problems.length} problem(s):\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "PlanError";
  }
}

/** Login names useradd accepts on Debian/RHEL for system accounts (and that need no quoting anywhere). */
export const ACCOUNT_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;
export const UNIT_NAME = /^[A-Za-z0-9@._:-]+\.(service|socket|timer|target|path|mount)$/;

/** Absolute, normalized, not "/": what every plan path must be (so prefixing with --root is a plain join). */
export function pathProblem(p: string): string | undefined {
  if (p.includes("\0")) return "must not contain NUL";
  if (!p.startsWith("/")) return `must be absolute, e.g. "/${p}"`;
  if (p === "/") return `must not be "/"`;
  const norm = path.posix.normalize(p).replace(/\/+$/, "");
  if (norm !== p) return `must be normalized (no "..", ".", "//" or trailing "/"): write ${JSON.stringify(norm)}`;
  return undefined;
}

const absPath = z.string().superRefine((p, ctx) => {
  const why = pathProblem(p);
  if (why) ctx.addIssue({ code: "custom", message: `path ${JSON.stringify(p)} ${why}` });
});

const accountName = z.string().regex(ACCOUNT_NAME, { message: `must match ${ACCOUNT_NAME} (a system account name: lower case, digits, "_" and "-", at most 32 characters)` });

/** A uid/gid for a service account: not root's 0, not nobody's 65534, within 16 bits. */
const accountId = z.number().int().min(1, { message: "must be 1..65533 (0 is root)" }).max(65533, { message: "must be 1..65533 (65534 is nobody, 65535 is reserved)" });

/** JSON has no octal literals: accept 384 or "0600"/"600"; always yields a number. */
const mode = z.union([z.number().int(), z.string()]).transform((v, ctx) => {
  let n = v as number;
  if (typeof v === "string") {
    if (!/^0?[0-7]{3,4}$/.test(v)) {
      ctx.addIssue({ code: "custom", message: `mode ${JSON.stringify(v)} must be an octal string like "0640" (or the number 416)` });
      return z.NEVER;
    }
    n = parseInt(v, 8);
  }
  if (n < 0 || n > 0o7777) {
    ctx.addIssue({ code: "custom", message: `mode ${n} is out of range: use 0..07777, e.g. "0640"` });
    return z.NEVER;
  }
  return n;
});

const base64 = z.string().regex(/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/, { message: "must be standard base64 (Buffer.from(content).toString(\"base64\"))" });

const schema = z.strictObject({
  version: z.literal(PLAN_VERSION, { message: `must be ${PLAN_VERSION}: this smart-mirror understands plan version ${PLAN_VERSION} only (deploy a matching bundle)` }),
  groups: z.array(z.strictObject({ name: accountName, gid: accountId.optional(), members: z.array(accountName).optional() })).optional(),
  users: z.array(z.strictObject({ name: accountName, home: absPath, group: accountName.optional(), uid: accountId.optional(), groups: z.array(accountName).optional() })),
  dirs: z.array(z.strictObject({ path: absPath, mode, owner: accountName.optional(), group: accountName.optional() })),
  files: z.array(
    z.strictObject({
      path: absPath,
      contentBase64: base64.optional(),
      sourcePath: absPath.optional(),
      mode,
      owner: accountName.optional(),
      group: accountName.optional(),
      secret: z.boolean().optional(),
    }),
  ),
  services: z.array(
    z.strictObject({
      unit: z.string().regex(UNIT_NAME, { message: `must be a systemd unit name with its suffix, e.g. "smart-mirror.service"` }),
      watches: z.array(absPath),
      reload: z.boolean().optional(),
      enable: z.boolean().optional(),
    }),
  ),
  validate: z
    .array(
      z.strictObject({
        argv: z.array(z.string().min(1).refine((s) => !s.includes("\0"), { message: "must not contain NUL" })).min(1, { message: "needs the command, e.g. [\"/usr/sbin/nginx\", \"-t\"]" }),
        when: z.array(absPath).min(1, { message: "name the plan paths whose change needs this check" }),
      }),
    )
    .optional(),
});

function where(p: ReadonlyArray<PropertyKey>): string {
  return p.reduce<string>((s, k) => (typeof k === "number" ? `${s}[${k}]` : s ? `${s}.${String(k)}` : String(k)), "plan");
}

/** True if `watch` names `p` itself or a directory above it. */
export function covers(watch: string, p: string): boolean {
  return p === watch || p.startsWith(watch + "/");
}

/** Checks across fields that zod cannot express per field. */
function crossCheck(plan: Plan): string[] {
  const problems: string[] = [];
  const seen = new Map<string, string>();
  const all: string[] = [];
  plan.dirs.forEach((d, i) => {
    const at = `plan.dirs[${i}]`;
    if (seen.has(d.path)) problems.push(`${at}.path: ${d.path} is also ${seen.get(d.path)}; list each path once`);
    seen.set(d.path, at);
    all.push(d.path);
  });
  plan.files.forEach((f, i) => {
    const at = `plan.files[${i}]`;
    if (seen.has(f.path)) problems.push(`${at}.path: ${f.path} is also ${seen.get(f.path)}; list each path once`);
    seen.set(f.path, at);
    all.push(f.path);
    if ((f.contentBase64 === undefined) === (f.sourcePath === undefined)) problems.push(`${at}: give exactly one of contentBase64 (inline content) and sourcePath (a file on the host)`);
    if (f.secret && (f.mode & 0o077) !== 0) problems.push(`${at}.mode: secret file ${f.path} has mode 0${f.mode.toString(8)}, which lets group or others read it; use "0600" (or "0400")`);
  });
  for (const f of plan.files) {
    for (const other of all) if (other !== f.path && covers(f.path, other)) problems.push(`plan: ${other} is inside ${f.path}, which is a file; fix one of the two paths`);
  }
  const inPlan = (p: string) => all.some((x) => covers(p, x));
  plan.services.forEach((s, i) => {
    s.watches.forEach((w, j) => {
      if (!inPlan(w)) problems.push(`plan.services[${i}].watches[${j}]: ${w} is not a path of this plan (nor a directory above one); a watch on it would never fire`);
    });
  });
  const units = new Set<string>();
  plan.services.forEach((s, i) => {
    if (units.has(s.unit)) problems.push(`plan.services[${i}].unit: ${s.unit} is listed twice; merge its watches`);
    units.add(s.unit);
  });
  (plan.validate ?? []).forEach((v, i) => {
    v.when.forEach((w, j) => {
      if (!inPlan(w)) problems.push(`plan.validate[${i}].when[${j}]: ${w} is not a path of this plan (nor a directory above one); the check would never run`);
    });
  });
  const users = new Set<string>();
  plan.users.forEach((u, i) => {
    if (users.has(u.name)) problems.push(`plan.users[${i}].name: ${u.name} is listed twice`);
    users.add(u.name);
    if (u.name === "root") problems.push(`plan.users[${i}].name: "root" is not a service account; pick a system user name such as "smart-mirror"`);
  });
  return problems;
}

/** Parse a plan from its JSON text; throws PlanError listing every problem. */
export function parsePlan(text: string): Plan {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new PlanError([`plan is not JSON: ${(e as Error).message}`]);
  }
  const r = schema.safeParse(json);
  if (!r.success) throw new PlanError(r.error.issues.map((i) => `${where(i.path)}: ${i.message}`));
  const plan = r.data as Plan;
  const problems = crossCheck(plan);
  if (problems.length > 0) throw new PlanError(problems);
  return plan;
}
