/**
 * The `apply` subcommand's shell: read and check the plan, pick the service manager, apply,
 * print the JSON summary on stdout (also on failure, with ok=false) and progress on stderr.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { ApplyError, applyPlan } from "./apply";
import { execSupervisor } from "./execSupervisor";
import { parsePlan, PlanError } from "./planSchema";
import { ServiceManager, systemctlManager } from "./serviceManager";

export interface ApplyCliOptions {
  plan: string;
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

export async function runApplyCli(o: ApplyCliOptions, out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  const root = path.resolve(o.root ?? "/");
  let text: string;
  try {
    text = fs.readFileSync(o.plan, "utf8");
  } catch (e) {
    err.write(`smart-mirror apply: cannot read plan ${o.plan}: ${(e as Error).message}\n`);
    return 1;
  }
  let services: ServiceManager;
  try {
    const plan = parsePlan(text);
    if (plan.files.some((f) => f.secret) && (fs.statSync(o.plan).mode & 0o077) !== 0) {
      err.write(`smart-mirror apply: warning: ${o.plan} holds secrets but is readable by group or others; copy plans with mode 0600 and delete them after apply\n`);
    }
    services = chooseServiceManager(root, o.services) === "exec" ? execSupervisor(root) : systemctlManager();
    const summary = await applyPlan(plan, { root, services, dryRun: o.dryRun, log: (l) => err.write(`smart-mirror apply: ${l}\n`) });
    out.write(JSON.stringify(summary) + "\n");
    return 0;
  } catch (e) {
    if (e instanceof ApplyError) out.write(JSON.stringify(e.summary) + "\n");
    const msg = e instanceof PlanError || e instanceof Error ? e.message : String(e);
    err.write(`smart-mirror apply: ${msg}\n`);
    return 1;
  }
}
