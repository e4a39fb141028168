/**
 * The EC2 mirror host: security group, IAM role with SSM (break-glass access through Session
 * Manager), an encrypted data volume that outlives the instance, the instance itself and an
 * optional Elastic IP. Children of the SmartMirror component, named `${name}-...`.
 *
 * What keeps the data safe:
 * - The repositories live on their own EBS volume (never the root disk), `protect`ed and
 *   `retainOnDelete` by default, attached by a VolumeAttachment: replacing the instance
 *   detaches it (stopping the instance first, for a clean unmount) and re-attaches it to the
 *   new one, whose cloud-init finds the filesystem and mounts it without formatting.
 * - The image is looked up once and then ignored (`ignoreChanges: ["ami"]`) unless pinned, so
 *   a newer AMI never replaces the host; user data is ignored after creation too (cloud-init
 *   runs once; later configuration arrives through the deploy plan).
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import type { AwsHostArgs, BastionArgs } from "../args";
import { renderCloudInit } from "../render/cloudInit";
import { amiQuery, DEFAULT_OS, defaultLoginUser, instanceName, loginUserOfImage, pinnedImageProblem } from "./ami";
import { DEFAULT_HOME } from "../deploy/layout";
import { DEFAULT_INSTANCE_TYPE, instanceArchitecture } from "./instanceTypes";
import type { HostResult } from "./hostResult";
import { proxyConnection } from "./hostResult";
import { ssmInstanceRole } from "./instanceRole";

export const DATA_DEVICE_NAME = "/dev/sdf";
export const DEFAULT_DATA_VOLUME_GIB = 200;
export const DEFAULT_ROOT_VOLUME_GIB = 20;

export interface AwsHostInput {
  name: string;
  args: AwsHostArgs;
  domainName: string;
  /** The mirror home: the data volume's mount point. */
  home: string;
  parent: pulumi.Resource;
}

/** The security group's ingress rules (pure, so the rules are easy to read and test). */
export function ingressRules(args: AwsHostArgs): aws.types.input.ec2.SecurityGroupIngress[] {
  const v4 = args.allowedCidrs ?? ["0.0.0.0/0"];
  const v6 = args.allowedIpv6Cidrs ?? [];
  const rules: aws.types.input.ec2.SecurityGroupIngress[] = [
    { description: "HTTPS: git clients", protocol: "tcp", fromPort: 443, toPort: 443, cidrBlocks: v4, ipv6CidrBlocks: v6 },
    { description: "HTTP: redirect to HTTPS", protocol: "tcp", fromPort: 80, toPort: 80, cidrBlocks: v4, ipv6CidrBlocks: v6 },
  ];
  const admin = args.ssh?.adminCidrs ?? [];
  const adminV4 = admin.filter((c) => !c.includes(":"));
  const adminV6 = admin.filter((c) => c.includes(":"));
  const groups = args.ssh?.fromSecurityGroupIds ?? [];
  // Port 22 only for the deploy, and only from where it runs; no rule at all otherwise.
  if (adminV4.length + adminV6.length > 0) {
    rules.push({ description: "SSH: deploy (pulumi up)", protocol: "tcp", fromPort: 22, toPort: 22, cidrBlocks: adminV4, ipv6CidrBlocks: adminV6 });
  }
  if (groups.length > 0) {
    rules.push({ description: "SSH: deploy through the bastion", protocol: "tcp", fromPort: 22, toPort: 22, securityGroups: groups });
  }
  return rules;
}

export function createAwsHost(i: AwsHostInput): HostResult {
  const { name, args, parent } = i;
  const instanceType = args.instanceType ?? DEFAULT_INSTANCE_TYPE;
  const os = args.os ?? DEFAULT_OS;
  const keep = args.dataVolume?.keep ?? true;
  const tags = { ...(args.tags ?? {}), "smart-mirror": name };

  // Both are required on a single host (validateSmartMirrorArgs); optional only for a farm.
  const subnetId = args.subnetId as pulumi.Input<string>;
  const bastion = args.ssh?.bastion;
  const subnet = aws.ec2.getSubnetOutput({ id: subnetId }, { parent });
  const arch = instanceArchitecture(instanceType);
  const ami = args.amiId ?? aws.ec2.getAmiOutput(amiQuery(os, arch), { parent }).id;
  // A pinned image decides the login user and must fit the instance type's architecture:
  // refuse before AWS does (it would stop the instance first, then refuse the change).
  const loginUser: pulumi.Input<string> = args.amiId
    ? aws.ec2.getAmiOutput({ filters: [{ name: "image-id", values: [args.amiId] }], mostRecent: true }, { parent }).apply((img) => {
        const problem = pinnedImageProblem(args.amiId as string, img.architecture, instanceType, arch);
        if (problem) throw new Error(problem);
        return loginUserOfImage(img.name) ?? defaultLoginUser(os);
      })
    : defaultLoginUser(os);

  const sg = new aws.ec2.SecurityGroup(
    `${name}-sg`,
    {
      description: `smart-mirror ${i.domainName}: HTTPS for clients, SSH only for the deploy`,
      vpcId: subnet.vpcId,
      ingress: ingressRules(args),
      // Out: the primary (SSH on whatever port it uses, HTTPS), package mirrors, NTP/DNS.
      egress: [{ description: "all outbound", protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"], ipv6CidrBlocks: ["::/0"] }],
      tags: { ...tags, Name: `${name}-sg` },
    },
    { parent },
  );

  const { profile } = ssmInstanceRole({ role: `${name}-role`, ssmAttachment: `${name}-ssm`, profile: `${name}-profile` }, `smart-mirror ${i.domainName} host (SSM only)`, tags, parent);

  // Keys Pulumi makes so the deploy can log in (deploy key) and verify the host (host key).
  const hostKey = new tls.PrivateKey(`${name}-host-key`, { algorithm: "ED25519" }, { parent, additionalSecretOutputs: ["privateKeyOpenssh", "privateKeyPem"] });
  const deployKey = new tls.PrivateKey(`${name}-deploy-key`, { algorithm: "ED25519" }, { parent, additionalSecretOutputs: ["privateKeyOpenssh", "privateKeyPem"] });

  const dv = args.dataVolume ?? {};
  const volume = new aws.ebs.Volume(
    `${name}-data`,
    {
      availabilityZone: subnet.availabilityZone,
      // Growing it is an in-place modification; the deploy's grow step then grows the filesystem.
      size: dv.sizeGiB ?? DEFAULT_DATA_VOLUME_GIB,
      type: dv.type ?? "gp3",
      iops: dv.iops,
      throughput: dv.throughput,
      encrypted: true,
      kmsKeyId: dv.kmsKeyId,
      tags: { ...tags, Name: `${name}-data` },
    },
    { parent, protect: keep, retainOnDelete: keep },
  );

  const userData = pulumi.secret(
    pulumi.all([volume.id, deployKey.publicKeyOpenssh, hostKey.privateKeyOpenssh, hostKey.publicKeyOpenssh]).apply(([volumeId, deployPub, hostPriv, hostPub]) =>
      renderCloudInit({
        fqdn: i.domainName,
        deployPublicKey: deployPub,
        hostKey: { privateOpenssh: hostPriv, publicOpenssh: hostPub },
        dataVolume: { volumeId, deviceName: DATA_DEVICE_NAME, mountPoint: i.home },
      }),
    ),
  );

  const instance = new aws.ec2.Instance(
    instanceName(name, { os, arch, home: i.home, defaultHome: DEFAULT_HOME }),
    {
      ami,
      instanceType,
      subnetId,
      vpcSecurityGroupIds: [sg.id, ...(args.extraSecurityGroupIds ?? [])],
      iamInstanceProfile: profile.name,
      userData,
      // IMDSv2 only, one hop: no container or proxied request reaches the metadata service.
      metadataOptions: { httpEndpoint: "enabled", httpTokens: "required", httpPutResponseHopLimit: 1 },
      rootBlockDevice: { volumeSize: args.rootVolumeGiB ?? DEFAULT_ROOT_VOLUME_GIB, volumeType: "gp3", encrypted: true, deleteOnTermination: true },
      tags: { ...tags, Name: name },
    },
    { parent, ignoreChanges: args.amiId !== undefined ? ["userData"] : ["ami", "userData"] },
  );

  new aws.ec2.VolumeAttachment(
    `${name}-data-attachment`,
    { deviceName: DATA_DEVICE_NAME, volumeId: volume.id, instanceId: instance.id, stopInstanceBeforeDetaching: true },
    // An EBS volume attaches to one instance at a time: the old attachment must go first.
    { parent, deleteBeforeReplace: true },
  );

  const eip = args.elasticIp ?? true ? new aws.ec2.Eip(`${name}-eip`, { domain: "vpc", instance: instance.id, tags: { ...tags, Name: `${name}-eip` } }, { parent }) : undefined;

  const publicAddress = eip ? eip.publicIp : pulumi.all([instance.publicIp, instance.privateIp]).apply(([pub, priv]) => pub || priv);
  const sshHost = bastion ? instance.privateIp : publicAddress;
  return {
    publicAddress,
    connection: {
      host: sshHost,
      port: 22,
      user: loginUser,
      privateKey: pulumi.secret(deployKey.privateKeyOpenssh),
      hostKey: hostKey.publicKeyOpenssh.apply((k) => k.trim()),
      proxy: bastion ? proxyConnection(bastion as BastionArgs) : undefined,
    },
    // Both images' users are not root: the deploy uses sudo either way.
    sshUser: defaultLoginUser(os),
    identity: instance.id,
    homeIsMount: true,
    instance,
    dataVolume: volume,
    dataVolumeGiB: dv.sizeGiB ?? DEFAULT_DATA_VOLUME_GIB,
  };
}
