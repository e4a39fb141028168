/**
 * The component's arguments -> the values of bitbucket.properties (pure). Shared by the
 * component (which renders the file) and the validation (which runs the daemon's checks on
 * the same rendering), so both see exactly the same properties.
 */
import type { SmartMirrorArgs } from "./args";
import { mirrorPaths } from "./deploy/layout";
import type { PropertiesValues } from "./render/properties";
import { farmProperties } from "./farm/properties";

/**
 * The extra properties the daemon gets: the caller's own plus, for a farm, the node keys the
 * component sets (drain bounds, peers, farm token). Pure; the one place both are merged, so the
 * unit's stop timeout reads the same drain bound the daemon does.
 */
export function daemonExtraProperties(args: SmartMirrorArgs, home: string): Record<string, string> | undefined {
  const own = args.mirror?.extraProperties;
  return args.farm ? { ...(own ?? {}), ...farmProperties(args, home) } : own;
}

/** The properties values from the arguments (pure): what renderProperties gets. */
export function propertiesValues(args: SmartMirrorArgs, displayName: string, home: string): PropertiesValues {
  const p = mirrorPaths(home);
  const m = args.mirror ?? {};
  return {
    displayName,
    baseUrl: `https://${args.domainName}`,
    upstreamUrl: args.primary.url.trim().replace(/\/+$/, ""),
    sshUrl: args.primary.sshUrl.trim(),
    hostKeys: args.primary.hostKeys,
    keyFile: p.keyFile,
    // The table's conditions drop what the choice leaves unused (tokenFile, catalogRepos, tokensFile).
    catalog: args.primary.repos ? "static" : "rest",
    catalogRepos: args.primary.repos,
    tokenFile: p.catalogTokenFile,
    projects: m.projects ?? "ALL",
    caFile: args.primary.caCertificatesPem !== undefined ? p.primaryCaFile : undefined,
    syncInterval: m.syncInterval,
    concurrency: m.concurrency,
    webhookSecretFile: m.webhookSecret !== undefined ? p.webhookSecretFile : undefined,
    eventsUrls: m.events?.urls,
    eventsSecretFile: m.events !== undefined ? p.eventsSecretFile : undefined,
    auth: m.auth,
    tokensFile: p.cloneTokensFile,
    listen: `unix:${p.socket}`,
    // The certificate the deploy puts there (plan.ts): its expiry on /metrics.
    tlsCertificateFile: p.tlsCert,
    logLevel: m.logLevel,
    push: m.push,
    extra: daemonExtraProperties(args, home),
  };
}
