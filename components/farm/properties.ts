/**
 * The properties a farm node needs beyond a single host's (pure): the drain bounds that make a
 * rolling update and a scale-in lose no clone, and how the node finds and trusts its peers.
 * Added to the rendered bitbucket.properties by propertiesValues, so the daemon's own
 * validation (validate.ts daemonBackstop) checks them like every other key.
 */
import { KEYS } from "../../sync/config/keys";
import type { NormalizedSmartMirrorArgs, SmartMirrorArgs } from "../args";
import { FARM_PEERS_FILE, mirrorPaths } from "../deploy/layout";
import { FARM_DEFAULTS, quietPeriodSeconds } from "./validateFarm";

export function farmProperties(args: SmartMirrorArgs | NormalizedSmartMirrorArgs, home: string): Record<string, string> {
  const farm = args.farm;
  if (!farm) return {};
  const p = mirrorPaths(home);
  const tls = args.tls as { kind?: string; privateCa?: unknown };
  const privateCa = tls?.kind === "privateCa" || tls?.privateCa !== undefined;
  return {
    [KEYS.drainTimeout.name]: `${farm.drainSeconds ?? FARM_DEFAULTS.drainSeconds}s`,
    // The load balancer keeps sending until its health check has failed unhealthyThreshold times.
    [KEYS.drainQuietPeriod.name]: `${quietPeriodSeconds(farm)}s`,
    [KEYS.farmPeersFile.name]: FARM_PEERS_FILE,
    [KEYS.farmTokenFile.name]: p.farmTokenFile,
    // Peers dial each other by private address and verify the farm's own certificate name.
    [KEYS.farmServerName.name]: args.domainName,
    // A private CA's certificate is in no system store: the plan lays it down for the peers' checks.
    ...(privateCa ? { [KEYS.farmCaCertificatesFile.name]: p.farmCaFile } : {}),
  };
}
