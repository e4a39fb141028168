/**
 * A farm node's plan: the single host's plan (deploy/plan.ts) plus what only a farm node has,
 * pure: the farm token (0600, the daemon's), a private CA's certificate for the peers' TLS
 * check, and the peers refresher (script, service, timer; the timer is enabled and started by
 * the agent like any planned unit).
 */
import * as path from "node:path";
import type { Plan, PlanFile } from "../../sync/agent/plan";
import { HOME_LAYOUT } from "../../sync/homeLayout";
import { DAEMON_USER, FARM_DIR, FARM_PEERS_FILE, MirrorPaths } from "../deploy/layout";
import { FARM_PEERS_SCRIPT_PATH, FARM_PEERS_SERVICE, FARM_PEERS_TIMER, FARM_PEERS_UNIT_DIR, renderFarmPeersScript, renderFarmPeersUnits } from "../render/farmNode";

/** The instance tag every node of a farm carries (propagated by the Auto Scaling group); SSM and the peers refresher select by it. */
export const FARM_TAG = "smart-mirror-farm";

export interface FarmPlanInput {
  paths: MirrorPaths;
  farmToken: string;
  /** tls.kind privateCa: the CA certificate peers verify each other with. */
  caCertificatePem?: string;
  /** The value of the farm's tag (FARM_TAG) on its instances. */
  farmId: string;
  region?: string;
}

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");
const withNewline = (s: string) => (s.endsWith("\n") ? s : `${s}\n`);

export function withFarm(plan: Plan, i: FarmPlanInput): Plan {
  const daemon = { owner: DAEMON_USER, group: DAEMON_USER };
  const root = { owner: "root", group: "root" };
  const units = renderFarmPeersUnits({ peersDir: FARM_DIR });
  const service = path.posix.join(FARM_PEERS_UNIT_DIR, FARM_PEERS_SERVICE);
  const timer = path.posix.join(FARM_PEERS_UNIT_DIR, FARM_PEERS_TIMER);
  const files: PlanFile[] = [
    { path: i.paths.farmTokenFile, contentBase64: b64(withNewline(i.farmToken.trim())), mode: HOME_LAYOUT.farmTokenFile.mode, ...daemon, secret: true },
    ...(i.caCertificatePem !== undefined ? [{ path: i.paths.farmCaFile, contentBase64: b64(withNewline(i.caCertificatePem.trim())), mode: HOME_LAYOUT.farmCaFile.mode, ...daemon }] : []),
    { path: FARM_PEERS_SCRIPT_PATH, contentBase64: b64(renderFarmPeersScript({ tagKey: FARM_TAG, tagValue: i.farmId, peersFile: FARM_PEERS_FILE, region: i.region })), mode: 0o755, ...root },
    { path: service, contentBase64: b64(units.service), mode: 0o644, ...root },
    { path: timer, contentBase64: b64(units.timer), mode: 0o644, ...root },
  ];
  return {
    ...plan,
    dirs: [...(plan.dirs ?? []), { path: FARM_DIR, mode: 0o755, ...root }],
    files: [...plan.files, ...files],
    services: [...(plan.services ?? []), { unit: FARM_PEERS_TIMER, watches: [FARM_PEERS_SCRIPT_PATH, service, timer], enable: true }],
  };
}
