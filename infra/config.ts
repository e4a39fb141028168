/**
 * Stack configuration -> SmartMirror arguments (pure). The structured keys mirror the
 * component's arguments one to one (smart-mirror:host.ssh.adminCidrs is host.ssh.adminCidrs),
 * so the component's validation messages name the config key to change. Secrets are separate
 * top-level keys, set with `pulumi config set --secret`, so they are never stored in plain
 * text inside an object. docs/stack-config.md lists every key.
 */
import type * as pulumi from "@pulumi/pulumi";
import type {
  AlarmsArgs,
  AwsHostArgs,
  BastionArgs,
  SshAccessArgs,
  DeployArgs,
  DnsArgs,
  ExistingHostArgs,
  FarmArgs,
  MirrorSettingsArgs,
  PrimaryArgs,
  RegisterAccessKeyArgs,
  SmartMirrorArgs,
  TlsArgs,
} from "../components/args";

type Keyless<T> = Omit<T, "privateKey">;
/** The hosts as written in the stack file: keys come from their own secret config entries. */
export type AwsHostConfig = Omit<AwsHostArgs, "ssh"> & { ssh?: Omit<SshAccessArgs, "bastion"> & { bastion?: Keyless<BastionArgs> } };
export type ExistingHostConfig = Omit<ExistingHostArgs, "privateKey" | "bastion"> & { bastion?: Keyless<BastionArgs> };
export type HostConfig = AwsHostConfig | ExistingHostConfig;

export type TlsConfig = { kind: "acme"; serverUrl?: string; email?: string; zoneId?: string; minDaysRemaining?: number } | { kind: "provided"; certificatePem: string; chainPem?: string } | { kind: "privateCa"; clientsTrustPrivateCa: boolean; organization?: string; validityDays?: number };

export interface StackConfig {
  displayName: string;
  domainName: string;
  region?: string;
  primary: Omit<PrimaryArgs, "catalogToken" | "caCertificatesPem"> & { caCertificatesPem?: string };
  host: HostConfig;
  tls: TlsConfig;
  dns?: DnsArgs;
  /** `events.urls` here; their HMAC secret is the eventsSecret secret key. */
  mirror?: Omit<MirrorSettingsArgs, "cloneTokens" | "webhookSecret" | "events"> & { events?: { urls: string[] } };
  /** Targets of the access-key registration; it runs when the accessKeyToken secret is set. */
  registerAccessKey?: Omit<RegisterAccessKeyArgs, "token">;
  deploy?: DeployArgs;
  /** CloudWatch alarms to SNS topics (the component's `alarms`). */
  alarms?: AlarmsArgs;
  /** A mirror farm instead of one host (the component's `farm`; README "Mirror farm"). */
  farm?: FarmArgs;
}

/** The secret config keys (`pulumi config set --secret KEY`). */
export interface StackSecrets {
  catalogToken?: pulumi.Input<string>;
  webhookSecret?: pulumi.Input<string>;
  /** The synced events' HMAC secret (mirror.events). */
  eventsSecret?: pulumi.Input<string>;
  /** Newline- or comma-separated clone tokens for mirror.auth "tokens". */
  cloneTokens?: pulumi.Input<string>;
  accessKeyToken?: pulumi.Input<string>;
  /** Existing host: the deploy key. */
  hostPrivateKey?: pulumi.Input<string>;
  bastionPrivateKey?: pulumi.Input<string>;
  /** tls.kind "provided": the certificate's key. */
  tlsPrivateKeyPem?: pulumi.Input<string>;
}

export const SECRET_KEYS = ["catalogToken", "webhookSecret", "eventsSecret", "cloneTokens", "accessKeyToken", "hostPrivateKey", "bastionPrivateKey", "tlsPrivateKeyPem"] as const;

export class StackConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`stack configuration: ${problems.length} problem(s):\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "StackConfigError";
  }
}

const splitTokens = (s: string) =>
  s
    .split(/[\n,]/)
    .map((t) => t.trim())
    .filter((t) => t !== "");

/**
 * Build the component arguments; throws StackConfigError for what only the config layer can
 * know (a secret key that must be set). Everything else is the component's validation.
 */
export function argsFromConfig(c: StackConfig, s: StackSecrets, defaults: { region?: string } = {}): SmartMirrorArgs {
  const problems: string[] = [];
  const need = (key: keyof StackSecrets, why: string) => {
    if (s[key] === undefined) problems.push(`smart-mirror:${key} is not set (${why}) — run \`pulumi config set --secret smart-mirror:${key}\` (the value is read from stdin when omitted)`);
  };

  let host: SmartMirrorArgs["host"];
  const bastion = (b: Keyless<BastionArgs> | undefined): BastionArgs | undefined => {
    if (!b) return undefined;
    need("bastionPrivateKey", "a bastion is configured");
    return { ...b, privateKey: s.bastionPrivateKey ?? "" };
  };
  if (c.host?.kind === "existing") {
    need("hostPrivateKey", "the deploy logs in to the existing host with it");
    host = { ...c.host, privateKey: s.hostPrivateKey ?? "", bastion: bastion(c.host.bastion) };
  } else {
    const h = c.host as AwsHostConfig;
    // A farm has no SSH (host.ssh is refused there); a single host without it is told what to set.
    const { ssh, ...rest } = h ?? ({} as AwsHostConfig);
    host = ssh === undefined ? { ...rest, kind: "aws" } : { ...rest, kind: "aws", ssh: { ...ssh, bastion: bastion(ssh.bastion) } };
  }

  let tls: TlsArgs = c.tls as TlsArgs;
  if (c.tls?.kind === "provided") {
    need("tlsPrivateKeyPem", 'tls.kind is "provided"');
    tls = { ...c.tls, privateKeyPem: s.tlsPrivateKeyPem ?? "" };
  }

  if (c.mirror?.auth === "tokens") need("cloneTokens", 'mirror.auth is "tokens"');
  if (c.mirror?.events) need("eventsSecret", "mirror.events is configured and events are always signed");
  if (!c.primary?.repos) need("catalogToken", "the REST catalog lists the primary's repositories with it; or list them in primary.repos");

  if (problems.length > 0) throw new StackConfigError(problems);

  const cloneTokens = s.cloneTokens === undefined ? undefined : typeof s.cloneTokens === "string" ? splitTokens(s.cloneTokens) : (s.cloneTokens as pulumi.Output<string>).apply(splitTokens);
  return {
    displayName: c.displayName,
    domainName: c.domainName,
    region: c.region ?? defaults.region,
    primary: { ...c.primary, catalogToken: c.primary?.repos ? undefined : s.catalogToken },
    host,
    tls,
    dns: c.dns,
    mirror: {
      ...(c.mirror ?? {}),
      webhookSecret: s.webhookSecret,
      cloneTokens: c.mirror?.auth === "tokens" ? cloneTokens : undefined,
      events: c.mirror?.events ? { urls: c.mirror.events.urls, secret: s.eventsSecret ?? "" } : undefined,
    },
    registerAccessKey: s.accessKeyToken !== undefined ? { ...(c.registerAccessKey ?? {}), token: s.accessKeyToken } : undefined,
    deploy: c.deploy,
    alarms: c.alarms,
    farm: c.farm,
  };
}
