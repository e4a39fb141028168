/**
 * The checks of the `farm` argument (pure; validate.ts reports them with the others): ranges,
 * subnets, and the host settings a farm replaces or cannot honour, each naming the fix.
 */
import { KEYS } from "../../sync/config/keys";
import type { NormalizeResult } from "../normalize";

type Report = (field: string, message: string, fix: string) => void;

export const FARM_DEFAULTS = {
  nodes: 3,
  drainSeconds: 300,
  bootGraceSeconds: 3600,
  intervalSeconds: 10,
  healthyThreshold: 3,
  unhealthyThreshold: 2,
} as const;

/** The properties keys a farm sets itself (refused in mirror.extraProperties with a farm). */
export const FARM_MANAGED_KEYS: readonly string[] = [
  KEYS.drainTimeout.name,
  KEYS.drainQuietPeriod.name,
  KEYS.farmPeersFile.name,
  KEYS.farmTokenFile.name,
  KEYS.farmServerName.name,
  KEYS.farmCaCertificatesFile.name,
];

function intIn(report: Report, field: string, v: number | undefined, min: number, max: number, fix: string): void {
  if (v !== undefined && (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max)) report(field, `${String(v)} is out of range`, fix);
}

/** Every problem of a farm's arguments (args.farm set). */
export function farmProblems(args: NormalizeResult["args"], report: Report): void {
  const farm = args.farm;
  if (!farm) return;
  if (typeof farm !== "object" || Array.isArray(farm)) {
    report("farm", "must be an object", "set farm: { subnetIds: [...] } (nodes, drainSeconds and healthCheck are optional)");
    return;
  }
  const host = args.host;
  if (host && host.kind !== "aws") {
    report("farm", `needs an AWS host (the nodes are an Auto Scaling group behind a Network Load Balancer), not an ${host.kind} one`, 'use an AWS host with farm (host: { aws: {} }, or kind "aws"), or remove farm to deploy one existing host over SSH');
  }
  if (host?.kind === "aws") {
    // A farm is deployed by pull (S3 + SSM): no SSH, no fixed address, no volume that outlives a node.
    if (host.subnetId !== undefined) report("host.subnetId", "is not used by a farm: its nodes launch in farm.subnetIds", "remove host.subnetId and list the subnets in farm.subnetIds");
    if (host.ssh !== undefined) report("host.ssh", "is not used by a farm: nodes are deployed by pull (S3 object + SSM association), no SSH port is opened", "remove host.ssh; use Session Manager for a shell on a node");
    if (host.elasticIp !== undefined) report("host.elasticIp", "is not used by a farm: clients reach the Network Load Balancer", "remove host.elasticIp");
    // Updates arrive through SSM Run Command: a node without the SSM agent would never get one.
    if (host.os === "debian-12" && host.amiId === undefined) {
      report("host.os", '"debian-12": Debian\'s AMIs have no SSM agent, and a farm\'s updates run through SSM', 'use host.os "ubuntu-24.04" (agent included), or pin an image with amazon-ssm-agent installed (host.amiId)');
    }
    if (host.dataVolume?.keep === true) {
      report("host.dataVolume.keep", "cannot hold for a farm: each node's data volume is deleted with the node (a new node seeds from its peers)", "remove host.dataVolume.keep");
    }
  }
  intIn(report, "farm.nodes", farm.nodes, 2, 20, `set a whole number of nodes from 2 to 20 (default ${FARM_DEFAULTS.nodes}); one node needs no farm: remove farm`);
  const subnets = farm.subnetIds;
  if (!Array.isArray(subnets) || subnets.length < 2) {
    report("farm.subnetIds", `lists ${Array.isArray(subnets) ? subnets.length : "no"} subnet(s): the load balancer needs at least 2, in different availability zones`, 'list at least two subnets in different availability zones, e.g. ["subnet-0aaa...", "subnet-0bbb..."]');
  } else {
    const plain = subnets.filter((s): s is string => typeof s === "string");
    for (const s of plain) if (!/^subnet-[0-9a-f]{8,17}$/.test(s)) report("farm.subnetIds", `"${s}" is not a subnet id`, "write subnet ids like subnet-0123456789abcdef0");
    const dup = plain.filter((s, i) => plain.indexOf(s) !== i);
    if (dup.length > 0) report("farm.subnetIds", `lists ${dup[0]} twice`, "list each subnet once, one per availability zone");
  }
  intIn(report, "farm.drainSeconds", farm.drainSeconds, 30, 3600, `set seconds from 30 to 3600 (default ${FARM_DEFAULTS.drainSeconds}): the longest clone a drain waits for`);
  intIn(report, "farm.bootGraceSeconds", farm.bootGraceSeconds, 300, 14400, `set seconds from 300 to 14400 (default ${FARM_DEFAULTS.bootGraceSeconds}): how long a new node may sync before it counts as unhealthy`);
  const hc = farm.healthCheck ?? {};
  intIn(report, "farm.healthCheck.intervalSeconds", hc.intervalSeconds, 5, 300, `set seconds from 5 to 300 (default ${FARM_DEFAULTS.intervalSeconds})`);
  intIn(report, "farm.healthCheck.healthyThreshold", hc.healthyThreshold, 2, 10, `set a count from 2 to 10 (default ${FARM_DEFAULTS.healthyThreshold})`);
  intIn(report, "farm.healthCheck.unhealthyThreshold", hc.unhealthyThreshold, 2, 10, `set a count from 2 to 10 (default ${FARM_DEFAULTS.unhealthyThreshold})`);
  const quiet = quietPeriodSeconds(farm);
  if (quiet > 600) {
    report("farm.healthCheck", `lets the load balancer take ${quiet} s to stop sending to a draining node (interval x (unhealthyThreshold + 1)); a drain waits at most 600 s for that`, "lower farm.healthCheck.intervalSeconds or unhealthyThreshold (defaults 10 s x 2)");
  }
  if (farm.internal !== undefined && typeof farm.internal !== "boolean") report("farm.internal", "must be true or false", "set farm.internal: true for a load balancer reachable only inside the VPC, or remove it");
  if (args.deploy?.sshTimeoutSeconds !== undefined) report("deploy.sshTimeoutSeconds", "is not used by a farm (no SSH deploy)", "remove deploy.sshTimeoutSeconds");
  for (const key of Object.keys(args.mirror?.extraProperties ?? {})) {
    if (FARM_MANAGED_KEYS.includes(key)) report(`mirror.extraProperties["${key}"]`, "is set by the farm (drain bounds, peers, farm token, TLS name)", "remove it; tune the drain with farm.drainSeconds and farm.healthCheck");
  }
}

/** Seconds the load balancer needs to stop sending to a node that turned not-ready, plus one interval: the daemon's quiet period (at least 30 s). */
export function quietPeriodSeconds(farm: { healthCheck?: { intervalSeconds?: number; unhealthyThreshold?: number } }): number {
  const interval = farm.healthCheck?.intervalSeconds ?? FARM_DEFAULTS.intervalSeconds;
  const unhealthy = farm.healthCheck?.unhealthyThreshold ?? FARM_DEFAULTS.unhealthyThreshold;
  return Math.max(30, interval * (unhealthy + 1));
}
