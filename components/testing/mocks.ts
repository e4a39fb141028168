/**
 * Pulumi mocks for the component tests (awsx style): every resource's type, name, inputs
 * (as the engine would receive them: secrets still wrapped) and options are recorded, so tests
 * assert on the graph. Providers answer with plausible outputs; invokes (getSubnet, getAmi,
 * getPartition) with fixed values. Only for tests.
 */
import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";

export interface RecordedResource {
  type: string;
  name: string;
  /** Inputs as the engine received them (secrets wrapped: see isSecretValue). */
  inputs: Record<string, unknown>;
  provider?: string;
}

export interface RecordedOptions {
  type: string;
  name: string;
  opts: pulumi.CustomResourceOptions & pulumi.ComponentResourceOptions;
  /** Inputs before serialization (Outputs, secrets as pulumi secrets). */
  props: Record<string, unknown>;
  resource: pulumi.Resource;
}

export interface RecordedInvoke {
  token: string;
  inputs: Record<string, unknown>;
  provider?: string;
}

const SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

/** A value the engine would store encrypted. */
export function isSecretValue(v: unknown): boolean {
  return typeof v === "object" && v !== null && (v as Record<string, unknown>)[SIG_KEY] === SECRET_SIG;
}

/** The inputs with secret wrappers removed (for asserting on values). */
export function unwrap(v: unknown): unknown {
  if (isSecretValue(v)) return unwrap((v as { value: unknown }).value);
  if (Array.isArray(v)) return v.map(unwrap);
  if (v && typeof v === "object" && !(v instanceof pulumi.asset.Asset)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrap(x)]));
  return v;
}

/** Does any secret wrapper occur anywhere inside v? */
export function containsSecret(v: unknown): boolean {
  if (isSecretValue(v)) return true;
  if (Array.isArray(v)) return v.some(containsSecret);
  if (v && typeof v === "object") return Object.values(v).some(containsSecret);
  return false;
}

/**
 * A well-formed "ssh-ed25519 AAAA..." line, deterministic per seed (the 32 key bytes are a
 * hash of it), so repeated runs render identical plans.
 */
export function ed25519PublicLine(seed: string, comment = ""): string {
  const raw = createHash("sha256").update(seed).digest();
  const field = (b: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    return Buffer.concat([len, b]);
  };
  const blob = Buffer.concat([field(Buffer.from("ssh-ed25519")), field(raw)]);
  return `ssh-ed25519 ${blob.toString("base64")}${comment ? ` ${comment}` : ""}`;
}

const pem = (label: string, body: string) => `-----BEGIN ${label}-----\n${Buffer.from(body).toString("base64")}\n-----END ${label}-----\n`;

function outputsFor(type: string, name: string, inputs: Record<string, unknown>): Record<string, unknown> {
  switch (type) {
    case "tls:index/privateKey:PrivateKey":
      return {
        privateKeyOpenssh: pem("OPENSSH PRIVATE KEY", `mock ${name}`),
        privateKeyPem: pem("PRIVATE KEY", `mock ${name}`),
        publicKeyOpenssh: `${ed25519PublicLine(name)}\n`,
        publicKeyPem: pem("PUBLIC KEY", `mock ${name}`),
      };
    case "tls:index/selfSignedCert:SelfSignedCert":
    case "tls:index/locallySignedCert:LocallySignedCert":
      return { certPem: pem("CERTIFICATE", `mock ${name}`) };
    case "tls:index/certRequest:CertRequest":
      return { certRequestPem: pem("CERTIFICATE REQUEST", `mock ${name}`) };
    case "acme:index/registration:Registration":
      return { registrationUrl: "https://acme.invalid/acct/1" };
    case "acme:index/certificate:Certificate":
      return { certificatePem: pem("CERTIFICATE", `leaf ${name}`), issuerPem: pem("CERTIFICATE", `issuer ${name}`), privateKeyPem: pem("EC PRIVATE KEY", `mock ${name}`) };
    case "aws:ec2/instance:Instance":
      return { publicIp: "203.0.113.10", privateIp: "10.0.1.10", arn: `arn:aws:ec2:eu-west-1:123456789012:instance/i-${name}` };
    case "aws:ec2/eip:Eip":
      return { publicIp: "198.51.100.7", allocationId: "eipalloc-1" };
    case "aws:iam/role:Role":
      return { arn: `arn:aws:iam::123456789012:role/${name}`, name: inputs.name ?? `${name}-role` };
    case "aws:iam/instanceProfile:InstanceProfile":
      return { name: inputs.name ?? `${name}-profile`, arn: `arn:aws:iam::123456789012:instance-profile/${name}` };
    case "command:remote:Command":
    case "command:local:Command":
      return { stdout: '{"ok":true}', stderr: "" };
    default:
      return {};
  }
}

function idFor(type: string, name: string): string {
  if (type === "aws:ebs/volume:Volume") return "vol-0123456789abcdef0";
  if (type === "aws:ec2/instance:Instance") return "i-0123456789abcdef0";
  if (type === "aws:ec2/securityGroup:SecurityGroup") return "sg-0123456789abcdef0";
  return `${name}-id`;
}

/** Images the getAmi mock knows by id (official name patterns, see host/ami.ts). */
export const PINNED_IMAGES: Record<string, { name: string; architecture: string }> = {
  "ami-0d000000000000a64": { name: "debian-12-arm64-20250101-2000", architecture: "arm64" },
  "ami-0d000000000000086": { name: "debian-12-amd64-20250101-2000", architecture: "x86_64" },
};

export interface MockWorld {
  resources: RecordedResource[];
  invokes: RecordedInvoke[];
}

/** Install mocks for this test file; returns what they record (reset it between tests with `world.resources.length = 0`). */
export function installMocks(): MockWorld {
  const world: MockWorld = { resources: [], invokes: [] };
  pulumi.runtime.setMocks(
    {
      newResource(args: pulumi.runtime.MockResourceArgs) {
        world.resources.push({ type: args.type, name: args.name, inputs: args.inputs, provider: args.provider });
        return { id: idFor(args.type, args.name), state: { ...args.inputs, ...outputsFor(args.type, args.name, args.inputs) } };
      },
      call(args: pulumi.runtime.MockCallArgs) {
        world.invokes.push({ token: args.token, inputs: args.inputs, provider: args.provider });
        switch (args.token) {
          case "aws:ec2/getSubnet:getSubnet":
            return { id: args.inputs.id, vpcId: "vpc-0123456789abcdef0", availabilityZone: "eu-west-1a", cidrBlock: "10.0.1.0/24" };
          case "aws:ec2/getAmi:getAmi": {
            // A pinned image looked up by id: answer from PINNED_IMAGES (unknown ids: an Ubuntu x86 image).
            const byId = (args.inputs.filters as Array<{ name: string; values: string[] }> | undefined)?.find((f) => f.name === "image-id")?.values[0];
            if (byId) return { id: byId, ...(PINNED_IMAGES[byId] ?? { name: "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250101", architecture: "x86_64" }) };
            return { id: "ami-0123456789abcdef0", name: "ubuntu-noble-mock", architecture: "x86_64" };
          }
          case "aws:index/getPartition:getPartition":
            return { id: "aws", partition: "aws", dnsSuffix: "amazonaws.com", reverseDnsPrefix: "com.amazonaws" };
          default:
            return {};
        }
      },
    },
    "smart-mirror",
    "test",
    false,
  );
  return world;
}

/** Records every resource (and its options) created under a component, via the transformations option. */
export function optionsRecorder(): { transformation: pulumi.ResourceTransformation; recorded: RecordedOptions[] } {
  const recorded: RecordedOptions[] = [];
  const transformation: pulumi.ResourceTransformation = (a) => {
    recorded.push({ type: a.type, name: a.name, opts: a.opts as RecordedOptions["opts"], props: a.props as Record<string, unknown>, resource: a.resource });
    return undefined;
  };
  return { transformation, recorded };
}

export function promiseOf<T>(o: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => o.apply((v) => resolve(v)));
}

/** Resolves once every recorded resource is registered (its URN known). */
export async function settled(recorded: RecordedOptions[]): Promise<void> {
  await Promise.all(recorded.map((r) => promiseOf(r.resource.urn)));
}
