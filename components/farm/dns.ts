/**
 * A farm's Route53 records: alias records to the load balancer (the farm's own name, and on
 * the shared global name one latency-routed record per region as for a single host). The alias
 * evaluates the load balancer's target health, so a region whose nodes are all not-ready drops
 * out of the global answers without a separate health check.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { DnsArgs } from "../args";

export interface AliasInput {
  name: string;
  dns: DnsArgs;
  domainName: string;
  region?: string;
  loadBalancer: aws.lb.LoadBalancer;
  parent: pulumi.Resource;
}

export function createAliasRecords(i: AliasInput): { record: aws.route53.Record; globalRecord?: aws.route53.Record } {
  const { name, dns, parent } = i;
  const alias = [{ name: i.loadBalancer.dnsName, zoneId: i.loadBalancer.zoneId, evaluateTargetHealth: true }];
  const record = new aws.route53.Record(`${name}-dns`, { zoneId: dns.zoneId, name: i.domainName, type: "A", aliases: alias }, { parent });
  if (dns.globalName === undefined) return { record };
  const globalRecord = new aws.route53.Record(
    `${name}-dns-global`,
    { zoneId: dns.zoneId, name: dns.globalName, type: "A", aliases: alias, setIdentifier: i.region as string, latencyRoutingPolicies: [{ region: i.region as string }] },
    { parent },
  );
  return { record, globalRecord };
}
