/**
 * The component's resource graph under Pulumi mocks: which resources exist for each target,
 * how they are configured (ports, volume, options), that secrets stay secret, and the outputs.
 * What the rendered files do on a host is tested elsewhere, for real.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { tempDir } from "../testbed/resources";
import type { SmartMirrorArgs } from "./args";
import { SmartMirror, SMART_MIRROR_TYPE } from "./smartMirror";
import { inputsShape } from "./normalize";
import { SmartMirrorProvider, SMART_MIRROR_OUTPUTS } from "../provider/smartMirrorProvider";
import { SmartMirrorArgsError } from "./validate";
import { parsePlan } from "../sync/agent/planSchema";
import { containsSecret, installMocks, isSecretValue, optionsRecorder, promiseOf, RecordedOptions, settled, unwrap } from "../testbed/pulumiMocks";

const world = installMocks();

const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMLSLrCXW0pcoxGUW/EJTuGUPZLoE6StPXIw8GBCqaZE";
const EXISTING_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ5dGVzYnl0ZXNieXRlc2J5dGVzYnl0ZXNieXRlc2J5";
const SECRET_VALUES = ["BBDC-catalog-token", "admin-token-for-keys", "whsec-0123456789abcdef", "existing-deploy-key-body"];

let bundlePath: string;
beforeAll(() => {
  bundlePath = path.join(tempDir("component-bundle"), "smart-mirror.js");
  fs.writeFileSync(bundlePath, "#!/usr/bin/env node\nconsole.log('bundle');\n");
});
beforeEach(() => {
  world.resources.length = 0;
  world.invokes.length = 0;
});

function awsArgs(over: Partial<SmartMirrorArgs> = {}): SmartMirrorArgs {
  return {
    displayName: "Sydney mirror",
    domainName: "mirror-syd.example.com",
    region: "ap-southeast-2",
    primary: {
      url: "https://bitbucket.example.com",
      sshUrl: "ssh://git@bitbucket.example.com:7999",
      hostKeys: [HOST_KEY],
      catalogToken: pulumi.secret("BBDC-catalog-token"),
    },
    host: { kind: "aws", subnetId: "subnet-0abc", ssh: { adminCidrs: ["203.0.113.7/32"] } },
    tls: { kind: "acme" },
    dns: { zoneId: "Z0123456789", globalName: "git.example.com" },
    mirror: { projects: ["PROJ", "OPS"], webhookSecret: pulumi.secret("whsec-0123456789abcdef"), events: { urls: ["https://ci.example.com/hooks/mirror"], secret: pulumi.secret("evsec-0123456789abcdef") } },
    registerAccessKey: { token: pulumi.secret("admin-token-for-keys") },
    deploy: { bundlePath },
    ...over,
  };
}

function existingArgs(over: Partial<SmartMirrorArgs> = {}): SmartMirrorArgs {
  return awsArgs({
    host: {
      kind: "existing",
      address: "mirror.internal.example.com",
      privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nexisting-deploy-key-body\n-----END OPENSSH PRIVATE KEY-----\n",
      hostKey: `mirror.internal.example.com ${EXISTING_HOST_KEY}`,
    },
    registerAccessKey: undefined,
    ...over,
  });
}

interface Built {
  mirror: SmartMirror;
  recorded: RecordedOptions[];
}

async function build(args: SmartMirrorArgs, opts: pulumi.ComponentResourceOptions = {}, name = "syd"): Promise<Built> {
  const { transformation, recorded } = optionsRecorder();
  const mirror = new SmartMirror(name, args, { ...opts, transformations: [transformation] });
  await settled(recorded);
  await promiseOf(mirror.deploySummary);
  // The transformation also sees the component itself; keep its children.
  return { mirror, recorded: recorded.filter((r) => r.resource !== mirror) };
}

const byType = (type: string) => world.resources.filter((r) => r.type === type);
const one = (type: string) => {
  const found = byType(type);
  expect(found).toHaveLength(1);
  return found[0];
};
const optsOf = (b: Built, name: string) => {
  const r = b.recorded.find((x) => x.name === name);
  if (!r) throw new Error(`no resource ${name}`);
  return r;
};

/** Strip every secret from every recorded input; no secret value may remain in what is left. */
function expectNoSecretInPlainSight(): void {
  const stripSecrets = (v: unknown): unknown =>
    isSecretValue(v) ? "[secret]" : Array.isArray(v) ? v.map(stripSecrets) : v && typeof v === "object" ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, stripSecrets(x)])) : v;
  const visible = JSON.stringify(world.resources.map((r) => stripSecrets(r.inputs)));
  for (const s of [...SECRET_VALUES, "mock syd-sync-key", "mock syd-deploy-key", "mock syd-host-key"].map((x) => (x.includes("mock") ? Buffer.from(x).toString("base64") : x))) {
    expect(visible).not.toContain(s);
  }
}

describe("SmartMirror on AWS", () => {
  test("resource graph: every child named syd-*, parented to the component", async () => {
    const b = await build(awsArgs());
    const names = b.recorded.map((r) => `${r.type} ${r.name}`).sort();
    expect(names).toEqual(
      [
        "acme:index/certificate:Certificate syd-cert",
        "acme:index/registration:Registration syd-acme-account",
        "aws:ebs/volume:Volume syd-data",
        "aws:ec2/eip:Eip syd-eip",
        "aws:ec2/instance:Instance syd-host",
        "aws:ec2/securityGroup:SecurityGroup syd-sg",
        "aws:ec2/volumeAttachment:VolumeAttachment syd-data-attachment",
        "aws:iam/instanceProfile:InstanceProfile syd-profile",
        "aws:iam/role:Role syd-role",
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment syd-ssm",
        "aws:route53/healthCheck:HealthCheck syd-health",
        "aws:route53/record:Record syd-dns",
        "aws:route53/record:Record syd-dns-global",
        "command:local:Command syd-access-key",
        "command:remote:Command syd-apply",
        "command:remote:Command syd-grow-fs",
        "command:remote:Command syd-ready",
        "command:remote:Command syd-stage",
        "command:remote:CopyToRemote syd-bundle",
        "command:remote:CopyToRemote syd-plan",
        "pulumi:providers:acme syd-acme",
        "tls:index/privateKey:PrivateKey syd-acme-account-key",
        "tls:index/privateKey:PrivateKey syd-deploy-key",
        "tls:index/privateKey:PrivateKey syd-host-key",
        "tls:index/privateKey:PrivateKey syd-sync-key",
      ].sort(),
    );
    for (const r of b.recorded) expect(r.opts.parent).toBe(b.mirror);
    // What the engine saw is exactly the component and these children.
    expect(world.resources.map((r) => r.name).sort()).toEqual(["syd", ...b.recorded.map((r) => r.name)].sort());
    expect(world.resources.find((r) => r.name === "syd")?.type).toBe("smart-mirror:index:SmartMirror");
  });

  test("security group: 443 and 80 for clients, 22 only from the admin CIDR", async () => {
    await build(awsArgs());
    const ingress = one("aws:ec2/securityGroup:SecurityGroup").inputs.ingress as Array<Record<string, unknown>>;
    const rule = (port: number) => ingress.filter((r) => r.fromPort === port);
    expect(rule(443)).toEqual([expect.objectContaining({ toPort: 443, protocol: "tcp", cidrBlocks: ["0.0.0.0/0"] })]);
    expect(rule(80)).toEqual([expect.objectContaining({ toPort: 80, cidrBlocks: ["0.0.0.0/0"] })]);
    expect(rule(22)).toEqual([expect.objectContaining({ toPort: 22, cidrBlocks: ["203.0.113.7/32"] })]);
    expect(one("aws:ec2/securityGroup:SecurityGroup").inputs.vpcId).toBe("vpc-0123456789abcdef0");
  });

  test("no admin CIDR (bastion via its security group): no CIDR reaches 22, the deploy goes through the proxy to the private IP", async () => {
    const args = awsArgs();
    args.host = {
      kind: "aws",
      subnetId: "subnet-0abc",
      allowedCidrs: ["10.0.0.0/8"],
      ssh: { fromSecurityGroupIds: ["sg-bastion"], bastion: { host: "bastion.example.com", user: "ec2-user", privateKey: pulumi.secret("bastion-key") } },
    };
    await build(args);
    const ingress = one("aws:ec2/securityGroup:SecurityGroup").inputs.ingress as Array<Record<string, unknown>>;
    const ssh = ingress.filter((r) => r.fromPort === 22);
    expect(ssh).toEqual([expect.objectContaining({ securityGroups: ["sg-bastion"] })]);
    expect(ssh[0].cidrBlocks ?? []).toEqual([]);
    for (const r of ingress.filter((x) => x.fromPort !== 22)) expect(r.cidrBlocks).toEqual(["10.0.0.0/8"]);
    const ready = world.resources.find((r) => r.name === "syd-ready");
    const conn = unwrap(ready?.inputs.connection) as Record<string, unknown>;
    expect(conn.host).toBe("10.0.1.10");
    expect(conn.user).toBe("ubuntu");
    expect(conn.proxy).toEqual(expect.objectContaining({ host: "bastion.example.com", user: "ec2-user", port: 22 }));
    // The SDK lifts a nested secret (the keys) to the whole connection property.
    expect(containsSecret(ready?.inputs.connection)).toBe(true);
  });

  test("data volume: separate, encrypted, in the subnet's zone, kept when the instance goes", async () => {
    const b = await build(awsArgs());
    const volume = one("aws:ebs/volume:Volume");
    expect(volume.inputs).toEqual(expect.objectContaining({ encrypted: true, size: 200, type: "gp3", availabilityZone: "eu-west-1a" }));
    const v = optsOf(b, "syd-data").opts;
    expect(v.protect).toBe(true);
    expect(v.retainOnDelete).toBe(true);
    const instance = one("aws:ec2/instance:Instance");
    expect(instance.inputs.ebsBlockDevices ?? []).toEqual([]);
    expect(instance.inputs.rootBlockDevice).toEqual(expect.objectContaining({ encrypted: true, deleteOnTermination: true }));
    expect(optsOf(b, "syd-host").opts.ignoreChanges).toEqual(["ami", "userData"]);
    const attachment = one("aws:ec2/volumeAttachment:VolumeAttachment");
    expect(attachment.inputs).toEqual(expect.objectContaining({ volumeId: "vol-0123456789abcdef0", instanceId: "i-0123456789abcdef0", deviceName: "/dev/sdf", stopInstanceBeforeDetaching: true }));
    expect(optsOf(b, "syd-data-attachment").opts.deleteBeforeReplace).toBe(true);
    // The user data mounts that very volume, by id.
    expect(unwrap(instance.inputs.userData)).toContain("vol-0123456789abcdef0");
  });

  test("throwaway stacks can let the volume go; a pinned AMI is used as is (only described, for its user and architecture)", async () => {
    const args = awsArgs();
    args.host = { kind: "aws", subnetId: "subnet-0abc", amiId: "ami-0fedcba9876543210", dataVolume: { keep: false }, ssh: { adminCidrs: ["203.0.113.7/32"] } };
    const b = await build(args);
    expect(optsOf(b, "syd-data").opts.protect).toBe(false);
    expect(optsOf(b, "syd-data").opts.retainOnDelete).toBe(false);
    expect(optsOf(b, "syd-host").opts.ignoreChanges).toEqual(["userData"]);
    expect(one("aws:ec2/instance:Instance").inputs.ami).toBe("ami-0fedcba9876543210");
    expect(world.invokes.filter((i) => i.token === "aws:ec2/getAmi:getAmi").map((i) => i.inputs.filters)).toEqual([[{ name: "image-id", values: ["ami-0fedcba9876543210"] }]]);
  });

  test("instance: default size, Ubuntu lookup by Canonical's account, IMDSv2, SSM role", async () => {
    await build(awsArgs());
    const instance = one("aws:ec2/instance:Instance");
    expect(instance.inputs.instanceType).toBe("m6i.xlarge");
    expect(instance.inputs.ami).toBe("ami-0123456789abcdef0");
    expect(instance.inputs.metadataOptions).toEqual(expect.objectContaining({ httpTokens: "required" }));
    const getAmi = world.invokes.find((i) => i.token === "aws:ec2/getAmi:getAmi");
    expect(getAmi?.inputs.owners).toEqual(["099720109477"]);
    expect(one("aws:iam/rolePolicyAttachment:RolePolicyAttachment").inputs.policyArn).toBe("arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore");
    expect(JSON.parse(one("aws:iam/role:Role").inputs.assumeRolePolicy as string).Statement[0].Principal).toEqual({ Service: "ec2.amazonaws.com" });
  });

  test("DNS: the mirror's name and a latency record with a health check on the global name", async () => {
    await build(awsArgs());
    const records = byType("aws:route53/record:Record");
    const own = records.find((r) => r.name === "syd-dns");
    const global = records.find((r) => r.name === "syd-dns-global");
    expect(own?.inputs).toEqual(expect.objectContaining({ zoneId: "Z0123456789", name: "mirror-syd.example.com", type: "A", records: ["198.51.100.7"], ttl: 60 }));
    expect(global?.inputs).toEqual(
      expect.objectContaining({ name: "git.example.com", type: "A", records: ["198.51.100.7"], setIdentifier: "ap-southeast-2", latencyRoutingPolicies: [{ region: "ap-southeast-2" }], healthCheckId: "syd-health-id" }),
    );
    expect(one("aws:route53/healthCheck:HealthCheck").inputs).toEqual(expect.objectContaining({ fqdn: "mirror-syd.example.com", type: "HTTPS_STR_MATCH", searchString: '"ready":true', resourcePath: "/status" }));
  });

  test("ACME: DNS-01 in the zone, both names on the certificate", async () => {
    await build(awsArgs());
    const cert = one("acme:index/certificate:Certificate");
    expect(cert.inputs.commonName).toBe("mirror-syd.example.com");
    expect(cert.inputs.subjectAlternativeNames).toEqual(["git.example.com"]);
    expect(cert.inputs.dnsChallenges).toEqual([{ provider: "route53", config: { AWS_REGION: "ap-southeast-2", AWS_HOSTED_ZONE_ID: "Z0123456789" } }]);
    expect(one("pulumi:providers:acme").inputs.serverUrl).toBe("https://acme-v02.api.letsencrypt.org/directory");
    expect(cert.provider).toMatch(/pulumi:providers:acme::syd-acme::/);
  });

  test("outputs", async () => {
    const { mirror } = await build(awsArgs());
    expect(await promiseOf(mirror.mirrorUrl)).toBe("https://mirror-syd.example.com");
    expect(await promiseOf(mirror.cloneUrlTemplate)).toBe("https://mirror-syd.example.com/scm/{PROJECT}/{repo}.git");
    expect(await promiseOf(mirror.statusUrl)).toBe("https://mirror-syd.example.com/status");
    expect(await promiseOf(mirror.syncPublicKey)).toMatch(/^ssh-ed25519 [A-Za-z0-9+/]+=*$/);
    expect(await promiseOf(mirror.hostAddress)).toBe("198.51.100.7");
    expect(await promiseOf(mirror.globalUrl)).toBe("https://git.example.com");
    expect(await promiseOf(mirror.caCertificatePem)).toBeUndefined();
    const props = await promiseOf(mirror.propertiesText);
    expect(props).toContain("setup.baseUrl=https://mirror-syd.example.com\n");
    expect(props).toContain("mirror.projects=PROJ, OPS\n");
    expect(props).toContain("mirror.webhook.secretFile=/var/lib/smart-mirror/shared/secrets/webhook-secret\n");
    // The synced event: URLs and the secret's file in the properties, never the secret itself.
    expect(props).toContain("mirror.events.urls=https://ci.example.com/hooks/mirror\n");
    expect(props).toContain("mirror.events.secretFile=/var/lib/smart-mirror/shared/secrets/events-secret\n");
    expect(props).not.toContain("evsec-");
  });

  test("without an Elastic IP the instance's public address is used", async () => {
    const args = awsArgs();
    args.host = { kind: "aws", subnetId: "subnet-0abc", elasticIp: false, ssh: { adminCidrs: ["203.0.113.7/32"] } };
    const { mirror } = await build(args);
    expect(byType("aws:ec2/eip:Eip")).toEqual([]);
    expect(await promiseOf(mirror.hostAddress)).toBe("203.0.113.10");
  });
});

describe("secrets stay secret", () => {
  test("private keys, tokens, user data and the plan are secret; no secret value appears in any plain input", async () => {
    const b = await build(awsArgs());
    // Keys: the private halves are secret outputs.
    // (The engine applies additionalSecretOutputs; mocks do not, so the option itself is checked.)
    for (const name of ["syd-sync-key", "syd-deploy-key", "syd-host-key"]) {
      expect(optsOf(b, name).opts.additionalSecretOutputs).toEqual(expect.arrayContaining(["privateKeyOpenssh", "privateKeyPem"]));
    }
    expect(await pulumi.isSecret(b.mirror.syncPublicKey)).toBe(false);
    // The instance's user data holds the host key.
    expect(isSecretValue(one("aws:ec2/instance:Instance").inputs.userData)).toBe(true);
    // The token reaches the registration script through its environment, secret.
    const access = one("command:local:Command");
    expect(containsSecret(access.inputs.environment)).toBe(true);
    expect(JSON.stringify(access.inputs.create)).not.toContain("admin-token");
    expect(access.inputs.create).toBe('node --input-type=module -e "$SMART_MIRROR_ACCESS_KEY_SCRIPT" register');
    // The plan (all secrets of the host) is copied as a secret.
    const planCopy = world.resources.find((r) => r.name === "syd-plan");
    expect(containsSecret(planCopy?.inputs.source)).toBe(true);
    // Connections carry the deploy key as a secret.
    expect(containsSecret(world.resources.find((r) => r.name === "syd-apply")?.inputs.connection)).toBe(true);

    // And nowhere in plain sight: strip every secret, then search all inputs of all resources.
    expectNoSecretInPlainSight();
    // The properties output names secret files only.
    expect(await pulumi.isSecret(b.mirror.propertiesText)).toBe(false);
    const props = await promiseOf(b.mirror.propertiesText);
    for (const s of SECRET_VALUES) expect(props).not.toContain(s);
  });

  test("commands hold no secrets: the apply runs the staged bundle on the staged plan", async () => {
    await build(awsArgs());
    const apply = world.resources.find((r) => r.name === "syd-apply");
    expect(isSecretValue(apply?.inputs.create)).toBe(false);
    expect(apply?.inputs.create).toBe(
      ["umask 077", "chmod 0600 -- /var/lib/smart-mirror-deploy/plan.json || exit 1", "sudo -n /usr/bin/node /var/lib/smart-mirror-deploy/smart-mirror.js apply --plan /var/lib/smart-mirror-deploy/plan.json"].join("\n"),
    );
    expect(apply?.inputs.logging).toBe("stdoutAndStderr");
  });
});

describe("the plan the host receives", () => {
  test("the agent's parser accepts it; it carries the rendered properties, the secrets and the staged bundle", async () => {
    const { mirror } = await build(awsArgs());
    const source = unwrap(world.resources.find((r) => r.name === "syd-plan")?.inputs.source) as pulumi.asset.StringAsset;
    const plan = parsePlan(await source.text);
    const file = (p: string) => plan.files.find((f) => f.path === p);
    const text = (p: string) => Buffer.from(file(p)?.contentBase64 ?? "", "base64").toString("utf8");
    expect(text("/var/lib/smart-mirror/shared/bitbucket.properties")).toBe(await promiseOf(mirror.propertiesText));
    expect(text("/var/lib/smart-mirror/shared/secrets/upstream-token")).toBe("BBDC-catalog-token\n");
    expect(text("/var/lib/smart-mirror/shared/secrets/webhook-secret")).toBe("whsec-0123456789abcdef\n");
    expect(text("/var/lib/smart-mirror/shared/secrets/events-secret")).toBe("evsec-0123456789abcdef\n");
    expect(file("/var/lib/smart-mirror/shared/secrets/events-secret")).toMatchObject({ mode: 0o600, owner: "smart-mirror", secret: true });
    expect(text("/var/lib/smart-mirror/shared/ssh/id_ed25519")).toContain("OPENSSH PRIVATE KEY");
    expect(text("/etc/smart-mirror/tls/fullchain.pem").match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect(text("/etc/nginx/conf.d/smart-mirror.conf")).toContain("server_name mirror-syd.example.com git.example.com;");
    expect(text("/etc/systemd/system/smart-mirror.service")).toContain("ExecStart=/usr/bin/node /opt/smart-mirror/smart-mirror.js run --home /var/lib/smart-mirror");
    expect(file("/opt/smart-mirror/smart-mirror.js")?.sourcePath).toBe("/var/lib/smart-mirror-deploy/smart-mirror.js");
    expect(unwrap(world.resources.find((r) => r.name === "syd-bundle")?.inputs.remotePath)).toBe("/var/lib/smart-mirror-deploy/smart-mirror.js");
    expect(unwrap(world.resources.find((r) => r.name === "syd-plan")?.inputs.remotePath)).toBe("/var/lib/smart-mirror-deploy/plan.json");
  });
});

describe("deploy triggers", () => {
  test("content hashes: the bundle's sha256 and the plan's, plus the machine", async () => {
    await build(awsArgs());
    const apply = world.resources.find((r) => r.name === "syd-apply");
    const triggers = unwrap(apply?.inputs.triggers) as string[];
    expect(triggers[0]).toBe("i-0123456789abcdef0");
    expect(triggers[1]).toBe(createHash("sha256").update(fs.readFileSync(bundlePath)).digest("hex"));
    expect(triggers[2]).toMatch(/^[0-9a-f]{64}$/);
    const plan = world.resources.find((r) => r.name === "syd-plan");
    expect(unwrap(plan?.inputs.triggers)).toEqual(triggers);
    const bundle = world.resources.find((r) => r.name === "syd-bundle");
    expect(unwrap(bundle?.inputs.triggers)).toEqual(triggers.slice(0, 2));
  });

  test("the plan hash follows the rendered content and nothing else", async () => {
    const planHash = async (args: SmartMirrorArgs) => {
      world.resources.length = 0;
      await build(args);
      return (unwrap(world.resources.find((r) => r.name === "syd-apply")?.inputs.triggers) as string[])[2];
    };
    const tls = { kind: "provided" as const, certificatePem: CERT, privateKeyPem: pulumi.secret(KEY) };
    const a = await planHash(existingArgs({ tls }));
    const again = await planHash(existingArgs({ tls }));
    const otherProjects = await planHash(existingArgs({ tls, mirror: { projects: ["OTHER"] } }));
    const otherName = await planHash(existingArgs({ tls, displayName: "Sydney mirror 2" }));
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(again).toBe(a);
    expect(new Set([a, otherProjects, otherName]).size).toBe(3);
  });
});

// Outputs are not judged by validation (plain PEM text would be parsed and checked).
const CERT = pulumi.output("-----BEGIN CERTIFICATE-----\nbGVhZg==\n-----END CERTIFICATE-----\n");
const KEY = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleQ==\n-----END PRIVATE KEY-----\n";

describe("SmartMirror on an existing host", () => {
  test("no EC2 resources; the deploy logs in as root with the pinned host key and the secret key", async () => {
    const b = await build(existingArgs());
    const types = new Set(b.recorded.map((r) => r.type));
    for (const t of types) expect(t.startsWith("aws:ec2") || t.startsWith("aws:iam") || t.startsWith("aws:ebs")).toBe(false);
    const ready = world.resources.find((r) => r.name === "syd-ready");
    const conn = ready?.inputs.connection;
    expect(containsSecret(conn)).toBe(true);
    expect(unwrap(conn)).toEqual(expect.objectContaining({ host: "mirror.internal.example.com", user: "root", port: 22, hostKey: EXISTING_HOST_KEY, dialErrorLimit: -1 }));
    // root needs no sudo; the home is not a separate mount.
    expect(ready?.inputs.create).not.toContain("sudo");
    expect(ready?.inputs.create).not.toContain("mountpoint");
    expect(world.resources.find((r) => r.name === "syd-apply")?.inputs.create).not.toContain("sudo");
    // A host name target gets a CNAME.
    expect(world.resources.find((r) => r.name === "syd-dns")?.inputs).toEqual(expect.objectContaining({ type: "CNAME", records: ["mirror.internal.example.com"] }));
    expect(await promiseOf(b.mirror.hostAddress)).toBe("mirror.internal.example.com");
  });

  test("private CA: CA and server certificate from @pulumi/tls, CA certificate as an output, no ACME", async () => {
    const b = await build(existingArgs({ tls: { kind: "privateCa", clientsTrustPrivateCa: true }, dns: undefined, region: undefined }));
    const types = b.recorded.map((r) => r.type);
    expect(types.filter((t) => t.startsWith("acme:") || t.startsWith("pulumi:providers:acme"))).toEqual([]);
    expect(types.filter((t) => t.startsWith("aws:"))).toEqual([]);
    expect(one("tls:index/selfSignedCert:SelfSignedCert").inputs).toEqual(expect.objectContaining({ isCaCertificate: true, allowedUses: ["cert_signing", "crl_signing", "digital_signature"] }));
    expect(one("tls:index/certRequest:CertRequest").inputs.dnsNames).toEqual(["mirror-syd.example.com"]);
    expect(one("tls:index/locallySignedCert:LocallySignedCert").inputs).toEqual(expect.objectContaining({ allowedUses: ["digital_signature", "key_encipherment", "server_auth"], earlyRenewalHours: 720 }));
    expect(await promiseOf(b.mirror.caCertificatePem)).toContain("BEGIN CERTIFICATE");
  });

  test("access-key registration follows the mirror's projects and revokes before re-granting", async () => {
    const b = await build(existingArgs({ registerAccessKey: { token: pulumi.secret("admin-token-for-keys") } }));
    const access = one("command:local:Command");
    const env = unwrap(access.inputs.environment) as Record<string, string>;
    expect(env).toEqual(expect.objectContaining({ BITBUCKET_URL: "https://bitbucket.example.com", ACCESS_KEY_PROJECTS: "PROJ,OPS", ACCESS_KEY_REPOS: "" }));
    expect(env.MIRROR_PUBLIC_KEY).toMatch(/^ssh-ed25519 /);
    expect(env.SMART_MIRROR_ACCESS_KEY_SCRIPT).toContain("/rest/keys/1.0/projects/");
    expect(access.inputs.delete).toBe('node --input-type=module -e "$SMART_MIRROR_ACCESS_KEY_SCRIPT" revoke');
    expect(optsOf(b, "syd-access-key").opts.deleteBeforeReplace).toBe(true);
    // The apply waits for the approval, so the first sync can fetch.
    expect(optsOf(b, "syd-apply").opts.dependsOn).toEqual(expect.arrayContaining([optsOf(b, "syd-access-key").resource]));
  });
});

describe("providers and validation", () => {
  test("an explicit aws provider (company stacks) reaches every AWS child and invoke", async () => {
    const provider = new aws.Provider("company", { region: "eu-west-1" });
    await build(awsArgs(), { providers: [provider] });
    const urn = await promiseOf(provider.urn);
    const awsResources = world.resources.filter((r) => r.type.startsWith("aws:"));
    expect(awsResources.length).toBeGreaterThan(8);
    for (const r of awsResources) expect(r.provider?.startsWith(`${urn}::`)).toBe(true);
    const awsInvokes = world.invokes.filter((i) => i.token.startsWith("aws:"));
    expect(awsInvokes.map((i) => i.token).sort()).toEqual(["aws:ec2/getAmi:getAmi", "aws:ec2/getSubnet:getSubnet", "aws:index/getPartition:getPartition"]);
    for (const i of awsInvokes) expect(i.provider?.startsWith(`${urn}::`)).toBe(true);
  });

  test("invalid arguments: nothing is created and every problem is reported", () => {
    const args = awsArgs({ domainName: "https://mirror.example.com", tls: { kind: "privateCa", clientsTrustPrivateCa: false } });
    const { transformation, recorded } = optionsRecorder();
    expect(() => new SmartMirror("bad", args, { transformations: [transformation] })).toThrow(SmartMirrorArgsError);
    try {
      new SmartMirror("bad", args);
    } catch (e) {
      expect((e as SmartMirrorArgsError).problems).toHaveLength(2);
    }
    expect(recorded).toEqual([]);
  });

  test("a missing bundle fails with the fix", () => {
    expect(() => new SmartMirror("nobundle", existingArgs({ deploy: { bundlePath: "/nonexistent/smart-mirror.js" } }))).toThrow(/run `npm run build` first/);
  });
});

describe("any language: the schema's shape and the provider's Construct", () => {
  /** What the engine saw of this mirror (earlier tests may still be registering theirs), in a stable order (assets' text is a promise: the plan's content enters through its hash in the copy's triggers). */
  const graph = () => JSON.stringify(world.resources.filter((r) => r.name === "syd" || r.name.startsWith("syd-")).sort((x, y) => x.name.localeCompare(y.name)).map((r) => ({ type: r.type, name: r.name, inputs: r.inputs })));

  test.each([
    ["AWS host, ACME", () => awsArgs()],
    ["existing host, private CA, all projects", () => existingArgs({ tls: { kind: "privateCa", clientsTrustPrivateCa: true }, mirror: { projects: "ALL" } })],
  ])("%s: the any-language shape builds the same resources with the same inputs as kind:", async (_name, make) => {
    await build(make());
    const kindShape = graph();
    world.resources.length = 0;
    world.invokes.length = 0;
    await build(inputsShape(make()) as SmartMirrorArgs);
    expect(graph()).toEqual(kindShape);
  });

  test("Construct with the inputs as another language sends them (secrets as plain strings, displayName an Output): the mirror, its outputs, secrets still secret", async () => {
    const provider = new SmartMirrorProvider(path.join(__dirname, "..", "provider"));
    const inputs = inputsShape(existingArgs({ registerAccessKey: { token: "admin-token-for-keys" } }));
    inputs.primary.catalogToken = "BBDC-catalog-token";
    inputs.mirror = { ...inputs.mirror, webhookSecret: "whsec-0123456789abcdef" };
    const { transformation, recorded } = optionsRecorder();
    const res = await provider.construct("syd", SMART_MIRROR_TYPE, { ...inputs, displayName: pulumi.output("Sydney mirror") }, { transformations: [transformation] });
    await settled(recorded);
    const state = res.state as Record<string, pulumi.Output<unknown>>;
    expect(Object.keys(state).sort()).toEqual([...SMART_MIRROR_OUTPUTS].sort());
    expect(await promiseOf(state.mirrorUrl)).toBe("https://mirror-syd.example.com");
    expect(await promiseOf(state.hostAddress)).toBe("mirror.internal.example.com");
    expect(await promiseOf(state.syncPublicKey)).toMatch(/^ssh-ed25519 /);
    await promiseOf(state.deploySummary);
    expect(await promiseOf(pulumi.output(res.urn))).toMatch(/::smart-mirror:index:SmartMirror::syd$/);
    expect(world.resources.find((r) => r.name === "syd-access-key")).toBeDefined();
    expectNoSecretInPlainSight();
    for (const key of SMART_MIRROR_OUTPUTS) expect([key, await pulumi.isSecret(state[key])]).toEqual([key, false]);
  });

  test("Construct refuses another type token and invalid arguments, naming the fix", async () => {
    const provider = new SmartMirrorProvider(path.join(__dirname, "..", "provider"));
    await expect(provider.construct("syd", "smart-mirror:index:Other", {}, {})).rejects.toThrow(/unknown resource type smart-mirror:index:Other: the smart-mirror package has smart-mirror:index:SmartMirror/);
    const inputs = { ...inputsShape(awsArgs()), host: { aws: { subnetId: "subnet-0abc", ssh: {} } } };
    await expect(provider.construct("syd", SMART_MIRROR_TYPE, inputs, {})).rejects.toThrow(/host\.aws\.ssh: gives the deploy no way to reach port 22/);
    expect(world.resources).toEqual([]);
  });
});
