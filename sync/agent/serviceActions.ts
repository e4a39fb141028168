/**
 * Which checks to run and which services to touch, given the paths an apply changed: pure.
 *
 *   changed path watched by a service ........ restart (or reload if the service prefers it)
 *   the service's own unit file changed ...... daemon-reload, then restart (never a mere reload:
 *                                              a reload keeps the old ExecStart and sandbox)
 *   any unit file changed .................... one daemon-reload before anything else
 *   service not running, touched ............. start
 *   service enabled in plan, not running ..... start (an apply converges; a second apply of a
 *                                              healthy host still does nothing)
 *   enable in plan, not enabled .............. enable
 *   validator's `when` path changed .......... run it before any service action
 */
import * as path from "node:path";
import { PlanService, PlanValidator } from "./plan";
import { covers } from "./planSchema";

/** Directories systemd loads units from (/etc first); files under them are unit files. */
export const UNIT_DIRS = ["/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"];

const UNIT_SUFFIX = /\.(service|socket|timer|target|path|mount)$/;

/** A unit file or a drop-in (`X.service.d/*.conf`) under a unit directory. */
export function isUnitPath(p: string): boolean {
  const dir = path.posix.dirname(p);
  if (UNIT_DIRS.includes(dir)) return UNIT_SUFFIX.test(p);
  return UNIT_DIRS.includes(path.posix.dirname(dir)) && UNIT_SUFFIX.test(dir.replace(/\.d$/, "")) && dir.endsWith(".d") && p.endsWith(".conf");
}

/** The unit file of `unit` itself or one of its drop-ins. */
export function isOwnUnitPath(unit: string, p: string): boolean {
  if (!isUnitPath(p)) return false;
  const base = path.posix.basename(p);
  return base === unit || path.posix.basename(path.posix.dirname(p)) === `${unit}.d`;
}

export interface ServiceState {
  active: boolean;
  enabled: boolean;
}

export interface ServiceDecision {
  /** Checks to run, in plan order, before the first service action. */
  validate: PlanValidator[];
  daemonReload: boolean;
  enable: string[];
  restart: string[];
  reload: string[];
  start: string[];
}

export function decideServiceActions(services: PlanService[], validators: PlanValidator[], changed: string[], states: ReadonlyMap<string, ServiceState>): ServiceDecision {
  const touched = (watches: string[]) => changed.some((c) => watches.some((w) => covers(w, c)));
  const out: ServiceDecision = {
    validate: validators.filter((v) => touched(v.when)),
    daemonReload: changed.some(isUnitPath),
    enable: [],
    restart: [],
    reload: [],
    start: [],
  };
  for (const s of services) {
    const state = states.get(s.unit) ?? { active: false, enabled: false };
    if (s.enable && !state.enabled) out.enable.push(s.unit);
    const unitChanged = changed.some((c) => isOwnUnitPath(s.unit, c));
    if (unitChanged || touched(s.watches)) {
      if (!state.active) out.start.push(s.unit);
      else if (s.reload && !unitChanged) out.reload.push(s.unit);
      else out.restart.push(s.unit);
    } else if (s.enable && !state.active) {
      out.start.push(s.unit);
    }
  }
  return out;
}
