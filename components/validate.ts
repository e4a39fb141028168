/**
 * Every check of SmartMirror's arguments, as pure functions: all problems at once, each naming
 * the argument and the fix. The component calls assertValidArgs before creating anything.
 *
 * Values the daemon reads are checked with the daemon's own parsers (sync/config/values.ts),
 * then the rendered properties go through the daemon's whole validation (validateEntries) as a
 * backstop, so `pulumi preview` refuses what `smart-mirror check` would refuse on the host.
 * Inputs that are not plain values yet (outputs, secrets) are checked on the host instead.
 */
import { X509Certificate } from "node:crypto";
import * as net from "node:net";
import * as path from "node:path";
import { argOfKey, closestKey, EnumOf, isKnownKey, KEYS } from "../sync/config/keys";
import { parseProperties } from "../sync/config/properties";
import { parseKeyValue, validateEntries } from "../sync/config/schema";
import { Invalid } from "../sync/config/problems";
import { parseHostKeys, parseHttpsUrl, parseProjects, parseRepoList, parseSshBase } from "../sync/config/values";
import type { BastionArgs, LogLevel, MirrorAuth, MirrorPush, MirrorSettingsArgs, NormalizedSmartMirrorArgs, SmartMirrorArgs, SmartMirrorInputs } from "./args";
import { normalizeSmartMirrorArgs, relabelProblem, type NormalizeResult } from "./normalize";
import { instanceTypeProblem, instanceTypeWarning, DEFAULT_INSTANCE_TYPE } from "./host/instanceTypes";
import { healthCheckerWarning } from "./dns/healthCheckers";
import { MANAGED_KEYS, renderProperties } from "./render/properties";
import { DEFAULT_HOME } from "./deploy/layout";
import { propertiesValues } from "./propertiesFromArgs";
import { DEFAULT_ALARM_MINUTES, ROUTE53_METRICS_REGION } from "./alarms/definitions";
import { farmProblems } from "./farm/validateFarm";

export class SmartMirrorArgsError extends Error {
  constructor(
    readonly resourceName: string,
    readonly problems: string[],
  ) {
    super(`SmartMirror "${resourceName}": ${problems.length} problem(s) in the arguments:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "SmartMirrorArgsError";
  }
}

/** Throws SmartMirrorArgsError listing every problem, or returns. */
export function assertValidArgs(name: string, args: SmartMirrorArgs | SmartMirrorInputs): void {
  const problems = validateSmartMirrorArgs(args);
  if (problems.length > 0) throw new SmartMirrorArgsError(name, problems);
}

type Report = (field: string, message: string, fix: string) => void;

const isPlain = (v: unknown): v is string => typeof v === "string";

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Why a value is not a lowercase DNS host name (with at least one dot), or undefined. */
export function dnsNameProblem(v: string): string | undefined {
  if (v.includes("://")) return "is a URL; give the host name only";
  if (v !== v.toLowerCase()) return "must be lowercase";
  if (v.endsWith(".")) return "must not end with a dot";
  if (v.length > 253) return "is longer than 253 characters";
  const labels = v.split(".");
  if (labels.length < 2) return "must be a fully qualified name (at least one dot)";
  if (!labels.every((l) => DNS_LABEL.test(l))) return "is not a DNS host name (labels of a-z, 0-9 and -, not starting or ending with -)";
  return undefined;
}

/** A CIDR block "address/prefix" of the given family. */
export function isCidr(v: string, family: 4 | 6): boolean {
  const m = /^(.+)\/(\d{1,3})$/.exec(v);
  if (!m) return false;
  const prefix = Number(m[2]);
  return family === 4 ? net.isIPv4(m[1]) && prefix <= 32 : net.isIPv6(m[1]) && prefix <= 128;
}

const AWS_REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;

function hostName(url: string): string | undefined {
  try {
    return new URL(url).hostname || undefined;
  } catch {
    return undefined;
  }
}

/** The property keys' argument paths (from the key table), for the backstop's messages. */
const ARG_OF_KEY = argOfKey();
const AUTH_MODES: readonly string[] = KEYS.auth.value.values;

// The argument enums (args.ts, literal for Pulumi's analyzer) are the key table's values: a
// value added to or dropped from either side fails to compile here.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export const ARG_ENUMS_MATCH_KEY_TABLE: [Same<MirrorAuth, EnumOf<"auth">>, Same<LogLevel, EnumOf<"logLevel">>, Same<MirrorPush, EnumOf<"push">>] = [true, true, true];

/**
 * Every problem in the arguments (either shape, see args.ts), each naming the argument as the
 * caller wrote it and the fix; empty when the component can be built.
 */
export function validateSmartMirrorArgs(args: SmartMirrorArgs | SmartMirrorInputs): string[] {
  if (!args || typeof args !== "object") return ["args: missing — pass the SmartMirror arguments"];
  const n = normalizeSmartMirrorArgs(args);
  const problems = [...n.problems, ...kindArgsProblems(n.args).map((p) => relabelProblem(p, n.paths))];
  if (problems.length === 0) problems.push(...daemonBackstop(n.args as NormalizedSmartMirrorArgs));
  return problems;
}

/** The checks on the arguments in the `kind:` shape; host/tls are undefined when normalize could not tell their kind (already reported). */
function kindArgsProblems(args: NormalizeResult["args"]): string[] {
  const problems: string[] = [];
  const report: Report = (field, message, fix) => problems.push(`${field}: ${message} — ${fix}`);
  const fromInvalid = (field: string, r: Invalid) => report(field, r.message, r.fix.startsWith(`${field}=`) ? `set ${r.fix}` : r.fix);

  // ---- names and URLs
  if (isPlain(args.displayName)) {
    if (args.displayName.trim() === "") report("displayName", "is empty", 'set displayName, e.g. "Sydney mirror"');
    // eslint-disable-next-line no-control-regex
    else if (/[\x00-\x1f\x7f]/.test(args.displayName)) report("displayName", "must not contain control characters (newlines, tabs)", 'set displayName to one line, e.g. "Sydney mirror"');
  } else if (args.displayName === undefined) report("displayName", "is required", 'set displayName, e.g. "Sydney mirror"');

  const domain = args.domainName;
  if (typeof domain !== "string" || domain === "") {
    report("domainName", "is required", "set domainName to the mirror's DNS name, e.g. mirror-syd.example.com");
  } else {
    const p = dnsNameProblem(domain);
    if (p) report("domainName", `"${domain}" ${p}`, `set domainName to the mirror's host name, e.g. ${hostName(domain) ?? "mirror-syd.example.com"}`);
  }

  if (args.region !== undefined && !AWS_REGION.test(args.region)) {
    report("region", `"${args.region}" is not an AWS region name`, "set region like eu-west-1 or ap-southeast-2");
  }

  // ---- primary
  const primary = args.primary;
  if (!primary) {
    report("primary", "is required", "set primary.url (https://...), primary.sshUrl (ssh://git@host:7999) and primary.hostKeys");
  } else {
    if (!isPlain(primary.url) || primary.url === "") report("primary.url", "is required", "set primary.url to the primary's HTTPS address, e.g. https://bitbucket.example.com");
    else {
      const r = parseHttpsUrl(primary.url.trim(), "primary.url", {
        why: "Bitbucket requires the primary to serve HTTPS with a valid certificate for mirroring",
        otherScheme: "primary.url is the primary's web address; its SSH address goes in primary.sshUrl",
      });
      if (r instanceof Invalid) fromInvalid("primary.url", r);
    }
    let sshWhere: { host: string; port: number } | undefined;
    if (!isPlain(primary.sshUrl) || primary.sshUrl === "") report("primary.sshUrl", "is required", "set primary.sshUrl, e.g. ssh://git@bitbucket.example.com:7999 (mirrors sync over SSH only)");
    else {
      const r = parseSshBase(primary.sshUrl.trim(), "primary.sshUrl");
      if (r instanceof Invalid) fromInvalid("primary.sshUrl", r);
      else sshWhere = { host: r.host, port: r.port };
    }
    if (!Array.isArray(primary.hostKeys) || primary.hostKeys.length === 0) {
      report("primary.hostKeys", "lists no host keys", `pin the primary's SSH host keys: run \`ssh-keyscan -p ${sshWhere?.port ?? 7999} ${sshWhere?.host ?? "HOST"}\` from a trusted network, verify the fingerprints, and set primary.hostKeys: ["ssh-ed25519 AAAA..."]`);
    } else {
      const r = parseHostKeys(primary.hostKeys.join("\n"), "primary.hostKeys", sshWhere);
      if (r instanceof Invalid) report("primary.hostKeys", r.message, r.fix.replace(/set primary\.hostKeys=ssh-ed25519 AAAA\.\.\. \(several keys: separate with commas\)/, 'set primary.hostKeys: ["ssh-ed25519 AAAA..."]'));
    }
    if (primary.repos !== undefined) {
      const r = parseRepoList(primary.repos.join(", "), "primary.repos");
      if (r instanceof Invalid) report("primary.repos", r.message, `list PROJECT/slug entries, e.g. primary.repos: ["PROJ/repo"]`);
    } else if (primary.catalogToken === undefined) {
      report(
        "primary.catalogToken",
        "is required with the REST catalog (the default): anonymously the primary lists only public repositories",
        "set primary.catalogToken to a Bitbucket HTTP access token with read access to the mirrored projects (as a secret), or list the repositories in primary.repos",
      );
    }
  }

  // ---- mirror settings
  const m = args.mirror ?? {};
  if (m.projects !== undefined && m.projects !== "ALL") {
    const projectsArg = KEYS.projects.arg;
    if (!Array.isArray(m.projects)) report(projectsArg, "must be \"ALL\" or a list of project keys", 'set mirror.projects: "ALL" or ["PROJ", "OPS"]');
    else {
      const r = parseProjects(m.projects.join(", "), projectsArg);
      if (r instanceof Invalid) report(projectsArg, r.message, 'use "ALL" or project keys as in the primary\'s /projects/KEY URLs, e.g. ["PROJ", "OPS"]');
    }
  }
  // Ranges come from the daemon's key table, checked under the argument's name.
  for (const [id, value] of [["syncInterval", m.syncInterval], ["concurrency", m.concurrency]] as const) {
    if (value === undefined) continue;
    const r = parseKeyValue(id, String(value), KEYS[id].arg, { home: DEFAULT_HOME });
    if (r instanceof Invalid) fromInvalid(KEYS[id].arg, r);
  }
  const auth = m.auth ?? KEYS.auth.default;
  if (!AUTH_MODES.includes(auth)) report(KEYS.auth.arg, `"${auth}" is not an auth mode`, `set ${KEYS.auth.arg} to ${AUTH_MODES.map((a) => `"${a}"`).join(", ").replace(/, ([^,]+)$/, " or $1")}`);
  if (auth === "tokens" && m.cloneTokens === undefined) report("mirror.cloneTokens", 'is required with mirror.auth "tokens"', "set mirror.cloneTokens to the tokens clients may use (as a secret), or choose another mirror.auth");
  if (auth !== "tokens" && m.cloneTokens !== undefined) report("mirror.cloneTokens", `is set but mirror.auth is "${auth}", so no token would be accepted`, 'set mirror.auth: "tokens", or remove mirror.cloneTokens');
  if (m.events !== undefined) eventsProblems(m.events, report, fromInvalid);
  for (const key of Object.keys(m.extraProperties ?? {})) {
    const field = `mirror.extraProperties["${key}"]`;
    if (MANAGED_KEYS.includes(key)) report(field, "is set by the component from its typed arguments", `remove it and use ${ARG_OF_KEY.get(key) ?? "the matching SmartMirror argument"} instead`);
    else if (!isKnownKey(key)) {
      const near = closestKey(key);
      report(field, "is not a key the daemon reads", near ? `did you mean "${near}"?` : "see the configuration reference in the README");
    }
  }

  // ---- host
  const host = args.host;
  let worldOpen = false;
  if (!host) {
    // normalizeSmartMirrorArgs named the problem.
  } else if (host.kind === "aws") {
    const type = host.instanceType ?? DEFAULT_INSTANCE_TYPE;
    const p = instanceTypeProblem(type);
    if (p) report("host.instanceType", p.message, p.fix);
    if (host.os !== undefined && host.os !== "ubuntu-24.04" && host.os !== "debian-12") report("host.os", `"${host.os}" is not supported`, 'set host.os to "ubuntu-24.04" (default) or "debian-12"');
    const farm = args.farm !== undefined;
    if (!farm && (host.subnetId === undefined || host.subnetId === "")) report("host.subnetId", "is required", "set host.subnetId to a subnet of the VPC the mirror runs in");
    if (host.amiId !== undefined && !/^ami-[0-9a-f]{8,17}$/.test(host.amiId)) report("host.amiId", `"${host.amiId}" is not an AMI id`, "set host.amiId like ami-0123456789abcdef0, or remove it to look up the newest image once");
    if (host.rootVolumeGiB !== undefined && (!Number.isInteger(host.rootVolumeGiB) || host.rootVolumeGiB < 10 || host.rootVolumeGiB > 1024)) {
      report("host.rootVolumeGiB", `${host.rootVolumeGiB} is out of range`, "set a whole number of GiB from 10 to 1024 (default 20); repositories live on the data volume");
    }
    const dv = host.dataVolume ?? {};
    if (dv.sizeGiB !== undefined && (!Number.isInteger(dv.sizeGiB) || dv.sizeGiB < 20 || dv.sizeGiB > 16384)) {
      report("host.dataVolume.sizeGiB", `${dv.sizeGiB} is out of range`, "set a whole number of GiB from 20 to 16384 (default 200): the mirrored repositories plus repack headroom");
    }
    const vtype = dv.type ?? "gp3";
    if (!["gp3", "gp2", "io1", "io2", "st1"].includes(vtype)) report("host.dataVolume.type", `"${vtype}" is not an EBS volume type for data`, 'set "gp3" (default), "io2", "io1", "gp2" or "st1"');
    if (dv.iops !== undefined && !["gp3", "io1", "io2"].includes(vtype)) report("host.dataVolume.iops", `is only for gp3, io1 and io2 volumes, not ${vtype}`, "remove host.dataVolume.iops or change host.dataVolume.type");
    if (dv.throughput !== undefined && vtype !== "gp3") report("host.dataVolume.throughput", `is only for gp3 volumes, not ${vtype}`, "remove host.dataVolume.throughput or use gp3");

    const allowed = host.allowedCidrs ?? ["0.0.0.0/0"];
    if (allowed.length === 0 && (host.allowedIpv6Cidrs ?? []).length === 0) {
      report("host.allowedCidrs", "is empty: no client could reach the mirror", 'list the client ranges, e.g. ["10.0.0.0/8"], or remove it for the default 0.0.0.0/0');
    }
    for (const c of allowed) if (!isCidr(c, 4)) report("host.allowedCidrs", `"${c}" is not an IPv4 CIDR`, 'write address/prefix, e.g. "10.0.0.0/8" or "203.0.113.7/32"');
    for (const c of host.allowedIpv6Cidrs ?? []) if (!isCidr(c, 6)) report("host.allowedIpv6Cidrs", `"${c}" is not an IPv6 CIDR`, 'write address/prefix, e.g. "2001:db8::/32"');
    worldOpen = allowed.some((c) => c.endsWith("/0")) || (host.allowedIpv6Cidrs ?? []).some((c) => c.endsWith("/0"));

    const ssh = host.ssh;
    const admin = ssh?.adminCidrs ?? [];
    for (const c of admin) {
      if (!isCidr(c, 4) && !isCidr(c, 6)) report("host.ssh.adminCidrs", `"${c}" is not a CIDR`, 'write address/prefix, e.g. "203.0.113.7/32" (where `pulumi up` runs)');
      else if (c.endsWith("/0")) report("host.ssh.adminCidrs", `"${c}" opens SSH to the whole internet`, "name the address `pulumi up` runs from (a CI runner, a VPN egress), e.g. \"203.0.113.7/32\", or deploy through host.ssh.bastion");
    }
    if (!farm && admin.length === 0 && !ssh?.bastion) {
      report(
        "host.ssh",
        "gives the deploy no way to reach port 22 (the deploy runs over SSH from where `pulumi up` runs)",
        'set host.ssh.adminCidrs to that address, e.g. ["203.0.113.7/32"], or set host.ssh.bastion plus host.ssh.fromSecurityGroupIds with the bastion\'s security group',
      );
    }
    if (ssh?.bastion) {
      if (admin.length === 0 && (ssh.fromSecurityGroupIds ?? []).length === 0) {
        report("host.ssh.fromSecurityGroupIds", "is empty, so the bastion cannot reach port 22 either", "set host.ssh.fromSecurityGroupIds to the bastion's security group id (or host.ssh.adminCidrs to its private address /32)");
      }
      bastionProblems("host.ssh.bastion", ssh.bastion, report);
    }
  } else {
    if (host.address === undefined || host.address === "") report("host.address", "is required", "set host.address to the host name or IP the deploy connects to");
    if (host.privateKey === undefined || host.privateKey === "") report("host.privateKey", "is required", "set host.privateKey to the deploy user's SSH private key (as a secret)");
    if (isPlain(host.privateKey) && host.privateKey !== "" && !/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(host.privateKey)) {
      report("host.privateKey", "is not a PEM/OpenSSH private key", "set the whole key file content, starting -----BEGIN OPENSSH PRIVATE KEY-----");
    }
    portProblem("host.port", host.port, report);
    if (host.user !== undefined && !/^[a-z_][a-z0-9_.-]{0,31}$/.test(host.user)) report("host.user", `"${host.user}" is not a user name`, 'set host.user to the SSH login (default "root"; others need passwordless sudo)');
    if (!isPlain(host.hostKey) || host.hostKey.trim() === "") {
      report("host.hostKey", "is required: the deploy carries the mirror's secrets, so the host must be verified", "run `ssh-keyscan -t ed25519 HOST` from a trusted network, verify the fingerprint on the host (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`), and set host.hostKey: \"ssh-ed25519 AAAA...\"");
    } else {
      const r = parseHostKeys(host.hostKey, "host.hostKey");
      if (r instanceof Invalid) report("host.hostKey", r.message, 'set host.hostKey to one key, "ssh-ed25519 AAAA..." (`ssh-keyscan -t ed25519 HOST`, fingerprint verified)');
      else if (r.length > 1) report("host.hostKey", "lists several keys; the connection pins exactly one", 'set host.hostKey to the ed25519 key, "ssh-ed25519 AAAA..."');
    }
    if (host.bastion) bastionProblems("host.bastion", host.bastion, report);
  }

  if (auth === "anonymous" && worldOpen && !m.allowAnonymousFromAnywhere) {
    report(
      "mirror.auth",
      '"anonymous" on a host open to the whole internet (host.allowedCidrs) would publish every mirrored repository',
      'restrict host.allowedCidrs to your networks, use mirror.auth "primary" (default), or set mirror.allowAnonymousFromAnywhere: true if the repositories are public anyway',
    );
  }

  // ---- TLS
  const tls = args.tls;
  if (!tls) {
    // normalizeSmartMirrorArgs named the problem.
  } else if (tls.kind === "acme") {
    if (tls.zoneId === undefined && args.dns?.zoneId === undefined) {
      report("tls", "ACME answers the DNS-01 challenge in Route53, but no zone is given", "set dns.zoneId (the Route53 zone of domainName), or tls.zoneId");
    }
    if (tls.serverUrl !== undefined && !/^https:\/\/[^\s]+$/.test(tls.serverUrl)) report("tls.serverUrl", `"${tls.serverUrl}" is not an https:// ACME directory URL`, "set e.g. https://acme-v02.api.letsencrypt.org/directory, or remove it for Let's Encrypt production");
    if (tls.email !== undefined && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(tls.email)) report("tls.email", `"${tls.email}" is not an email address`, "set a contact address, or remove tls.email");
    if (tls.minDaysRemaining !== undefined && (!Number.isInteger(tls.minDaysRemaining) || tls.minDaysRemaining < 1 || tls.minDaysRemaining > 60)) {
      report("tls.minDaysRemaining", `${tls.minDaysRemaining} is out of range`, "set a whole number of days from 1 to 60 (default 30; Let's Encrypt certificates last 90 days)");
    }
  } else if (tls.kind === "privateCa") {
    if (tls.clientsTrustPrivateCa !== true) {
      report(
        "tls.clientsTrustPrivateCa",
        "must be true for a private CA: Bitbucket's mirror setup requires a CA-signed certificate, and a private CA is one only for clients that trust it",
        "distribute the caCertificatePem output to every git client (http.sslCAInfo or the system store) and set tls.clientsTrustPrivateCa: true; otherwise use an ACME or a provided certificate",
      );
    }
    if (tls.validityDays !== undefined && (!Number.isInteger(tls.validityDays) || tls.validityDays < 31 || tls.validityDays > 825)) {
      report("tls.validityDays", `${tls.validityDays} is out of range`, "set a whole number of days from 31 to 825 (default 365)");
    }
  } else {
    if (tls.certificatePem === undefined) report("tls.certificatePem", "is required", "set the server certificate (PEM) for domainName");
    if (tls.privateKeyPem === undefined) report("tls.privateKeyPem", "is required", "set the certificate's private key (PEM, as a secret)");
    if (isPlain(tls.privateKeyPem) && !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(tls.privateKeyPem)) {
      report("tls.privateKeyPem", "is not a PEM private key", "set the key file content, starting -----BEGIN PRIVATE KEY----- (or EC/RSA PRIVATE KEY)");
    }
    if (isPlain(tls.certificatePem)) {
      const names = [domain, args.dns?.globalName].filter((n): n is string => typeof n === "string" && n !== "");
      certificateProblems(tls.certificatePem, names, report);
    }
  }

  // ---- DNS
  const dns = args.dns;
  if (dns) {
    if (dns.zoneId === undefined || dns.zoneId === "") report("dns.zoneId", "is required", "set dns.zoneId to the Route53 hosted zone of domainName (Z0123456789ABCDEFGHIJ)");
    if (dns.ttl !== undefined && (!Number.isInteger(dns.ttl) || dns.ttl < 1 || dns.ttl > 86400)) report("dns.ttl", `${dns.ttl} is out of range`, "set seconds from 1 to 86400 (default 60)");
    if (dns.globalName !== undefined) {
      const p = dnsNameProblem(dns.globalName);
      if (p) report("dns.globalName", `"${dns.globalName}" ${p}`, "set the shared name all regions answer, e.g. git.example.com");
      else if (dns.globalName === domain) report("dns.globalName", "equals domainName", "give each region its own domainName (mirror-syd.example.com) and share only globalName (git.example.com)");
      if (args.region === undefined) report("region", "is required with dns.globalName (each region's latency record names its AWS region)", 'set region, e.g. "ap-southeast-2"');
    }
  }

  // ---- access key registration
  const reg = args.registerAccessKey;
  if (reg) {
    if (reg.token === undefined || reg.token === "") report("registerAccessKey.token", "is required", "set an HTTP access token with PROJECT_ADMIN (or REPO_ADMIN) on the mirrored projects, as a secret");
    if (reg.projects !== undefined) {
      const r = reg.projects.length === 0 ? new Invalid("is empty", "") : parseProjects(reg.projects.join(", "), "registerAccessKey.projects");
      if (r instanceof Invalid || r === "ALL") report("registerAccessKey.projects", r instanceof Invalid ? r.message : "must list project keys, not ALL", 'list project keys, e.g. ["PROJ"], or remove it to follow mirror.projects');
    }
    if (reg.repos !== undefined) {
      const r = parseRepoList(reg.repos.join(", "), "registerAccessKey.repos");
      if (r instanceof Invalid) report("registerAccessKey.repos", r.message, 'list PROJECT/slug entries, e.g. ["PROJ/repo"]');
    }
  }

  // ---- mirror farm (components/farm)
  farmProblems(args, report);

  // ---- CloudWatch alarms
  if (args.alarms) alarmsProblems(args.alarms, report);

  // ---- deploy
  const d = args.deploy ?? {};
  if (d.home !== undefined && (!path.posix.isAbsolute(d.home) || path.posix.normalize(d.home) !== d.home || d.home === "/" || /\s/.test(d.home))) {
    report("deploy.home", `"${d.home}" is not a usable absolute directory`, `set an absolute path without spaces, e.g. ${DEFAULT_HOME} (the default)`);
  }
  if (d.sshTimeoutSeconds !== undefined && (!Number.isInteger(d.sshTimeoutSeconds) || d.sshTimeoutSeconds < 10 || d.sshTimeoutSeconds > 3600)) {
    report("deploy.sshTimeoutSeconds", `${d.sshTimeoutSeconds} is out of range`, "set seconds from 10 to 3600 (default 600)");
  }

  return problems;
}

const SNS_ARN = /^arn:aws[a-z-]*:sns:([a-z0-9-]+):\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$/;

/** The alarms' topics: SNS ARNs, the health-check one in us-east-1 (where its alarm lives). */
function alarmsProblems(a: NonNullable<SmartMirrorInputs["alarms"]>, report: Report): void {
  const example = "arn:aws:sns:us-east-1:123456789012:mirror-pages";
  const region = (field: string, v: unknown): string | undefined => {
    if (!isPlain(v)) return undefined; // an Output: checked by AWS at deploy time
    const m = SNS_ARN.exec(v);
    if (!m) report(field, `${JSON.stringify(v)} is not an SNS topic ARN`, `set the topic's ARN, e.g. ${example}`);
    return m?.[1];
  };
  const missing = a.snsTopicArn === undefined || a.snsTopicArn === "";
  if (missing) report("alarms.snsTopicArn", "is required", `set the SNS topic the alarms notify, e.g. ${example}`);
  const main = missing ? undefined : region("alarms.snsTopicArn", a.snsTopicArn);
  const hc = a.healthCheckSnsTopicArn === undefined ? main : region("alarms.healthCheckSnsTopicArn", a.healthCheckSnsTopicArn);
  if (hc !== undefined && hc !== ROUTE53_METRICS_REGION) {
    const field = a.healthCheckSnsTopicArn === undefined ? "alarms.snsTopicArn" : "alarms.healthCheckSnsTopicArn";
    report(field, `is in ${hc}, but the health-check alarm lives in ${ROUTE53_METRICS_REGION} (Route53 publishes its metrics only there) and can only notify a topic there`, `set alarms.healthCheckSnsTopicArn to a topic in ${ROUTE53_METRICS_REGION}`);
  }
  if (a.minutes !== undefined && (!Number.isInteger(a.minutes) || a.minutes < 1 || a.minutes > 60)) report("alarms.minutes", `${a.minutes} is out of range`, `set minutes from 1 to 60 (default ${DEFAULT_ALARM_MINUTES})`);
}

function portProblem(field: string, port: number | undefined, report: Report): void {
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) report(field, `${port} is not a port`, "set a port from 1 to 65535 (default 22)");
}

function bastionProblems(field: string, b: BastionArgs, report: Report): void {
  if (b.host === undefined || b.host === "") report(`${field}.host`, "is required", "set the bastion's address");
  if (typeof b.user !== "string" || !/^[a-z_][a-z0-9_.-]{0,31}$/.test(b.user)) report(`${field}.user`, "is required", "set the SSH user on the bastion");
  if (b.privateKey === undefined || b.privateKey === "") report(`${field}.privateKey`, "is required", "set the bastion login's private key (as a secret)");
  portProblem(`${field}.port`, b.port, report);
  if (isPlain(b.hostKey)) {
    const r = parseHostKeys(b.hostKey, `${field}.hostKey`);
    if (r instanceof Invalid || r.length !== 1) report(`${field}.hostKey`, r instanceof Invalid ? r.message : "lists several keys; the connection pins exactly one", `set the bastion's ed25519 host key, "ssh-ed25519 AAAA..." (\`ssh-keyscan -t ed25519 BASTION\`, fingerprint verified)`);
  }
}

/** A provided certificate must parse, be currently valid and cover the names clients use. */
function certificateProblems(pem: string, names: string[], report: Report): void {
  const first = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem);
  if (!first) {
    report("tls.certificatePem", "holds no PEM certificate", "set the certificate file content, starting -----BEGIN CERTIFICATE-----");
    return;
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(first[0]);
  } catch (e) {
    report("tls.certificatePem", `cannot be parsed (${(e as Error).message})`, "set the PEM exactly as issued");
    return;
  }
  if (new Date(cert.validTo).getTime() < Date.now()) report("tls.certificatePem", `expired on ${cert.validTo}`, "renew the certificate and set the new one");
  if (cert.ca) report("tls.certificatePem", "is a CA certificate, not a server certificate", "put the server (leaf) certificate first; intermediates go in tls.chainPem");
  for (const n of names) {
    if (cert.checkHost(n) === undefined) report("tls.certificatePem", `does not cover ${n} (subject ${cert.subject.replace(/\n/g, ", ")}${cert.subjectAltName ? `; ${cert.subjectAltName}` : ""})`, `issue a certificate with ${n} in its subject alternative names`);
  }
}

export const DEBIAN_SSM_WARNING =
  'host.os "debian-12": Debian\'s AMIs have no SSM agent, so Session Manager (the break-glass shell the instance role allows) will not connect; SSH through the deploy\'s path still works. Fix: use host.os "ubuntu-24.04" (agent included), or pin an image with amazon-ssm-agent installed (host.amiId); see README "Operations".';

/** What is allowed but probably not meant (pulumi.log.warn in the component), each with its fix. */
export function validationWarnings(args: SmartMirrorArgs | SmartMirrorInputs): string[] {
  const n = normalizeSmartMirrorArgs(args);
  const host = n.args.host;
  if (host?.kind !== "aws") return [];
  // Debian's official AMIs ship no SSM agent (Ubuntu's do, as a snap): the role's Session
  // Manager access would silently not work there.
  const ssm = host.os === "debian-12" ? DEBIAN_SSM_WARNING : undefined;
  // A farm's global record evaluates the load balancer's target health, not a Route53 check; its
  // missing SSM agent is a problem, not a warning (farm/validateFarm.ts).
  const farm = n.args.farm !== undefined;
  return [instanceTypeWarning(host.instanceType ?? DEFAULT_INSTANCE_TYPE), farm ? undefined : healthCheckerWarning(args.dns?.globalName, host.allowedCidrs), farm ? undefined : ssm]
    .filter((w): w is string => w !== undefined)
    .map((w) => relabelProblem(w, n.paths));
}

/**
 * Render the properties with placeholders for values that are not plain yet and run the
 * daemon's own validation on them: whatever the daemon would refuse on the host is refused here.
 */
export function daemonBackstop(args: NormalizedSmartMirrorArgs): string[] {
  const home = args.deploy?.home ?? DEFAULT_HOME;
  const text = renderProperties(propertiesValues(args, isPlain(args.displayName) ? args.displayName : "placeholder", home));
  const parsed = parseProperties(text);
  const v = validateEntries(parsed.entries, home);
  return [...parsed.problems, ...v.problems].map((p) => {
    const arg = ARG_OF_KEY.get(p.key) ?? `mirror.extraProperties["${p.key}"]`;
    return `${arg}: ${p.message} (daemon key ${p.key}) — ${p.fix}`;
  });
}

/** mirror.events: receivers the daemon accepts (the key table's rule), and a secret long enough to sign with. */
function eventsProblems(ev: NonNullable<MirrorSettingsArgs["events"]>, report: Report, fromInvalid: (field: string, r: Invalid) => void): void {
  const urlsArg = KEYS.eventsUrls.arg;
  if (!Array.isArray(ev.urls) || ev.urls.length === 0) report(urlsArg, "lists no URL", `set ${urlsArg}: ["https://ci.example.com/hooks/mirror-synced"], or remove mirror.events`);
  else {
    const r = parseKeyValue("eventsUrls", ev.urls.join(", "), urlsArg, { home: DEFAULT_HOME });
    if (r instanceof Invalid) fromInvalid(urlsArg, r);
  }
  const secretArg = KEYS.eventsSecretFile.arg;
  if (ev.secret === undefined || ev.secret === null) report(secretArg, "is required: events are always signed", `set ${secretArg} (as a secret), e.g. from \`openssl rand -hex 32\`, and give the receivers the same secret`);
  else if (typeof ev.secret === "string" && ev.secret.trim().length < 16) report(secretArg, "is shorter than 16 characters; an HMAC secret that short can be guessed", `set ${secretArg} to a longer secret, e.g. from \`openssl rand -hex 32\``);
}
