/**
 * Where Route53's health checkers come from, and whether a host's `allowedCidrs` lets them in.
 * Pure. A latency record on `dns.globalName` answers only while its health check passes, and
 * the check is an HTTPS request from Route53's checkers to the mirror's port 443: a security
 * group that admits only company ranges fails every check, so the region silently drops out
 * of the global name (or, with every region failing, Route53 answers with all of them anyway).
 *
 * AWS publishes the checkers' ranges in https://ip-ranges.amazonaws.com/ip-ranges.json under
 * service "ROUTE53_HEALTHCHECKS" (the GetCheckerIpRanges API is the older way). The list
 * below is that service's IPv4 prefixes for the default checker regions (the health check
 * resource sets no `regions`, so all of them probe) plus the GLOBAL block; refresh it with
 *
 *   curl -s https://ip-ranges.amazonaws.com/ip-ranges.json \
 *     | jq -r '.prefixes[] | select(.service=="ROUTE53_HEALTHCHECKS") | .ip_prefix'
 */

export const ROUTE53_HEALTHCHECKS_SOURCE = "https://ip-ranges.amazonaws.com/ip-ranges.json (service ROUTE53_HEALTHCHECKS)";

export const ROUTE53_HEALTH_CHECKER_CIDRS: readonly string[] = [
  "15.177.0.0/18", // GLOBAL
  "54.183.255.128/26", // us-west-1
  "54.241.32.64/26", // us-west-1
  "54.228.16.0/26", // eu-west-1
  "176.34.159.192/26", // eu-west-1
  "54.232.40.64/26", // sa-east-1
  "177.71.207.128/26", // sa-east-1
  "54.243.31.192/26", // us-east-1
  "107.23.255.0/26", // us-east-1
  "54.244.52.192/26", // us-west-2
  "54.245.168.0/26", // us-west-2
  "54.248.220.0/26", // ap-northeast-1
  "54.250.253.192/26", // ap-northeast-1
  "54.251.31.128/26", // ap-southeast-1
  "54.255.254.192/26", // ap-southeast-1
  "54.252.79.128/26", // ap-southeast-2
  "54.252.254.192/26", // ap-southeast-2
];

function ipv4ToInt(a: string): number {
  return a.split(".").reduce((n, o) => n * 256 + Number(o), 0);
}

/** Does IPv4 block `outer` contain all of block `inner`? Both "a.b.c.d/n". */
export function cidrContains(outer: string, inner: string): boolean {
  const [oa, op] = outer.split("/");
  const [ia, ip] = inner.split("/");
  const oPrefix = Number(op);
  if (Number(ip) < oPrefix) return false;
  const block = 2 ** (32 - oPrefix);
  return Math.floor(ipv4ToInt(oa) / block) === Math.floor(ipv4ToInt(ia) / block);
}

/** The checker ranges that no entry of `allowed` admits. */
export function uncoveredHealthCheckers(allowed: readonly string[]): string[] {
  return ROUTE53_HEALTH_CHECKER_CIDRS.filter((c) => !allowed.some((a) => a.includes(".") && cidrContains(a, c)));
}

/**
 * A warning (not an error: the company may route the checks another way, e.g. through a
 * proxy it operates) when `dns.globalName` is set on an AWS host whose allowedCidrs keep some
 * of Route53's health checkers out; undefined otherwise.
 */
export function healthCheckerWarning(globalName: string | undefined, allowedCidrs: readonly string[] | undefined): string | undefined {
  if (globalName === undefined) return undefined;
  const missing = uncoveredHealthCheckers(allowedCidrs ?? ["0.0.0.0/0"]);
  if (missing.length === 0) return undefined;
  return (
    `dns.globalName ${globalName}: host.allowedCidrs keeps ${missing.length} of Route53's ${ROUTE53_HEALTH_CHECKER_CIDRS.length} health-checker ranges out of port 443, ` +
    `so the latency record's health check (HTTPS GET /status) fails and this region drops out of ${globalName}. ` +
    `Fix: add Route53's health-checker ranges to host.allowedCidrs: ${missing.join(", ")} (${ROUTE53_HEALTHCHECKS_SOURCE}); or drop dns.globalName for a mirror only internal clients reach.`
  );
}
