/**
 * Route53 records for a mirror: its own name, and optionally one latency-routed record per
 * region on a shared global name, so each client resolves the region nearest to it. The
 * latency record carries a health check on the mirror's readiness: GET /status must contain
 * `"ready":true` (SYNCHRONIZED or DEGRADED; not while starting, in the initial sync or in ERROR,
 * see isReady), not /healthz (200 whenever the process answers, even with no repository): a
 * region that cannot serve current copies drops out of the answers instead of swallowing its
 * share of clients. Route53's checkers must reach port 443
 * (see healthCheckers.ts: a warning names the ranges when allowedCidrs keeps them out).
 */
import * as net from "node:net";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { READY_MARKER } from "../../sync/serve/statusDocument";
import type { DnsArgs } from "../args";

export interface DnsInput {
  name: string;
  dns: DnsArgs;
  domainName: string;
  region?: string;
  /** Where clients connect: an IP address (A/AAAA) or a host name (CNAME). */
  target: pulumi.Input<string>;
  parent: pulumi.Resource;
}

export interface DnsRecords {
  record: aws.route53.Record;
  globalRecord?: aws.route53.Record;
  healthCheck?: aws.route53.HealthCheck;
}

/** The record type for a target: addresses get A/AAAA, names a CNAME. */
/** The path Route53's checkers request: the daemon's readiness (nginx passes /status through unrestricted). */
export const HEALTH_CHECK_PATH = "/status";

export function recordType(target: string): "A" | "AAAA" | "CNAME" {
  const v = net.isIP(target);
  return v === 4 ? "A" : v === 6 ? "AAAA" : "CNAME";
}

/**
 * Route53's check of the mirror's readiness: the latency record's health, and what the
 * health-check alarm watches (components/alarms). Needs no hosted zone, only the name.
 */
export function createHealthCheck(name: string, domainName: string, parent: pulumi.Resource): aws.route53.HealthCheck {
  return new aws.route53.HealthCheck(
    `${name}-health`,
    {
      // HTTPS_STR_MATCH: a 2xx/3xx answer whose first 5,120 bytes contain the marker.
      type: "HTTPS_STR_MATCH",
      searchString: READY_MARKER,
      fqdn: domainName,
      port: 443,
      resourcePath: HEALTH_CHECK_PATH,
      enableSni: true,
      requestInterval: 30,
      failureThreshold: 3,
      tags: { Name: `${name} ${domainName}` },
    },
    { parent },
  );
}

export function createDnsRecords(i: DnsInput): DnsRecords {
  const { name, dns, parent } = i;
  const target = pulumi.output(i.target);
  const type = target.apply(recordType);
  const ttl = dns.ttl ?? 60;
  const record = new aws.route53.Record(`${name}-dns`, { zoneId: dns.zoneId, name: i.domainName, type, ttl, records: [target] }, { parent });
  if (dns.globalName === undefined) return { record };

  const region = i.region as string; // validation requires it with globalName
  const healthCheck = createHealthCheck(name, i.domainName, parent);
  const globalRecord = new aws.route53.Record(
    `${name}-dns-global`,
    {
      zoneId: dns.zoneId,
      name: dns.globalName,
      type,
      ttl,
      records: [target],
      setIdentifier: region,
      latencyRoutingPolicies: [{ region }],
      healthCheckId: healthCheck.id,
    },
    { parent },
  );
  return { record, globalRecord, healthCheck };
}
