/**
 * The farm's nodes: their security groups, the launch template (the single host's image
 * choice, instance type, encrypted root disk and IMDSv2-only metadata, plus a per-node
 * encrypted data volume and the farm node's cloud-init) and the Auto Scaling group that keeps N
 * of them across the farm's subnets, registered in the load balancer's target group and
 * replaced when the load balancer finds them unhealthy after the boot grace.
 *
 * The launch template carries the current plan's and bundle's locations and digests (in the
 * boot command), so every plan is a new template version and the group launches new nodes with
 * the current plan; running nodes get it from the SSM association.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { AwsHostArgs, FarmArgs } from "../args";
import { DATA_DEVICE_NAME, DEFAULT_DATA_VOLUME_GIB, DEFAULT_ROOT_VOLUME_GIB } from "../host/awsHost";
import { amiQuery, DEFAULT_OS, pinnedImageProblem } from "../host/ami";
import { DEFAULT_INSTANCE_TYPE, instanceArchitecture } from "../host/instanceTypes";
import { renderFarmCloudInit } from "../render/farmNode";
import { FARM_TAG } from "./plan";
import type { ReleasePointers } from "./storage";
import { FARM_DEFAULTS } from "./validateFarm";

/** Ingress of the load balancer's security group (pure): HTTPS from the allowed client ranges. */
export function loadBalancerIngress(host: AwsHostArgs): aws.types.input.ec2.SecurityGroupIngress[] {
  return [{ description: "HTTPS: git clients", protocol: "tcp", fromPort: 443, toPort: 443, cidrBlocks: host.allowedCidrs ?? ["0.0.0.0/0"], ipv6CidrBlocks: host.allowedIpv6Cidrs ?? [] }];
}

export interface NodesInput extends ReleasePointers {
  name: string;
  domainName: string;
  host: AwsHostArgs;
  farm: FarmArgs;
  home: string;
  farmId: string;
  nodeScript: string;
  instanceProfileArn: pulumi.Input<string>;
  targetGroupArn: pulumi.Input<string>;
  tags: Record<string, string>;
  parent: pulumi.Resource;
}

export interface FarmSecurityGroups {
  vpcId: pulumi.Output<string>;
  loadBalancer: aws.ec2.SecurityGroup;
  nodes: aws.ec2.SecurityGroup;
}

/** The load balancer's group (clients in) and the nodes' (HTTPS from the load balancer and from each other: peers). */
export function createSecurityGroups(name: string, domainName: string, host: AwsHostArgs, farm: FarmArgs, tags: Record<string, string>, parent: pulumi.Resource): FarmSecurityGroups {
  const vpcId = aws.ec2.getSubnetOutput({ id: farm.subnetIds[0] }, { parent }).vpcId;
  const everywhere = [{ description: "all outbound", protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"], ipv6CidrBlocks: ["::/0"] }];
  const loadBalancer = new aws.ec2.SecurityGroup(
    `${name}-nlb-sg`,
    { description: `smart-mirror farm ${domainName}: clients to the load balancer`, vpcId, ingress: loadBalancerIngress(host), egress: everywhere, tags: { ...tags, Name: `${name}-nlb-sg` } },
    { parent },
  );
  const nodes = new aws.ec2.SecurityGroup(
    `${name}-node-sg`,
    {
      description: `smart-mirror farm ${domainName}: HTTPS from the load balancer and from peers; no SSH`,
      vpcId,
      ingress: [
        // Clients (their own addresses: preserved) and the health checks arrive through the load balancer's group.
        { description: "HTTPS through the load balancer", protocol: "tcp", fromPort: 443, toPort: 443, securityGroups: [loadBalancer.id] },
        { description: "HTTPS between peers (seeding, announcements)", protocol: "tcp", fromPort: 443, toPort: 443, self: true },
      ],
      egress: everywhere,
      tags: { ...tags, Name: `${name}-node-sg` },
    },
    { parent },
  );
  return { vpcId, loadBalancer, nodes };
}

export function createNodes(i: NodesInput, groups: FarmSecurityGroups): { launchTemplate: aws.ec2.LaunchTemplate; group: aws.autoscaling.Group } {
  const { name, host, farm, parent, tags } = i;
  const instanceType = host.instanceType ?? DEFAULT_INSTANCE_TYPE;
  const os = host.os ?? DEFAULT_OS;
  const arch = instanceArchitecture(instanceType);
  const image = host.amiId
    ? aws.ec2.getAmiOutput({ filters: [{ name: "image-id", values: [host.amiId] }], mostRecent: true }, { parent }).apply((img) => {
        const problem = pinnedImageProblem(host.amiId as string, img.architecture, instanceType, arch);
        if (problem) throw new Error(problem);
        return img;
      })
    : aws.ec2.getAmiOutput(amiQuery(os, arch), { parent });
  const dv = host.dataVolume ?? {};
  const nodeTags = { ...tags, [FARM_TAG]: i.farmId };

  const userData = pulumi
    .all([i.bundleUrl, i.bundleSha256, i.planUrl, i.planSha256])
    .apply(([bundleUrl, bundleSha256, planUrl, planSha256]) =>
      Buffer.from(renderFarmCloudInit({ os, home: i.home, deviceName: DATA_DEVICE_NAME, nodeScript: i.nodeScript, bundleUrl, bundleSha256, planUrl, planSha256 })).toString("base64"),
    );

  const launchTemplate = new aws.ec2.LaunchTemplate(
    `${name}-node`,
    {
      description: `smart-mirror farm ${i.domainName} node`,
      imageId: image.id,
      instanceType,
      iamInstanceProfile: { arn: i.instanceProfileArn },
      vpcSecurityGroupIds: [groups.nodes.id, ...(host.extraSecurityGroupIds ?? [])],
      userData,
      // IMDSv2 only, one hop: no container or proxied request reaches the metadata service.
      metadataOptions: { httpEndpoint: "enabled", httpTokens: "required", httpPutResponseHopLimit: 1 },
      blockDeviceMappings: [
        { deviceName: image.rootDeviceName, ebs: { volumeSize: host.rootVolumeGiB ?? DEFAULT_ROOT_VOLUME_GIB, volumeType: "gp3", encrypted: "true", deleteOnTermination: "true" } },
        // Each node's own copy of the repositories; a replaced node seeds a new one from its peers.
        {
          deviceName: DATA_DEVICE_NAME,
          ebs: { volumeSize: dv.sizeGiB ?? DEFAULT_DATA_VOLUME_GIB, volumeType: dv.type ?? "gp3", iops: dv.iops, throughput: dv.throughput, encrypted: "true", kmsKeyId: dv.kmsKeyId, deleteOnTermination: "true" },
        },
      ],
      tagSpecifications: [
        { resourceType: "instance", tags: { ...nodeTags, Name: `${name}-node` } },
        { resourceType: "volume", tags: { ...nodeTags, Name: `${name}-node` } },
      ],
      updateDefaultVersion: true,
      tags,
    },
    { parent },
  );

  const nodes = farm.nodes ?? FARM_DEFAULTS.nodes;
  const group = new aws.autoscaling.Group(
    `${name}-nodes`,
    {
      vpcZoneIdentifiers: farm.subnetIds,
      minSize: nodes,
      maxSize: nodes,
      desiredCapacity: nodes,
      launchTemplate: { id: launchTemplate.id, version: pulumi.interpolate`${launchTemplate.latestVersion}` },
      targetGroupArns: [i.targetGroupArn],
      // The load balancer's readiness check decides a node's health, after the boot grace (first sync).
      healthCheckType: "ELB",
      healthCheckGracePeriod: farm.bootGraceSeconds ?? FARM_DEFAULTS.bootGraceSeconds,
      tags: Object.entries({ ...nodeTags, Name: `${name}-node` }).map(([key, value]) => ({ key, value, propagateAtLaunch: true })),
    },
    { parent },
  );
  return { launchTemplate, group };
}
