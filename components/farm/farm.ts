/**
 * A mirror farm on AWS, wired from its parts (each module here has one job): the deploy bucket
 * and key (storage.ts), the node role (nodeRole.ts), security groups, launch template and Auto
 * Scaling group (nodes.ts), the Network Load Balancer (loadBalancer.ts), the SSM rollout
 * (rollout.ts) and the alias records (dns.ts). The plan it ships is the single host's plan plus
 * the farm's files (plan.ts), built by the component.
 *
 * Deploy by pull: `pulumi up` writes the plan and the bundle as new S3 objects and changes the
 * association's parameters; SSM then updates the nodes one at a time, each draining itself
 * (readiness 503 -> the load balancer stops sending -> in-flight clones finish) before its daemon
 * restarts. New nodes apply the current plan at boot.
 */
import * as pulumi from "@pulumi/pulumi";
import type { AwsHostArgs, DnsArgs, FarmArgs } from "../args";
import { STAGING_DIR } from "../deploy/layout";
import { renderFarmNodeScript } from "../render/farmNode";
import { createAliasRecords } from "./dns";
import { createLoadBalancer } from "./loadBalancer";
import { createNodeRole } from "./nodeRole";
import { createNodes, createSecurityGroups } from "./nodes";
import { createRollout } from "./rollout";
import { createFarmStorage, ReleasePointers } from "./storage";
import { FARM_DEFAULTS } from "./validateFarm";

/** The value of the farm's instance tag: unique per project, stack and component name. */
export function farmIdOf(name: string): string {
  return `${pulumi.getProject()}.${pulumi.getStack()}.${name}`;
}

export interface FarmInput {
  name: string;
  domainName: string;
  region?: string;
  host: AwsHostArgs;
  farm: FarmArgs;
  dns?: DnsArgs;
  home: string;
  farmId: string;
  /** The serialized plan, farm files included (secret). */
  planJson: pulumi.Output<string>;
  bundlePath: string;
  revision?: string;
  /** What the rollout waits for (e.g. the access-key registration). */
  dependsOn: pulumi.Resource[];
  parent: pulumi.Resource;
}

export interface FarmResult {
  /** The load balancer's DNS name: where clients connect. */
  address: pulumi.Output<string>;
  nodeCount: number;
  /** What was rolled out: the objects, their digests, the association. */
  summary: pulumi.Output<string>;
}

export function createFarm(i: FarmInput): FarmResult {
  const { name, parent } = i;
  const tags = { ...(i.host.tags ?? {}), "smart-mirror": name };
  const storage = createFarmStorage({ name, domainName: i.domainName, planJson: i.planJson, bundlePath: i.bundlePath, tags, parent });
  const role = createNodeRole({ name, domainName: i.domainName, bucketArn: storage.bucket.arn, prefix: storage.prefix, keyArn: storage.key.arn, tags, parent });
  const groups = createSecurityGroups(name, i.domainName, i.host, i.farm, tags, parent);
  const lb = createLoadBalancer({ name, farm: i.farm, vpcId: groups.vpcId, securityGroupId: groups.loadBalancer.id, tags, parent });
  const nodeScript = renderFarmNodeScript({ stageDir: STAGING_DIR, region: i.region });
  const pointers: ReleasePointers = { bundleUrl: storage.bundleUrl, bundleSha256: storage.bundleSha256, planUrl: storage.planUrl, planSha256: storage.planSha256 };
  const nodes = createNodes(
    { name, domainName: i.domainName, host: i.host, farm: i.farm, home: i.home, farmId: i.farmId, nodeScript, ...pointers, instanceProfileArn: role.profile.arn, targetGroupArn: lb.targetGroup.arn, tags, parent },
    groups,
  );
  const rollout = createRollout({
    name,
    domainName: i.domainName,
    farmId: i.farmId,
    script: nodeScript,
    ...pointers,
    revision: i.revision,
    dependsOn: [storage.planObject, storage.bundleObject, nodes.group, ...i.dependsOn],
    tags,
    parent,
  });
  if (i.dns) createAliasRecords({ name, dns: i.dns, domainName: i.domainName, region: i.region, loadBalancer: lb.loadBalancer, parent });
  const nodeCount = i.farm.nodes ?? FARM_DEFAULTS.nodes;
  const summary = pulumi
    .all([storage.planUrl, storage.planSha256, storage.bundleUrl, rollout.association.associationId, nodes.group.name])
    .apply(([planUrl, planSha256, bundleUrl, associationId, group]) => JSON.stringify({ farm: { nodes: nodeCount, group, planUrl, planSha256, bundleUrl, bundleSha256: storage.bundleSha256, associationId } }));
  return { address: lb.loadBalancer.dnsName, nodeCount, summary };
}
