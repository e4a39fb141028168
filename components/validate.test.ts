import type { SmartMirrorArgs } from "./args";
import { inputsShape } from "./normalize";
import { assertValidArgs, dnsNameProblem, isCidr, SmartMirrorArgsError, validateSmartMirrorArgs, validationWarnings } from "./validate";
import { createCa, TestCa } from "../testbed/tls";

const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMLSLrCXW0pcoxGUW/EJTuGUPZLoE6StPXIw8GBCqaZE";
const HOST_KEY_2 = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg=";
const DEPLOY_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";

function awsArgs(): SmartMirrorArgs {
  return {
    displayName: "Sydney mirror",
    domainName: "mirror-syd.example.com",
    region: "ap-southeast-2",
    primary: { url: "https://bitbucket.example.com", sshUrl: "ssh://git@bitbucket.example.com:7999", hostKeys: [HOST_KEY], catalogToken: "BBDC-token" },
    host: { kind: "aws", subnetId: "subnet-0abc", ssh: { adminCidrs: ["203.0.113.7/32"] } },
    tls: { kind: "acme" },
    dns: { zoneId: "Z0123456789", globalName: "git.example.com" },
    mirror: { projects: ["PROJ", "OPS"] },
  };
}

function existingArgs(): SmartMirrorArgs {
  return {
    ...awsArgs(),
    host: { kind: "existing", address: "mirror.internal.example.com", privateKey: DEPLOY_KEY, hostKey: HOST_KEY },
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = any;
type Row = [string, () => SmartMirrorArgs, string, RegExp];

function mutate(base: () => SmartMirrorArgs, f: (a: Loose) => void): () => SmartMirrorArgs {
  return () => {
    const a = base() as Loose;
    f(a);
    return a;
  };
}
/** A farm of the default 3 nodes in two subnets: host.aws without subnetId and ssh. */
function farmArgs(): SmartMirrorArgs {
  const a = awsArgs();
  return { ...a, host: { kind: "aws" }, farm: { subnetIds: ["subnet-0aaaabbbbccccdddd", "subnet-0eeeeffff00001111"] } };
}

const aws = (f: (a: Loose) => void) => mutate(awsArgs, f);
const farm = (f: (a: Loose) => void) => mutate(farmArgs, f);
const existing = (f: (a: Loose) => void) => mutate(existingArgs, f);

// [case, args, field the problem names, what it says (message or fix)]
const ROWS: Row[] = [
  ["empty displayName", aws((a) => (a.displayName = " ")), "displayName", /is empty/],
  ["displayName with a newline", aws((a) => (a.displayName = "a\nb")), "displayName", /control characters/],
  ["missing domainName", aws((a) => delete a.domainName), "domainName", /is required/],
  ["domainName is a URL", aws((a) => (a.domainName = "https://mirror.example.com")), "domainName", /is a URL.*e\.g\. mirror\.example\.com/],
  ["domainName upper case", aws((a) => (a.domainName = "Mirror.example.com")), "domainName", /lowercase/],
  ["domainName one label", aws((a) => (a.domainName = "mirror")), "domainName", /fully qualified/],
  ["region not AWS", aws((a) => (a.region = "Sydney")), "region", /not an AWS region.*eu-west-1/],
  ["primary.url http", aws((a) => (a.primary.url = "http://bitbucket.example.com")), "primary.url", /must start with https:\/\/.*set primary\.url=https:\/\/bitbucket\.example\.com/],
  ["primary.url ssh", aws((a) => (a.primary.url = "ssh://git@bitbucket.example.com:7999")), "primary.url", /https:\/\/ URL, not ssh:.*primary\.sshUrl/],
  ["primary.url missing", aws((a) => (a.primary.url = "")), "primary.url", /is required/],
  ["primary.sshUrl https", aws((a) => (a.primary.sshUrl = "https://bitbucket.example.com")), "primary.sshUrl", /SSH only.*ssh:\/\/git@bitbucket\.example\.com:7999/],
  ["primary.sshUrl scp-like", aws((a) => (a.primary.sshUrl = "git@bitbucket.example.com:PROJ/repo.git")), "primary.sshUrl", /scp-like/],
  ["no host keys", aws((a) => (a.primary.hostKeys = [])), "primary.hostKeys", /ssh-keyscan -p 7999 bitbucket\.example\.com/],
  ["damaged host key", aws((a) => (a.primary.hostKeys = ["ssh-ed25519 AAAAnotbase64!"])), "primary.hostKeys", /not valid base64.*ssh-keyscan/],
  ["bad repo list", aws((a) => (a.primary.repos = ["PROJ/repo.git"])), "primary.repos", /PROJECT\/slug/],
  ["REST catalog without token", aws((a) => delete a.primary.catalogToken), "primary.catalogToken", /HTTP access token.*primary\.repos/],
  ["project names instead of keys", aws((a) => (a.mirror.projects = ["My Project"])), "mirror.projects", /not a project key/],
  ["interval too short", aws((a) => (a.mirror.syncInterval = "3")), "mirror.syncInterval", /too short.*set mirror\.syncInterval=3m/],
  ["concurrency too high", aws((a) => (a.mirror.concurrency = 100)), "mirror.concurrency", /from 1 to 64/],
  ["unknown auth mode", aws((a) => (a.mirror.auth = "ldap")), "mirror.auth", /"primary", "anonymous" or "tokens"/],
  ["tokens auth without tokens", aws((a) => (a.mirror.auth = "tokens")), "mirror.cloneTokens", /required with mirror.auth "tokens"/],
  ["tokens without tokens auth", aws((a) => (a.mirror.cloneTokens = ["t"])), "mirror.cloneTokens", /no token would be accepted/],
  ["events to plain http elsewhere", aws((a) => (a.mirror.events = { urls: ["http://ci.example.com/h"], secret: "0123456789abcdef0123" })), "mirror.events.urls", /plain http to another host.*https:\/\/ci\.example\.com\/h/],
  ["events URL with credentials", aws((a) => (a.mirror.events = { urls: ["https://u:p@ci.example.com/h"], secret: "0123456789abcdef0123" })), "mirror.events.urls", /user name or password/],
  ["events without URLs", aws((a) => (a.mirror.events = { urls: [], secret: "0123456789abcdef0123" })), "mirror.events.urls", /lists no URL/],
  ["events without secret", aws((a) => (a.mirror.events = { urls: ["https://ci.example.com/h"] })), "mirror.events.secret", /always signed/],
  ["events secret too short", aws((a) => (a.mirror.events = { urls: ["https://ci.example.com/h"], secret: "short" })), "mirror.events.secret", /shorter than 16/],
  ["events setting managed by an arg", aws((a) => (a.mirror.extraProperties = { "mirror.events.urls": "https://ci.example.com/h" })), 'mirror.extraProperties["mirror.events.urls"]', /use mirror\.events\.urls instead/],
  ["extra property managed by an arg", aws((a) => (a.mirror.extraProperties = { "mirror.projects": "ALL" })), 'mirror.extraProperties["mirror.projects"]', /use mirror\.projects instead/],
  ["extra property misspelled", aws((a) => (a.mirror.extraProperties = { "mirror.purge.protekt": "5" })), 'mirror.extraProperties["mirror.purge.protekt"]', /did you mean "mirror\.purge\.protect"/],
  ["extra property bad value (daemon's rules)", aws((a) => (a.mirror.extraProperties = { "mirror.purge.protect": "250" })), 'mirror.extraProperties["mirror.purge.protect"]', /at most 100.*daemon key mirror\.purge\.protect/],
  ["unknown host kind", aws((a) => (a.host = { kind: "gcp" })), "host.kind", /not one of "aws", "existing"/],
  ["instance type too small", aws((a) => (a.host.instanceType = "t3.micro")),  "host.instanceType", /"t3.micro" has 2 vCPU and 1 GiB, below the minimum of 2 vCPU and 4 GiB.*m6i\.xlarge/],
  ["one vCPU", aws((a) => (a.host.instanceType = "m6g.medium")), "host.instanceType", /1 vCPU/],
  ["not an instance type", aws((a) => (a.host.instanceType = "large")), "host.instanceType", /not an EC2 instance type name/],
  ["unsupported os", aws((a) => (a.host.os = "centos-7")), "host.os", /ubuntu-24\.04/],
  ["missing subnet", aws((a) => delete a.host.subnetId), "host.subnetId", /is required/],
  ["bad AMI id", aws((a) => (a.host.amiId = "ubuntu")), "host.amiId", /not an AMI id/],
  ["root volume too small", aws((a) => (a.host.rootVolumeGiB = 4)), "host.rootVolumeGiB", /from 10 to 1024/],
  ["data volume too small", aws((a) => (a.host.dataVolume = { sizeGiB: 5 })), "host.dataVolume.sizeGiB", /from 20 to 16384/],
  ["data volume type", aws((a) => (a.host.dataVolume = { type: "sc1" })), "host.dataVolume.type", /gp3/],
  ["iops on gp2", aws((a) => (a.host.dataVolume = { type: "gp2", iops: 3000 })), "host.dataVolume.iops", /only for gp3, io1 and io2/],
  ["throughput on io2", aws((a) => (a.host.dataVolume = { type: "io2", throughput: 250 })), "host.dataVolume.throughput", /only for gp3/],
  ["no client ranges", aws((a) => (a.host.allowedCidrs = [])), "host.allowedCidrs", /no client could reach/],
  ["bad client range", aws((a) => (a.host.allowedCidrs = ["10.0.0.0"])), "host.allowedCidrs", /not an IPv4 CIDR/],
  ["bad IPv6 range", aws((a) => (a.host.allowedIpv6Cidrs = ["10.0.0.0/8"])), "host.allowedIpv6Cidrs", /not an IPv6 CIDR/],
  ["bad admin range", aws((a) => (a.host.ssh.adminCidrs = ["my laptop"])), "host.ssh.adminCidrs", /not a CIDR/],
  ["SSH open to the world", aws((a) => (a.host.ssh.adminCidrs = ["0.0.0.0/0"])), "host.ssh.adminCidrs", /whole internet.*bastion/],
  ["no way to port 22", aws((a) => (a.host.ssh = {})), "host.ssh", /no way to reach port 22.*adminCidrs.*bastion/],
  [
    "bastion that cannot reach port 22",
    aws((a) => (a.host.ssh = { bastion: { host: "bastion.example.com", user: "ec2-user", privateKey: DEPLOY_KEY } })),
    "host.ssh.fromSecurityGroupIds",
    /bastion's security group/,
  ],
  [
    "bastion without user",
    aws((a) => (a.host.ssh = { fromSecurityGroupIds: ["sg-1"], bastion: { host: "b", privateKey: DEPLOY_KEY } })),
    "host.ssh.bastion.user",
    /is required/,
  ],
  [
    "bastion host key damaged",
    aws((a) => (a.host.ssh = { fromSecurityGroupIds: ["sg-1"], bastion: { host: "b", user: "ec2-user", privateKey: DEPLOY_KEY, hostKey: "ssh-ed25519 AAAA" } })),
    "host.ssh.bastion.hostKey",
    /ssh-keyscan -t ed25519 BASTION/,
  ],
  ["existing host without address", existing((a) => (a.host.address = "")), "host.address", /is required/],
  ["existing host without key", existing((a) => delete a.host.privateKey), "host.privateKey", /is required/],
  ["existing host key is a public key", existing((a) => (a.host.privateKey = HOST_KEY)), "host.privateKey", /not a PEM\/OpenSSH private key/],
  ["existing host port", existing((a) => (a.host.port = 70000)), "host.port", /not a port/],
  ["existing host user", existing((a) => (a.host.user = "Root User")), "host.user", /not a user name/],
  ["existing host without host key", existing((a) => delete a.host.hostKey), "host.hostKey", /must be verified.*ssh-keyscan -t ed25519/],
  ["existing host damaged host key", existing((a) => (a.host.hostKey = "ssh-ed25519")), "host.hostKey", /no base64 blob/],
  ["existing host two host keys", existing((a) => (a.host.hostKey = `${HOST_KEY},${HOST_KEY_2}`)), "host.hostKey", /pins exactly one/],
  ["anonymous clones from the internet", aws((a) => (a.mirror.auth = "anonymous")), "mirror.auth", /publish every mirrored repository.*allowAnonymousFromAnywhere/],
  ["unknown tls kind", aws((a) => (a.tls = { kind: "selfSigned" })), "tls.kind", /not one of "acme", "provided", "privateCa"/],
  ["acme without a zone", aws((a) => delete a.dns), "tls", /DNS-01.*set dns\.zoneId/],
  ["acme directory over http", aws((a) => (a.tls.serverUrl = "http://acme.example.com/directory")), "tls.serverUrl", /https:\/\//],
  ["acme bad email", aws((a) => (a.tls.email = "ops")), "tls.email", /not an email/],
  ["acme renewal window", aws((a) => (a.tls.minDaysRemaining = 90)), "tls.minDaysRemaining", /1 to 60/],
  ["private CA without the trust flag", aws((a) => (a.tls = { kind: "privateCa" })), "tls.clientsTrustPrivateCa", /CA-signed certificate.*set tls\.clientsTrustPrivateCa: true/],
  ["private CA validity", aws((a) => (a.tls = { kind: "privateCa", clientsTrustPrivateCa: true, validityDays: 5000 })), "tls.validityDays", /31 to 825/],
  ["provided without certificate", aws((a) => (a.tls = { kind: "provided", privateKeyPem: "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----" })), "tls.certificatePem", /is required/],
  ["provided key not PEM", aws((a) => (a.tls = { kind: "provided", certificatePem: { secret: true }, privateKeyPem: "secret" })), "tls.privateKeyPem", /not a PEM private key/],
  ["provided certificate not PEM", aws((a) => (a.tls = { kind: "provided", certificatePem: "cert", privateKeyPem: { out: 1 } })), "tls.certificatePem", /no PEM certificate/],
  ["empty zone id", aws((a) => (a.dns.zoneId = "")), "dns.zoneId", /is required/],
  ["TTL out of range", aws((a) => (a.dns.ttl = 0)), "dns.ttl", /1 to 86400/],
  ["global name not a name", aws((a) => (a.dns.globalName = "git_hub.example.com")), "dns.globalName", /not a DNS host name/],
  ["global name = domain", aws((a) => (a.dns.globalName = "mirror-syd.example.com")), "dns.globalName", /equals domainName/],
  ["global name without region", aws((a) => delete a.region), "region", /required with dns\.globalName/],
  ["access-key registration without token", aws((a) => (a.registerAccessKey = { token: "" })), "registerAccessKey.token", /PROJECT_ADMIN/],
  ["access-key registration, no projects", aws((a) => (a.registerAccessKey = { token: "t", projects: [] })), "registerAccessKey.projects", /is empty/],
  ["access-key registration, ALL", aws((a) => (a.registerAccessKey = { token: "t", projects: ["ALL"] })), "registerAccessKey.projects", /ALL/],
  ["access-key registration, bad repo", aws((a) => (a.registerAccessKey = { token: "t", repos: ["repo"] })), "registerAccessKey.repos", /PROJECT\/slug/],
  ["relative home", aws((a) => (a.deploy = { home: "mirror" })), "deploy.home", /absolute.*\/var\/lib\/smart-mirror/],
  ["SSH timeout", aws((a) => (a.deploy = { sshTimeoutSeconds: 1 })), "deploy.sshTimeoutSeconds", /10 to 3600/],
  // ---- mirror farm
  ["farm on an existing host", existing((a) => (a.farm = { subnetIds: ["subnet-0aaaabbbbccccdddd", "subnet-0eeeeffff00001111"] })), "farm", /needs an AWS host .*not an existing one — use an AWS host with farm/],
  ["farm of one node", farm((a) => (a.farm.nodes = 1)), "farm.nodes", /out of range — .*2 to 20.*one node needs no farm/],
  ["farm of 21 nodes", farm((a) => (a.farm.nodes = 21)), "farm.nodes", /2 to 20/],
  ["farm of 2.5 nodes", farm((a) => (a.farm.nodes = 2.5)), "farm.nodes", /whole number/],
  ["farm in one subnet", farm((a) => (a.farm.subnetIds = ["subnet-0aaaabbbbccccdddd"])), "farm.subnetIds", /lists 1 subnet\(s\).*at least 2, in different availability zones/],
  ["farm without subnets", farm((a) => delete a.farm.subnetIds), "farm.subnetIds", /lists no subnet/],
  ["farm subnet twice", farm((a) => (a.farm.subnetIds = ["subnet-0aaaabbbbccccdddd", "subnet-0aaaabbbbccccdddd"])), "farm.subnetIds", /twice — list each subnet once/],
  ["farm subnet not an id", farm((a) => (a.farm.subnetIds = ["subnet-0aaaabbbbccccdddd", "default"])), "farm.subnetIds", /"default" is not a subnet id/],
  ["farm with host.subnetId", farm((a) => (a.host.subnetId = "subnet-0abc")), "host.subnetId", /not used by a farm.*farm\.subnetIds/],
  ["farm with host.ssh", farm((a) => (a.host.ssh = { adminCidrs: ["203.0.113.7/32"] })), "host.ssh", /deployed by pull .*remove host\.ssh; use Session Manager/],
  ["farm with an Elastic IP", farm((a) => (a.host.elasticIp = true)), "host.elasticIp", /Network Load Balancer/],
  ["farm with kept data volumes", farm((a) => (a.host.dataVolume = { keep: true })), "host.dataVolume.keep", /deleted with the node/],
  ["farm on Debian's image (no SSM agent)", farm((a) => (a.host.os = "debian-12")), "host.os", /no SSM agent.*farm's updates run through SSM — use host\.os "ubuntu-24\.04"/],
  ["farm drain too short", farm((a) => (a.farm.drainSeconds = 5)), "farm.drainSeconds", /30 to 3600/],
  ["farm boot grace too short", farm((a) => (a.farm.bootGraceSeconds = 60)), "farm.bootGraceSeconds", /300 to 14400/],
  ["farm health check interval", farm((a) => (a.farm.healthCheck = { intervalSeconds: 1 })), "farm.healthCheck.intervalSeconds", /5 to 300/],
  ["farm health check threshold", farm((a) => (a.farm.healthCheck = { unhealthyThreshold: 1 })), "farm.healthCheck.unhealthyThreshold", /2 to 10/],
  ["farm health check slower than a drain waits", farm((a) => (a.farm.healthCheck = { intervalSeconds: 300, unhealthyThreshold: 3 })), "farm.healthCheck", /1200 s to stop sending.*lower farm\.healthCheck\.intervalSeconds/],
  ["farm with the SSH timeout", farm((a) => (a.deploy = { sshTimeoutSeconds: 60 })), "deploy.sshTimeoutSeconds", /not used by a farm/],
  ["farm key in extraProperties", farm((a) => (a.mirror.extraProperties = { "mirror.drain.quietPeriod": "5s" })), 'mirror.extraProperties["mirror.drain.quietPeriod"]', /set by the farm.*farm\.drainSeconds/],
  ["single host without subnet", aws((a) => delete a.host.subnetId), "host.subnetId", /is required/],
];

describe("validateSmartMirrorArgs", () => {
  test.each([
    ["aws host, acme", awsArgs],
    ["existing host, acme", existingArgs],
    ["aws host behind a bastion, private CA", aws((a) => ((a.host.ssh = { fromSecurityGroupIds: ["sg-1"], bastion: { host: "b", user: "ec2-user", privateKey: DEPLOY_KEY } }), (a.tls = { kind: "privateCa", clientsTrustPrivateCa: true })))],
    ["static catalog, token auth, extras", aws((a) => ((a.primary.repos = ["PROJ/app"]), delete a.primary.catalogToken, (a.mirror = { auth: "tokens", cloneTokens: ["t"], extraProperties: { "mirror.purge.protect": "10" } })))],
    ["anonymous on private ranges", aws((a) => ((a.mirror.auth = "anonymous"), (a.host.allowedCidrs = ["10.0.0.0/8"])))],
    ["anonymous acknowledged", aws((a) => ((a.mirror.auth = "anonymous"), (a.mirror.allowAnonymousFromAnywhere = true)))],
    ["events to https and to a loopback receiver, queue size as an extra", aws((a) => ((a.mirror.events = { urls: ["https://ci.example.com/h?token=x", "http://127.0.0.1:9000/h"], secret: { secret: true } }), (a.mirror.extraProperties = { "mirror.events.queueSize": "5000" })))],
    ["secrets and outputs are not judged", aws((a) => ((a.displayName = { output: true }), (a.primary.catalogToken = { secret: true })))],
    ["farm, acme (every default)", farmArgs],
    ["farm of 6 internal nodes, tuned drain and health check, private CA", farm((a) => ((a.farm = { ...a.farm, nodes: 6, internal: true, drainSeconds: 900, bootGraceSeconds: 7200, healthCheck: { intervalSeconds: 30, healthyThreshold: 2, unhealthyThreshold: 3 } }), (a.tls = { kind: "privateCa", clientsTrustPrivateCa: true })))],
    // NLB passes TCP through and each node's nginx terminates TLS: every TLS kind's key is one Pulumi holds and puts in the plan.
    ["farm, provided certificate (not judged as an output)", farm((a) => (a.tls = { kind: "provided", certificatePem: { secret: true }, privateKeyPem: { secret: true } }))],
    ["farm with subnets from outputs", farm((a) => (a.farm.subnetIds = [{ output: 1 }, { output: 2 }]))],
  ])("valid: %s", (_name, make) => {
    expect(validateSmartMirrorArgs(make())).toEqual([]);
  });

  test.each(ROWS)("%s", (_name, make, field, says) => {
    const problems = validateSmartMirrorArgs(make());
    expect(problems).toHaveLength(1);
    expect(problems[0].startsWith(`${field}:`) || problems[0].startsWith(`${field} `)).toBe(true);
    expect(problems[0]).toMatch(says);
    // Every problem says what to change.
    expect(problems[0]).toMatch(/ — \S/);
  });

  // The same rows in the any-language shape (host: { aws: {...} }, tls: { acme: {} }): the same
  // problem, named by the path that caller wrote (host.aws.subnetId, not host.subnetId).
  const kindRows = ROWS.filter(([, , field]) => field !== "host.kind" && field !== "tls.kind");
  test.each(kindRows)("any-language shape: %s", (_name, make, field, says) => {
    const kindShape = make();
    const paths = { host: `host.${String((kindShape.host as { kind?: string }).kind)}`, tls: `tls.${String((kindShape.tls as { kind?: string }).kind)}` };
    const relabel = (f: string) => f.replace(/^host\.(?!aws\b|existing\b)/, `${paths.host}.`).replace(/^tls\.(?!acme\b|provided\b|privateCa\b)/, `${paths.tls}.`);
    const problems = validateSmartMirrorArgs(inputsShape(kindShape));
    expect(problems).toHaveLength(1);
    expect(problems[0].startsWith(`${relabel(field)}:`) || problems[0].startsWith(`${relabel(field)} `)).toBe(true);
    // A path inside the expected text is relabelled too (tls\.x -> tls\.privateCa\.x).
    const esc = (p: string) => p.replace(/\./g, "\\.");
    const saysHere = new RegExp(says.source.replace(/(^|[^\w])host\\\.(?!aws|existing)/g, `$1${esc(paths.host)}\\.`).replace(/(^|[^\w])tls\\\.(?!acme|provided|privateCa)/g, `$1${esc(paths.tls)}\\.`));
    expect(problems[0]).toMatch(saysHere);
    expect(problems[0]).not.toMatch(/(^|[^\w.])host\.(?!aws\.|existing\.)\w/);
  });

  test("any-language shape: no host kind, two TLS kinds and a bad URL are reported together", () => {
    const a = inputsShape(awsArgs()) as Loose;
    a.host = {};
    a.tls = { acme: {}, provided: { certificatePem: "C", privateKeyPem: "K" } };
    a.primary.url = "http://bitbucket.example.com";
    const problems = validateSmartMirrorArgs(a);
    expect(problems).toEqual([
      expect.stringMatching(/^host: sets none of host\.aws, host\.existing — set exactly one, e\.g\. host: \{ aws: /),
      expect.stringMatching(/^tls: sets tls\.acme and tls\.provided — keep exactly one of tls\.acme, tls\.provided, tls\.privateCa$/),
      expect.stringMatching(/^primary\.url: /),
    ]);
  });

  test("reports every problem at once, and assertValidArgs throws them all", () => {
    const a = awsArgs() as Loose;
    a.primary.url = "http://bitbucket.example.com";
    a.host.instanceType = "t3.nano";
    a.tls = { kind: "privateCa" };
    const problems = validateSmartMirrorArgs(a);
    expect(problems).toHaveLength(3);
    expect(() => assertValidArgs("syd", a)).toThrow(SmartMirrorArgsError);
    try {
      assertValidArgs("syd", a);
    } catch (e) {
      expect((e as SmartMirrorArgsError).problems).toEqual(problems);
      expect((e as Error).message).toMatch(/SmartMirror "syd": 3 problem\(s\)/);
    }
  });

  describe("provided certificates are checked against the names clients use", () => {
    let ca: TestCa;
    beforeAll(async () => {
      ca = await createCa("validate test CA");
    });
    const provided = (certificatePem: string) =>
      aws((a) => (a.tls = { kind: "provided", certificatePem, privateKeyPem: "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n" }))();

    test("a certificate for both names passes", async () => {
      const leaf = await ca.issueServerCert(["mirror-syd.example.com", "git.example.com"]);
      const fs = await import("node:fs");
      expect(validateSmartMirrorArgs(provided(fs.readFileSync(leaf.chainPath, "utf8")))).toEqual([]);
    });

    test("a certificate without the global name is refused, naming the missing name", async () => {
      const leaf = await ca.issueServerCert(["mirror-syd.example.com"]);
      const fs = await import("node:fs");
      const problems = validateSmartMirrorArgs(provided(fs.readFileSync(leaf.certPath, "utf8")));
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^tls\.certificatePem: does not cover git\.example\.com .* — issue a certificate with git\.example\.com/);
    });

    test("a CA certificate in place of the server certificate is refused", () => {
      const problems = validateSmartMirrorArgs(provided(ca.certPem));
      expect(problems.some((p) => /is a CA certificate/.test(p))).toBe(true);
    });
  });
});

describe("farm warnings", () => {
  test("no Route53 health-checker warning for a farm (its global record evaluates the load balancer's target health); a single host still gets it", () => {
    const closed = (a: Loose) => (a.host.allowedCidrs = ["10.0.0.0/8"]);
    expect(validationWarnings(aws(closed)())).toEqual([expect.stringMatching(/health-checker ranges/)]);
    expect(validationWarnings(farm(closed)())).toEqual([]);
  });
});

describe("helpers", () => {
  test.each([
    ["mirror.example.com", undefined],
    ["a-b.c-d.example", undefined],
    ["-a.example.com", /not a DNS host name/],
    ["a..example.com", /not a DNS host name/],
    ["example.com.", /dot/],
  ])("dnsNameProblem(%s)", (name, expected) => {
    const p = dnsNameProblem(name);
    if (expected === undefined) expect(p).toBeUndefined();
    else expect(p).toMatch(expected);
  });

  test.each([
    ["10.0.0.0/8", 4, true],
    ["203.0.113.7/32", 4, true],
    ["203.0.113.7/33", 4, false],
    ["203.0.113.7", 4, false],
    ["2001:db8::/32", 6, true],
    ["2001:db8::/32", 4, false],
    ["::/0", 6, true],
  ] as const)("isCidr(%s, %d) = %s", (v, family, ok) => {
    expect(isCidr(v, family)).toBe(ok);
  });
});
