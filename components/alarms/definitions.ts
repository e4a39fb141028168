/**
 * The CloudWatch alarms of a mirror as data (pure, no Pulumi): which metric, threshold and
 * window, and why. cloudwatch.ts turns them into resources; validate.ts reads the constants.
 */
/** Route53 publishes health-check metrics in this region only. */
export const ROUTE53_METRICS_REGION = "us-east-1";
export const DEFAULT_ALARM_MINUTES = 5;

export interface AlarmDefinition {
  /** Resource name suffix: `${name}-alarm-${suffix}`. */
  suffix: string;
  /** What the alarm's dimension names. */
  on: "healthCheck" | "instance";
  namespace: string;
  metricName: string;
  statistic: "Minimum" | "Maximum" | "Average";
  comparisonOperator: "LessThanThreshold" | "GreaterThanOrEqualToThreshold" | "GreaterThanThreshold";
  threshold: number;
  /** Seconds per datapoint. */
  period: number;
  evaluationPeriods: number;
  /** What happens without data: a health check without data is as bad as a failing one. */
  treatMissingData: "breaching" | "missing" | "notBreaching";
  description: string;
}

/** Burstable instance families (t2, t3, t3a, t4g): CPU credits can run out. */
export function isBurstable(instanceType: string | undefined): boolean {
  return instanceType !== undefined && /^t\d+[a-z]*\./.test(instanceType);
}

/** The alarms for a mirror (pure). */
export function alarmDefinitions(o: { domainName: string; minutes?: number; healthCheck: boolean; instanceType?: string; instance: boolean }): AlarmDefinition[] {
  const minutes = o.minutes ?? DEFAULT_ALARM_MINUTES;
  const out: AlarmDefinition[] = [];
  if (o.healthCheck) {
    out.push({
      suffix: "not-ready",
      on: "healthCheck",
      namespace: "AWS/Route53",
      metricName: "HealthCheckStatus",
      statistic: "Minimum",
      comparisonOperator: "LessThanThreshold",
      threshold: 1,
      period: 60,
      evaluationPeriods: minutes,
      treatMissingData: "breaching",
      description:
        `https://${o.domainName}/status has not said "ready":true for ${minutes} minutes (Route53 health check): the mirror is starting, ` +
        `in its initial sync, in ERROR or unreachable. Expected after the first pulumi up until the initial sync ends. See https://${o.domainName}/ and the Prometheus alerts.`,
    });
  }
  if (o.instance) {
    out.push({
      suffix: "status-check",
      on: "instance",
      namespace: "AWS/EC2",
      metricName: "StatusCheckFailed",
      statistic: "Maximum",
      comparisonOperator: "GreaterThanOrEqualToThreshold",
      threshold: 1,
      period: 60,
      evaluationPeriods: minutes,
      treatMissingData: "missing",
      description: `The EC2 instance of ${o.domainName} failed its system or instance status check for ${minutes} minutes (EC2 console: Status checks).`,
    });
    out.push({
      suffix: "cpu",
      on: "instance",
      namespace: "AWS/EC2",
      metricName: "CPUUtilization",
      statistic: "Average",
      comparisonOperator: "GreaterThanThreshold",
      threshold: 90,
      // Basic monitoring: one datapoint per 5 minutes; three of them = 15 minutes.
      period: 300,
      evaluationPeriods: 3,
      treatMissingData: "missing",
      description: `The instance of ${o.domainName} used over 90% CPU for 15 minutes: clones queue for upload-pack slots. Grow host.aws.instanceType or add a mirror in the region.`,
    });
    if (isBurstable(o.instanceType)) {
      out.push({
        suffix: "cpu-credits",
        on: "instance",
        namespace: "AWS/EC2",
        metricName: "CPUCreditBalance",
        statistic: "Minimum",
        comparisonOperator: "LessThanThreshold",
        threshold: 10,
        period: 300,
        evaluationPeriods: 3,
        treatMissingData: "missing",
        description: `The ${o.instanceType} instance of ${o.domainName} is almost out of CPU credits: it is throttled to its baseline (standard mode) or paying for surplus credits (unlimited). Use a non-burstable type for a busy mirror.`,
      });
    }
  }
  return out;
}
