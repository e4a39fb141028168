/**
 * The farm's Network Load Balancer: TCP 443 passed through to each node's nginx (which holds the
 * certificate), cross-zone, the client's IP preserved (nginx logs and the daemon's per-client
 * limits see real clients), and a target health check on the daemon's readiness: HTTPS GET
 * /status/ready must answer 200, so a node that is starting, syncing, in error or draining gets
 * no new clients. The deregistration delay is the drain bound: on scale-in the Auto Scaling
 * group waits that long for in-flight clones before it terminates the node.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { FARM_DEFAULTS } from "./validateFarm";
import type { FarmArgs } from "../args";

/** The readiness path the target group checks (the daemon's GET /status/ready, public through nginx). */
export const READY_PATH = "/status/ready";

/** The target group's health check (pure). */
export function targetHealthCheck(farm: Pick<FarmArgs, "healthCheck">): aws.types.input.lb.TargetGroupHealthCheck {
  const hc = farm.healthCheck ?? {};
  return {
    enabled: true,
    protocol: "HTTPS",
    port: "traffic-port",
    path: READY_PATH,
    matcher: "200",
    interval: hc.intervalSeconds ?? FARM_DEFAULTS.intervalSeconds,
    timeout: Math.min(10, (hc.intervalSeconds ?? FARM_DEFAULTS.intervalSeconds) - 1),
    healthyThreshold: hc.healthyThreshold ?? FARM_DEFAULTS.healthyThreshold,
    unhealthyThreshold: hc.unhealthyThreshold ?? FARM_DEFAULTS.unhealthyThreshold,
  };
}

export interface LoadBalancerInput {
  name: string;
  farm: FarmArgs;
  vpcId: pulumi.Input<string>;
  securityGroupId: pulumi.Input<string>;
  tags: Record<string, string>;
  parent: pulumi.Resource;
}

export interface FarmLoadBalancer {
  loadBalancer: aws.lb.LoadBalancer;
  targetGroup: aws.lb.TargetGroup;
  listener: aws.lb.Listener;
}

export function createLoadBalancer(i: LoadBalancerInput): FarmLoadBalancer {
  const { name, parent, farm, tags } = i;
  const loadBalancer = new aws.lb.LoadBalancer(
    `${name}-nlb`,
    {
      loadBalancerType: "network",
      internal: farm.internal ?? false,
      subnets: farm.subnetIds,
      securityGroups: [i.securityGroupId],
      enableCrossZoneLoadBalancing: true,
      tags: { ...tags, Name: `${name}-nlb` },
    },
    { parent },
  );
  const targetGroup = new aws.lb.TargetGroup(
    `${name}-nodes`,
    {
      targetType: "instance",
      protocol: "TCP",
      port: 443,
      vpcId: i.vpcId,
      preserveClientIp: "true",
      deregistrationDelay: farm.drainSeconds ?? FARM_DEFAULTS.drainSeconds,
      // In-flight clones outlive the deregistration (the daemon drains them); none is cut at its end.
      connectionTermination: false,
      healthCheck: targetHealthCheck(farm),
      tags,
    },
    { parent },
  );
  const listener = new aws.lb.Listener(
    `${name}-https`,
    { loadBalancerArn: loadBalancer.arn, protocol: "TCP", port: 443, defaultActions: [{ type: "forward", targetGroupArn: targetGroup.arn }], tags },
    { parent },
  );
  return { loadBalancer, targetGroup, listener };
}
