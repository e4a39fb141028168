/**
 * The deploy plan of one farm node in the bench: the production plan (buildLocalPlan: the
 * component's renderers and plan builder, every path under the node's root prefix) with the
 * farm's settings. Pure.
 *
 * In production every node of a farm gets the same plan (the launch template's). Here the
 * nodes share one filesystem, so each gets its own root prefix, and nginx listens on the node's
 * own bridge address: those two values differ between nodes, nothing else does.
 */
import { buildLocalPlan, localPaths } from "../../components/deploy/localPlan";
import { Plan, PlanFile } from "../../sync/agent/plan";
import { renderProperties } from "../../components/render/properties";

export interface FarmSettings {
  /** plugin.mirroring.synchronization.interval (the reconcile). */
  syncInterval: string;
  /** Further properties (drain and farm keys, ...), by key name. */
  extra: Record<string, string>;
}

export interface FarmSecrets {
  mirrorPrivateKey: string;
  mirrorPublicKey: string;
  webhookSecret: string;
  tlsChainPem: string;
  tlsKeyPem: string;
}

export interface FarmIdentity {
  /** The farm's DNS name: clients' URL, the certificate, SNI. */
  serverName: string;
  primarySshBase: string;
  primaryHostKey: string;
  repos: readonly string[];
}

/** A file the farm adds to each node's plan (peers list, farm token); path as on a real host. */
export interface ExtraFile {
  path: string;
  content: string;
  secret?: boolean;
}

export interface NodePlanInput {
  root: string;
  /** The node's own address on the bench bridge (nginx listens there, port 443). */
  address: string;
  identity: FarmIdentity;
  secrets: FarmSecrets;
  settings: FarmSettings;
  /** The daemon bundle the plan installs (a private copy of dist/smart-mirror.js). */
  bundle: string;
  extraFiles?: readonly ExtraFile[];
}

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");

export function buildNodePlan(i: NodePlanInput): Plan {
  const real = localPaths(i.root);
  const propertiesText = renderProperties({
    displayName: "Farm node",
    baseUrl: `https://${i.identity.serverName}`,
    upstreamUrl: "https://primary.test",
    sshUrl: i.identity.primarySshBase,
    hostKeys: [i.identity.primaryHostKey],
    keyFile: real.keyFile,
    catalog: "static",
    catalogRepos: i.identity.repos,
    projects: "ALL",
    webhookSecretFile: real.webhookSecretFile,
    // The bench primary has no REST API to check users against.
    auth: "anonymous",
    listen: `unix:${real.socket}`,
    syncInterval: i.settings.syncInterval,
    extra: i.settings.extra,
  });
  const { plan } = buildLocalPlan({
    root: i.root,
    serverName: i.identity.serverName,
    httpsPort: 443,
    httpPort: false,
    listenAddresses: [i.address],
    propertiesText,
    mirrorPrivateKey: i.secrets.mirrorPrivateKey,
    mirrorPublicKey: i.secrets.mirrorPublicKey,
    webhookSecret: i.secrets.webhookSecret,
    tlsCertificateChainPem: i.secrets.tlsChainPem,
    tlsPrivateKeyPem: i.secrets.tlsKeyPem,
    stagedBundle: i.bundle,
  });
  const daemon = { owner: "smart-mirror", group: "smart-mirror" };
  for (const f of i.extraFiles ?? []) {
    const file: PlanFile = { path: f.path, contentBase64: b64(f.content), mode: f.secret ? 0o600 : 0o644, ...daemon, ...(f.secret ? { secret: true } : {}) };
    plan.files.push(file);
    // A changed farm file is a changed configuration: restart the daemon as for the properties
    // (files under the home's shared/ directory are watched already).
    const daemonService = plan.services.find((s) => s.unit === "smart-mirror.service");
    if (daemonService && !daemonService.watches.some((w) => f.path === w || f.path.startsWith(`${w}/`))) daemonService.watches.push(f.path);
  }
  return plan;
}
