/**
 * The arguments of SmartMirror. Args that decide WHICH resources exist are plain values
 * (the host kind, the TLS kind, `dns`, `instanceType`, names that end up in URLs), so the graph
 * is known while the program runs and validation can check them before anything is created;
 * everything else is `pulumi.Input<T>` so it can come from other resources or secrets.
 *
 * Two shapes of the same arguments:
 * - SmartMirrorInputs and the types it names (Host, AwsHost, Tls, ...) are what every language
 *   sees: Pulumi's component analyzer derives the package schema from them, and it describes
 *   no unions. So one optional object per host kind (`host: { aws: {...} }`) and per TLS kind
 *   (`tls: { acme: {} }`), exactly one set; string choices are `as const` objects (schema enums).
 * - SmartMirrorArgs (TypeScript only) also takes the `kind:`-discriminated form
 *   (`host: { kind: "aws", ... }`, `tls: { kind: "acme" }`, `mirror.projects: "ALL"`).
 * normalizeSmartMirrorArgs (normalize.ts) turns either into the internal kind form.
 */
import type * as pulumi from "@pulumi/pulumi";

/** Image family looked up when host.aws.amiId is not set. */
export const HostOs = { Ubuntu2404: "ubuntu-24.04", Debian12: "debian-12" } as const;
export type HostOs = (typeof HostOs)[keyof typeof HostOs];

/** EBS volume types suitable for the data volume. */
export const DataVolumeType = { Gp3: "gp3", Gp2: "gp2", Io1: "io1", Io2: "io2", St1: "st1" } as const;
export type DataVolumeType = (typeof DataVolumeType)[keyof typeof DataVolumeType];

// Pulumi's component analyzer (PulumiPlugin.yaml) reads an enum only from a literal object, so
// these two are spelled out here; components/validate.ts makes the compiler hold them equal to
// the daemon's key table (sync/config/keys.ts).

/** Who may clone from the mirror (the daemon's mirror.serve.auth). */
export const MirrorAuth = { Primary: "primary", Anonymous: "anonymous", Tokens: "tokens" } as const;
export type MirrorAuth = (typeof MirrorAuth)[keyof typeof MirrorAuth];

/** Pushes to the mirror (the daemon's mirror.push): forwarded to the primary, or refused with its URL. */
export const MirrorPush = { Proxy: "proxy", Refuse: "refuse" } as const;
export type MirrorPush = (typeof MirrorPush)[keyof typeof MirrorPush];

/** The daemon's log level (mirror.log.level). */
export const LogLevel = { Fatal: "fatal", Error: "error", Warn: "warn", Info: "info", Debug: "debug", Trace: "trace", Silent: "silent" } as const;
export type LogLevel = (typeof LogLevel)[keyof typeof LogLevel];

/** A jump host the deploy's SSH connection goes through (pulumi-command `proxy`). */
export interface Bastion {
  host: pulumi.Input<string>;
  /** Default 22. */
  port?: number;
  /** SSH user on the bastion (no default: it differs by image). */
  user: string;
  /** OpenSSH/PEM private key for the bastion (kept secret). */
  privateKey: pulumi.Input<string>;
  /** The bastion's host key ("ssh-ed25519 AAAA..."); without it the bastion is not verified. */
  hostKey?: pulumi.Input<string>;
}

export interface SshAccess {
  /**
   * CIDRs that may reach port 22 directly: where `pulumi up` runs (a CI runner, an office VPN).
   * Never 0.0.0.0/0 — the deploy is the only SSH user, so port 22 stays as closed as it can.
   */
  adminCidrs?: string[];
  /** Security groups that may reach port 22 (typically the bastion's). */
  fromSecurityGroupIds?: pulumi.Input<string>[];
  /** Deploy through this jump host to the instance's private address. */
  bastion?: Bastion;
}

export interface DataVolume {
  /** Default 200 GiB, minimum 20. Size for the mirrored repositories plus repack headroom (~2x the largest repo). */
  sizeGiB?: number;
  /** Default "gp3". */
  type?: DataVolumeType;
  /** gp3/io1/io2 only. */
  iops?: number;
  /** MiB/s, gp3 only. */
  throughput?: number;
  /** Default: the account's EBS default key. The volume is always encrypted. */
  kmsKeyId?: pulumi.Input<string>;
  /**
   * Default true: the volume is `protect`ed (pulumi refuses to delete it) and `retainOnDelete`
   * (even an explicit destroy leaves it in AWS). Set false for throwaway test stacks.
   */
  keep?: boolean;
}

/** An EC2 instance built for the mirror, with a separate encrypted data volume. */
export interface AwsHost {
  /** Subnet to launch in; its VPC and availability zone are looked up from it. Required without `farm` (a farm's nodes launch in farm.subnetIds). */
  subnetId?: pulumi.Input<string>;
  /** Default "m6i.xlarge" (4 vCPU, 16 GiB). Minimum 2 vCPU and 4 GiB; smaller types are refused. */
  instanceType?: string;
  /** Image looked up when amiId is not set. Default "ubuntu-24.04". */
  os?: HostOs;
  /**
   * A pinned image. Without it the newest image of `os` is looked up once and later images are
   * ignored (`ignoreChanges: ["ami"]`), so a new AMI never replaces the data host.
   */
  amiId?: string;
  /** Root volume in GiB (OS, packages, logs). Default 20. */
  rootVolumeGiB?: number;
  dataVolume?: DataVolume;
  /** Default true: a stable public address survives stop/start (instance type changes). */
  elasticIp?: boolean;
  /** Who may reach 443 (and 80, which only redirects). Default ["0.0.0.0/0"]: clients clone from anywhere. */
  allowedCidrs?: string[];
  /** IPv6 ranges for 443/80. Default none. */
  allowedIpv6Cidrs?: string[];
  /** How `pulumi up` reaches port 22. Required without `farm`: adminCidrs, or a bastion. A farm is deployed by pull (S3 + SSM), with no SSH at all. */
  ssh?: SshAccess;
  /** Extra security groups to attach (e.g. company-wide monitoring). */
  extraSecurityGroupIds?: pulumi.Input<string>[];
  tags?: Record<string, string>;
}

/** A host that already exists and is reachable over SSH (any Linux with systemd, git, nginx, node >= 18). */
export interface ExistingHost {
  /** Address the deploy connects to. */
  address: pulumi.Input<string>;
  /** Address clients reach (what DNS points at), when it differs from `address`. */
  publicAddress?: pulumi.Input<string>;
  /** Default 22. */
  port?: number;
  /** Default "root"; another user needs passwordless sudo. */
  user?: string;
  /** The deploy key (kept secret). */
  privateKey: pulumi.Input<string>;
  /** The host's SSH host key ("ssh-ed25519 AAAA..."), pinned: the deploy carries secrets. `ssh-keyscan -t ed25519 HOST`. */
  hostKey: string;
  bastion?: Bastion;
}

/** Where the mirror runs: set exactly one of `aws` or `existing`. */
export interface Host {
  /** An EC2 instance built for the mirror, with a separate encrypted data volume. */
  aws?: AwsHost;
  /** A host that already exists and is reachable over SSH. */
  existing?: ExistingHost;
}

/** Let's Encrypt (or any ACME CA) with the DNS-01 challenge answered in Route53. */
export interface AcmeTls {
  /** Default Let's Encrypt production. Use https://acme-staging-v02.api.letsencrypt.org/directory to try things out. */
  serverUrl?: string;
  /** Account contact (optional; Let's Encrypt no longer sends expiry mail). */
  email?: string;
  /** Route53 zone for the challenge records. Default: dns.zoneId. */
  zoneId?: pulumi.Input<string>;
  /** Renew when fewer days remain, on the next `pulumi up`. Default 30. */
  minDaysRemaining?: number;
  /**
   * Extra settings of the ACME provider's route53 challenge solver (lego), e.g.
   * { AWS_PROFILE: "dns" } or { AWS_ASSUME_ROLE_ARN: "arn:..." }: the solver uses the AWS
   * credentials of the `pulumi up` process, not the aws.Provider the component was given.
   */
  route53Config?: Record<string, pulumi.Input<string>>;
}

/** A certificate from elsewhere (company CA, purchased). */
export interface ProvidedTls {
  /** The server certificate, PEM; may already hold the chain. */
  certificatePem: pulumi.Input<string>;
  /** Intermediate certificates, PEM, appended after the certificate. */
  chainPem?: pulumi.Input<string>;
  /** The private key, PEM (kept secret). */
  privateKeyPem: pulumi.Input<string>;
}

/**
 * A private CA made by @pulumi/tls. Only for fleets whose git clients are configured to trust
 * the CA (its certificate is an output): Bitbucket's mirror setup requires a CA-signed
 * certificate, and a private CA counts only if every client trusts it.
 */
export interface PrivateCaTls {
  /** Must be true: confirms every client trusts the CA certificate output (caCertificatePem). */
  clientsTrustPrivateCa: boolean;
  /** Subject organization. Default "smart-mirror". */
  organization?: string;
  /** Server certificate validity, re-issued on `pulumi up` 30 days before the end. Default 365. */
  validityDays?: number;
}

/** The mirror's certificate: set exactly one of `acme`, `provided` or `privateCa`. */
export interface Tls {
  /** Let's Encrypt (or any ACME CA), DNS-01 challenge in Route53. `{}` takes every default. */
  acme?: AcmeTls;
  /** A certificate from elsewhere (company CA, purchased). */
  provided?: ProvidedTls;
  /** A private CA made by @pulumi/tls; only for fleets whose clients trust it. */
  privateCa?: PrivateCaTls;
}

export interface Dns {
  /** Route53 hosted zone holding `domainName` (and `globalName`). */
  zoneId: pulumi.Input<string>;
  /** Default 60 seconds. */
  ttl?: number;
  /**
   * A shared name (e.g. git.example.com) with one latency-routed record per region, so every
   * client reaches its nearest mirror. Requires `region`. Included in the certificate.
   */
  globalName?: string;
}

export interface Primary {
  /** The primary's HTTPS base URL (plugin.mirroring.upstream.url). Must be https://. */
  url: string;
  /** The primary's SSH base, e.g. ssh://git@bitbucket.example.com:7999 (mirror.upstream.sshUrl). */
  sshUrl: string;
  /** The primary's SSH host keys, pinned ("ssh-ed25519 AAAA..."; `ssh-keyscan -p 7999 host`). */
  hostKeys: string[];
  /** HTTP access token with read access, for the REST catalog (kept secret). Required unless `repos` is set. */
  catalogToken?: pulumi.Input<string>;
  /** Extra CA certificates (PEM) for the primary's HTTPS, e.g. a company CA. */
  caCertificatesPem?: pulumi.Input<string>;
  /** A fixed list of PROJECT/slug instead of the REST catalog (SSH hosts that are not Bitbucket). */
  repos?: string[];
}

/**
 * The signed "repository synchronized" event out (mirror.events.*): after each sync that changed
 * refs the mirror POSTs Bitbucket's mirror:repo_synchronized payload to every URL, signed with
 * HMAC-SHA256 (X-Hub-Signature). Queue size, attempts and timeout: mirror.extraProperties
 * (mirror.events.queueSize, mirror.events.maxAttempts, mirror.events.timeout).
 */
export interface MirrorEvents {
  /** Receivers: https URLs (plain http only to a loopback address), at most 16. */
  urls: string[];
  /** The HMAC-SHA256 secret the events are signed with (kept secret); receivers verify with it. At least 16 characters. */
  secret: pulumi.Input<string>;
}

export interface MirrorSettings {
  /** Project keys to mirror. Default: all projects. */
  projects?: string[];
  /** Full reconcile interval (plugin.mirroring.synchronization.interval). Default "3m". */
  syncInterval?: string;
  /** Repositories fetched at once. Default 8. */
  concurrency?: number;
  /** Who may clone. Default "primary": credentials are checked against the primary. */
  auth?: MirrorAuth;
  /** Clone tokens for auth "tokens" (kept secret). */
  cloneTokens?: pulumi.Input<pulumi.Input<string>[]>;
  /** HMAC secret of the primary's repo:refs_changed webhook (kept secret); enables /webhook. */
  webhookSecret?: pulumi.Input<string>;
  /** Send a signed "repository synchronized" event to these URLs after each sync that changed refs. */
  events?: MirrorEvents;
  /** Default "info". */
  logLevel?: LogLevel;
  /**
   * Default "proxy": `git push` to the mirror is forwarded to the primary with the user's own
   * credentials, and answered once the mirror has the pushed refs. "refuse": read-only mirror.
   */
  push?: MirrorPush;
  /**
   * Further daemon keys (mirror.purge.protect, mirror.sync.excludeRefs, ...), validated with
   * the daemon's own rules. Keys the args above manage are refused here.
   */
  extraProperties?: Record<string, string>;
  /**
   * auth "anonymous" on a host open to 0.0.0.0/0 publishes every mirrored repository to the
   * internet; it is refused unless this is true.
   */
  allowAnonymousFromAnywhere?: boolean;
}

/**
 * "Approve the mirror" through the primary's REST API: register the mirror's public key as a
 * read-only access key (PROJECT_READ / REPO_READ). On destroy the grants are revoked.
 */
export interface RegisterAccessKey {
  /** HTTP access token with PROJECT_ADMIN (or REPO_ADMIN) on the targets (kept secret; passed to the script in its environment). */
  token: pulumi.Input<string>;
  /** Projects to grant. Default: mirror.projects, or every project the token can see when that is ALL. */
  projects?: string[];
  /** Single repositories (PROJECT/slug) instead of whole projects. */
  repos?: string[];
}

export interface Deploy {
  /** The daemon bundle (`npm run build`). Default: dist/smart-mirror.js of this package. */
  bundlePath?: string;
  /** Mirror home on the host (and the data volume's mount point). Default /var/lib/smart-mirror. */
  home?: string;
  /** How long to keep trying SSH while the host boots, in seconds. Default 600. */
  sshTimeoutSeconds?: number;
  /** Change it (any string) to run the deploy again with unchanged content, e.g. after editing files on the host by hand. */
  revision?: string;
}

export interface SmartMirrorInputs {
  /** setup.displayName: shown in /status and logs. */
  displayName: pulumi.Input<string>;
  /**
   * The mirror's public DNS name (e.g. mirror-syd.example.com): base URL, certificate name and
   * DNS record. A plain value because it decides the certificate and URLs.
   */
  domainName: string;
  /** AWS region name; required with dns.globalName (the latency record's region). */
  region?: string;
  /** The primary Git server the mirror syncs from (Bitbucket Data Center or any SSH Git host). */
  primary: Primary;
  /** Where the mirror runs: exactly one of `aws` or `existing`. */
  host: Host;
  /** The mirror's certificate: exactly one of `acme`, `provided` or `privateCa`. */
  tls: Tls;
  /** Route53 records; without it, point DNS at `hostAddress` yourself. */
  dns?: Dns;
  /** What is mirrored, how often, and who may clone. */
  mirror?: MirrorSettings;
  /** "Approve the mirror" through the primary's REST API: register the mirror's SSH key read-only. */
  registerAccessKey?: RegisterAccessKey;
  /** How the daemon and its files reach the host. */
  deploy?: Deploy;
  /** CloudWatch alarms to an SNS topic: paging from the first `pulumi up`, without Prometheus. */
  alarms?: Alarms;
  /**
   * A mirror farm instead of one host (host.aws only): an Auto Scaling group of identical nodes
   * behind a Network Load Balancer, deployed by pull (an encrypted S3 object, applied by each
   * node at boot and, on update, through an SSM association one node at a time).
   */
  farm?: Farm;
}

/** The load balancer's check of each node's readiness (HTTPS GET /status/ready, 200 = ready). */
export interface FarmHealthCheck {
  /** Seconds between checks, 5..300. Default 10. */
  intervalSeconds?: number;
  /** Consecutive successes before a node receives clients, 2..10. Default 3. */
  healthyThreshold?: number;
  /** Consecutive failures before a node receives no new clients, 2..10. Default 2. */
  unhealthyThreshold?: number;
}

/** Several nodes per region behind a Network Load Balancer (see the README, "Mirror farm"). */
export interface Farm {
  /** Nodes in the Auto Scaling group, 2..20. Default 3. */
  nodes?: number;
  /** Subnets the nodes and the load balancer use: at least 2, in different availability zones. */
  subnetIds: pulumi.Input<string>[];
  /**
   * Bound on draining one node, in seconds (30..3600, default 300): the daemon's
   * mirror.drain.timeout for in-flight clones, and the target group's deregistration delay, so a
   * scale-in lets in-flight clones finish too.
   */
  drainSeconds?: number;
  /**
   * Seconds a new node may stay not-ready before the Auto Scaling group replaces it (its first
   * sync or seeding from peers), 300..14400. Default 3600.
   */
  bootGraceSeconds?: number;
  healthCheck?: FarmHealthCheck;
  /** Default false: an internet-facing load balancer. true: reachable only inside the VPC (and what is peered to it). */
  internal?: boolean;
}

/**
 * CloudWatch alarms on what AWS measures without an agent: the Route53 health check of the
 * mirror's readiness (GET /status must say "ready":true; created for the alarm when dns.globalName
 * does not already create one) and, on an AWS host, the instance's status checks and CPU (plus
 * CPU credits on burstable t* types). Disk use needs the CloudWatch agent, which the mirror does
 * not install: alert on it with the Prometheus rules (ops/prometheus/smart-mirror.rules.yml).
 */
export interface Alarms {
  /** SNS topic notified when an alarm fires and when it clears (in the stack's region, like the instance alarms). */
  snsTopicArn: pulumi.Input<string>;
  /**
   * SNS topic in us-east-1 for the health-check alarm: Route53 publishes health-check metrics
   * only there, and an alarm notifies topics of its own region. Default: snsTopicArn, which must
   * then be in us-east-1.
   */
  healthCheckSnsTopicArn?: pulumi.Input<string>;
  /** Minutes a condition must hold before its alarm fires (1..60, default 5). */
  minutes?: number;
}

// ---- TypeScript's names and the `kind:` form (TypeScript only; the schema never sees these)

export type BastionArgs = Bastion;
export type SshAccessArgs = SshAccess;
export type DataVolumeArgs = DataVolume;
export type DnsArgs = Dns;
export type PrimaryArgs = Primary;
export type RegisterAccessKeyArgs = RegisterAccessKey;
export type DeployArgs = Deploy;
export type AlarmsArgs = Alarms;
export type FarmArgs = Farm;
export type FarmHealthCheckArgs = FarmHealthCheck;

export interface AwsHostArgs extends AwsHost {
  kind: "aws";
}
export interface ExistingHostArgs extends ExistingHost {
  kind: "existing";
}
/** A host in the `kind:` form, as the component uses it inside. */
export type HostKindArgs = AwsHostArgs | ExistingHostArgs;
/** Either form: `{ kind: "aws", ... }` or `{ aws: { ... } }`. */
export type HostArgs = HostKindArgs | Host;

export interface AcmeTlsArgs extends AcmeTls {
  kind: "acme";
}
export interface ProvidedTlsArgs extends ProvidedTls {
  kind: "provided";
}
export interface PrivateCaTlsArgs extends PrivateCaTls {
  kind: "privateCa";
}
/** TLS in the `kind:` form, as the component uses it inside. */
export type TlsKindArgs = AcmeTlsArgs | ProvidedTlsArgs | PrivateCaTlsArgs;
/** Either form: `{ kind: "acme" }` or `{ acme: {} }`. */
export type TlsArgs = TlsKindArgs | Tls;

export interface MirrorSettingsArgs extends Omit<MirrorSettings, "projects"> {
  /** "ALL" (default) or project keys. */
  projects?: "ALL" | string[];
}

/** SmartMirror's arguments for TypeScript callers: SmartMirrorInputs, plus the `kind:` form. */
export interface SmartMirrorArgs extends Omit<SmartMirrorInputs, "host" | "tls" | "mirror"> {
  host: HostArgs;
  tls: TlsArgs;
  mirror?: MirrorSettingsArgs;
}

/** The arguments after normalizeSmartMirrorArgs: host and TLS in the `kind:` form. */
export interface NormalizedSmartMirrorArgs extends Omit<SmartMirrorInputs, "host" | "tls" | "mirror"> {
  host: HostKindArgs;
  tls: TlsKindArgs;
  mirror?: MirrorSettingsArgs;
}

/**
 * The inputs that hold secrets, by schema type name. The provider marks them `secret: true` in
 * the package schema (Pulumi's analyzer has no way to say so), so generated SDKs and docs treat
 * them as secrets; the component wraps each with pulumi.secret where it uses it.
 */
export const SECRET_INPUTS = {
  Bastion: ["privateKey"],
  ExistingHost: ["privateKey"],
  ProvidedTls: ["privateKeyPem"],
  // May carry AWS credentials for the DNS-01 solver (AWS_SECRET_ACCESS_KEY).
  AcmeTls: ["route53Config"],
  Primary: ["catalogToken"],
  MirrorSettings: ["cloneTokens", "webhookSecret"],
  MirrorEvents: ["secret"],
  RegisterAccessKey: ["token"],
} as const satisfies {
  Bastion: readonly (keyof Bastion)[];
  ExistingHost: readonly (keyof ExistingHost)[];
  ProvidedTls: readonly (keyof ProvidedTls)[];
  AcmeTls: readonly (keyof AcmeTls)[];
  Primary: readonly (keyof Primary)[];
  MirrorSettings: readonly (keyof MirrorSettings)[];
  MirrorEvents: readonly (keyof MirrorEvents)[];
  RegisterAccessKey: readonly (keyof RegisterAccessKey)[];
};
