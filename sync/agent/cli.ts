/**
 * The `apply` subcommand's shell: read and check the plan, pick the service manager, apply,
 * print the JSON summary on stdout (also on failure, with ok=false) and progress on stderr.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { ApplyError, applyPlan } from "./apply";
import { execSupervisor } from "./execSupervisor";
import { fetchPlan, FetchedPlan, parsePlanUrl, parseSha256, PlanSourceError, PlanUrl } from "./planSource";
import { parsePlan, PlanError } from "./planSchema";
import { ServiceManager, systemctlManager } from "./serviceManager";
import { describeTarget, parseStatusUrl, ReadinessTarget, readinessTargetFromPlan, waitReady } from "./waitReady";

export interface ApplyCliOptions {
  /** A local plan file; exactly one of plan and planUrl. */
  plan?: string;
  /** https://... or s3://bucket/key (planSource.ts); needs planSha256. */
  planUrl?: string;
  /** The plan's SHA-256 (hex): required with planUrl, checked with plan too when given. */
  planSha256?: string;
  /** PEM bundle for the https plan server (default the system store). */
  planCa?: string;
  /** Seconds: after the apply, wait until the daemon answers GET /status/ready 200 (exit 1 if not in time). */
  waitReady?: number;
  /** Where to ask for readiness (default the daemon's listener from the plan). */
  statusUrl?: string;
  root?: string;
  dryRun?: boolean;
  /** "systemctl" (default without --root) or "exec" (default with --root). */
  services?: string;
}

export const SERVICE_MANAGERS = ["systemctl", "exec"] as const;

/** systemctl acts on the host's real units: it makes no sense for files laid down under a prefix. */
export function chooseServiceManager(root: string, requested?: string): "systemctl" | "exec" {
  if (requested !== undefined && !(SERVICE_MANAGERS as readonly string[]).includes(requested)) {
    throw new Error(`--services must be one of ${SERVICE_MANAGERS.join(", ")} (got ${JSON.stringify(requested)})`);
  }
  const chosen = (requested ?? (root === "/" ? "systemctl" : "exec")) as "systemctl" | "exec";
  if (chosen === "systemctl" && root !== "/") throw new Error(`--services systemctl cannot be combined with --root ${root}: systemd would run the host's units, not the ones under the root; use --services exec`);
  return chosen;
}

/** The longest --wait-ready (a first sync of a large catalog can take hours; a roll-out waits per node). */
export const MAX_WAIT_READY_SECONDS = 24 * 3600;

export interface CheckedSource {
  source: { kind: "file"; file: string } | { kind: "url"; url: PlanUrl };
  sha256?: string;
  waitReadyMs?: number;
  statusUrl?: ReadinessTarget;
}

/** The plan source and wait options, checked together; throws an Error naming the fix. */
export function checkApplyOptions(o: ApplyCliOptions): CheckedSource {
  if (o.plan !== undefined && o.planUrl !== undefined) throw new Error("give either --plan FILE or --plan-url URL, not both");
  if (o.plan === undefined && o.planUrl === undefined) throw new Error("give the plan: --plan FILE, or --plan-url https://...|s3://BUCKET/KEY with --plan-sha256 HEX");
  if (o.planUrl !== undefined && o.planSha256 === undefined) throw new Error("--plan-url needs --plan-sha256 HEX (the plan's SHA-256 the deploy recorded): a fetched plan is applied only when it is exactly the one deployed");
  if (o.planCa !== undefined && o.planUrl === undefined) throw new Error("--plan-ca only applies to --plan-url https://...");
  const sha256 = o.planSha256 !== undefined ? parseSha256(o.planSha256) : undefined;
  const source = o.planUrl !== undefined ? ({ kind: "url", url: parsePlanUrl(o.planUrl) } as const) : ({ kind: "file", file: o.plan as string } as const);
  if (o.planCa !== undefined && source.kind === "url" && source.url.kind !== "https") throw new Error("--plan-ca only applies to an https:// --plan-url (s3:// is verified by the AWS CLI)");
  let waitReadyMs: number | undefined;
  if (o.waitReady !== undefined) {
    if (!Number.isInteger(o.waitReady) || o.waitReady < 1 || o.waitReady > MAX_WAIT_READY_SECONDS) throw new Error(`--wait-ready must be a whole number of seconds from 1 to ${MAX_WAIT_READY_SECONDS} (got ${o.waitReady})`);
    waitReadyMs = o.waitReady * 1000;
  }
  if (o.statusUrl !== undefined && waitReadyMs === undefined) throw new Error("--status-url only applies with --wait-ready SECONDS");
  if (waitReadyMs !== undefined && o.dryRun) throw new Error("--wait-ready cannot be combined with --dry-run (nothing is started)");
  let statusUrl: ReadinessTarget | undefined;
  if (o.statusUrl !== undefined) {
    const t = parseStatusUrl(o.statusUrl);
    if ("problem" in t) throw new Error(t.problem);
    statusUrl = t;
  }
  return { source, sha256, waitReadyMs, statusUrl };
}

export async function runApplyCli(o: ApplyCliOptions, out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  const root = path.resolve(o.root ?? "/");
  let checked: CheckedSource;
  try {
    checked = checkApplyOptions(o);
  } catch (e) {
    err.write(`smart-mirror apply: ${(e as Error).message}\n`);
    return 1;
  }
  let fetched: FetchedPlan | undefined;
  let planFile: string;
  if (checked.source.kind === "url") {
    try {
      // Verified against --plan-sha256 before anything parses it.
      fetched = await fetchPlan({ url: checked.source.url, sha256: checked.sha256 as string, caFile: o.planCa });
      err.write(`smart-mirror apply: fetched the plan (${fetched.bytes} bytes, sha256 verified)\n`);
      planFile = fetched.file;
    } catch (e) {
      err.write(`smart-mirror apply: ${e instanceof PlanSourceError ? e.message : `cannot fetch the plan: ${(e as Error).message}`}\n`);
      return 1;
    }
  } else planFile = checked.source.file;
  try {
    return await applyFile(planFile, checked, o, root, out, err);
  } finally {
    // The plan may hold secrets: the fetched copy goes as soon as it is applied.
    fetched?.remove();
  }
}

async function applyFile(planFile: string, checked: CheckedSource, o: ApplyCliOptions, root: string, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(planFile);
  } catch (e) {
    err.write(`smart-mirror apply: cannot read plan ${planFile}: ${(e as Error).message}\n`);
    return 1;
  }
  const text = bytes.toString("utf8");
  if (checked.source.kind === "file" && checked.sha256 !== undefined) {
    const got = createHash("sha256").update(bytes).digest("hex");
    if (got !== checked.sha256) {
      err.write(`smart-mirror apply: ${planFile} does not match --plan-sha256: expected ${checked.sha256}, got ${got}; nothing was applied\n`);
      return 1;
    }
  }
  let services: ServiceManager;
  try {
    const plan = parsePlan(text);
    if (plan.files.some((f) => f.secret) && (fs.statSync(planFile).mode & 0o077) !== 0) {
      err.write(`smart-mirror apply: warning: ${planFile} holds secrets but is readable by group or others; copy plans with mode 0600 and delete them after apply\n`);
    }
    // Known before anything changes: a plan without a findable daemon address fails up front.
    let target: ReadinessTarget | undefined;
    if (checked.waitReadyMs !== undefined) {
      const t = checked.statusUrl ?? readinessTargetFromPlan(plan, root);
      if ("problem" in t) throw new Error(`--wait-ready: ${t.problem}`);
      target = t;
    }
    services = chooseServiceManager(root, o.services) === "exec" ? execSupervisor(root) : systemctlManager();
    const summary = await applyPlan(plan, { root, services, dryRun: o.dryRun, log: (l) => err.write(`smart-mirror apply: ${l}\n`) });
    out.write(JSON.stringify(summary) + "\n");
    if (target && checked.waitReadyMs !== undefined) {
      const seconds = checked.waitReadyMs / 1000;
      err.write(`smart-mirror apply: waiting up to ${seconds} s for readiness at ${describeTarget(target)}\n`);
      const r = await waitReady(target, checked.waitReadyMs, undefined, (l) => err.write(`smart-mirror apply: ${l}\n`));
      if (!r.ready) {
        err.write(`smart-mirror apply: applied, but the daemon was not ready within ${seconds} s (last: ${r.last}); see its log (journalctl -u smart-mirror) and GET /status/detail on the host\n`);
        return 1;
      }
      err.write(`smart-mirror apply: ready after ${Math.round(r.afterMs / 1000)} s: ${r.answer.body}\n`);
    }
    return 0;
  } catch (e) {
    if (e instanceof ApplyError) out.write(JSON.stringify(e.summary) + "\n");
    const msg = e instanceof PlanError || e instanceof Error ? e.message : String(e);
    err.write(`smart-mirror apply: ${msg}\n`);
    return 1;
  }
}
