/**
 * What the cloud providers would compute, for tests only: IDs, ARNs, IPs, key material, and the
 * answers of the look-ups the components make (getSubnet, getAmi, getPartition, ...). Shared by
 * the in-process Pulumi mocks (pulumiMocks.ts) and the recording engine that runs whole programs
 * under Pulumi's own runner (test/pulumi/recordingEngine.ts), so both see the same world.
 * Everything is deterministic: the same inputs give the same outputs on every run.
 */
import { createHash } from "node:crypto";

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

/** The outputs a provider computes on create (beyond echoing the inputs). */
export function fakeOutputs(type: string, name: string, inputs: Record<string, unknown>): Record<string, unknown> {
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
    // A mirror farm (components/farm).
    case "random:index/randomPassword:RandomPassword":
      return { result: `mock-${name}-${"x".repeat(Number(inputs.length ?? 16))}`.slice(0, Number(inputs.length ?? 16)), bcryptHash: "$2a$10$mock" };
    case "aws:kms/key:Key":
      return { arn: `arn:aws:kms:eu-west-1:123456789012:key/${name}-0000`, keyId: `${name}-0000` };
    case "aws:s3/bucket:Bucket": {
      const bucket = `${String(inputs.bucketPrefix ?? `${name}-`)}20260101000000000000000001`;
      return { bucket, arn: `arn:aws:s3:::${bucket}` };
    }
    case "aws:s3/bucketObjectv2:BucketObjectv2":
      return { versionId: "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY", etag: "mock-etag" };
    case "aws:lb/loadBalancer:LoadBalancer":
      return { arn: `arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/${name}/50dc6c495c0c9188`, dnsName: `${name}-50dc6c495c0c9188.elb.eu-west-1.amazonaws.com`, zoneId: "Z2IFOLAFXWLO4F" };
    case "aws:lb/targetGroup:TargetGroup":
      return { arn: `arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/${name}/73e2d6bc24d8a067` };
    case "aws:ec2/launchTemplate:LaunchTemplate":
      return { latestVersion: 1, arn: `arn:aws:ec2:eu-west-1:123456789012:launch-template/lt-${name}` };
    case "aws:autoscaling/group:Group":
      return { name: `${name}-asg`, arn: `arn:aws:autoscaling:eu-west-1:123456789012:autoScalingGroup:${name}` };
    case "aws:ssm/document:Document":
      return { name: `${name}-document` };
    case "aws:ssm/association:Association":
      return { associationId: "f4a6c5e2-0000-4000-8000-000000000001" };
    default:
      return {};
  }
}

/**
 * Outputs the real providers mark secret in their schemas (tls/acme private keys), so the
 * recording engine returns them as secrets the way the engine would.
 */
export function fakeSecretOutputs(type: string): string[] {
  switch (type) {
    case "tls:index/privateKey:PrivateKey":
      return ["privateKeyOpenssh", "privateKeyPem", "privateKeyPemPkcs8"];
    case "acme:index/certificate:Certificate":
      return ["privateKeyPem", "certificateP12"];
    case "acme:index/registration:Registration":
      return ["accountKeyPem"];
    case "random:index/randomPassword:RandomPassword":
      return ["result", "bcryptHash"];
    default:
      return [];
  }
}

/** The physical ID a provider assigns. */
export function fakeId(type: string, name: string): string {
  if (type === "aws:ebs/volume:Volume") return "vol-0123456789abcdef0";
  if (type === "aws:ec2/instance:Instance") return "i-0123456789abcdef0";
  if (type === "aws:ec2/securityGroup:SecurityGroup") return "sg-0123456789abcdef0";
  return `${name}-id`;
}

/** Images the getAmi fake knows by id (official name patterns, see host/ami.ts). */
export const PINNED_IMAGES: Record<string, { name: string; architecture: string }> = {
  "ami-0d000000000000a64": { name: "debian-12-arm64-20250101-2000", architecture: "arm64" },
  "ami-0d000000000000086": { name: "debian-12-amd64-20250101-2000", architecture: "x86_64" },
};

/**
 * The answer of a data-source look-up, or undefined when no fake knows the token (the
 * caller decides whether that is an error).
 */
export function fakeInvoke(token: string, inputs: Record<string, unknown>): Record<string, unknown> | undefined {
  switch (token) {
    case "aws:ec2/getSubnet:getSubnet":
      return { id: inputs.id, vpcId: "vpc-0123456789abcdef0", availabilityZone: "eu-west-1a", cidrBlock: "10.0.1.0/24" };
    case "aws:ec2/getSubnets:getSubnets":
      return { id: "subnets", ids: ["subnet-0123456789abcdef0", "subnet-0aaaabbbbccccdddd0"], filters: inputs.filters };
    case "aws:ec2/getVpc:getVpc":
      return { id: "vpc-0123456789abcdef0", cidrBlock: "10.0.0.0/16", tags: inputs.tags ?? {} };
    case "aws:route53/getZone:getZone":
      return { id: "Z0PLATFORM0000000000", zoneId: "Z0PLATFORM0000000000", name: inputs.name, privateZone: inputs.privateZone ?? false };
    case "aws:ec2/getAmi:getAmi": {
      // A pinned image looked up by id: answer from PINNED_IMAGES (unknown ids: an Ubuntu x86 image).
      const byId = (inputs.filters as Array<{ name: string; values: string[] }> | undefined)?.find((f) => f.name === "image-id")?.values[0];
      if (byId) return { id: byId, rootDeviceName: "/dev/xvda", ...(PINNED_IMAGES[byId] ?? { name: "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250101", architecture: "x86_64", rootDeviceName: "/dev/sda1" }) };
      return { id: "ami-0123456789abcdef0", name: "ubuntu-noble-mock", architecture: "x86_64", rootDeviceName: "/dev/sda1" };
    }
    case "aws:index/getPartition:getPartition":
      return { id: "aws", partition: "aws", dnsSuffix: "amazonaws.com", reverseDnsPrefix: "com.amazonaws" };
    default:
      return undefined;
  }
}
