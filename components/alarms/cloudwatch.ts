/**
 * CloudWatch alarms for a mirror (the `alarms` argument): paging from the first `pulumi up`
 * for stacks without Prometheus. Only metrics AWS publishes without an agent:
 *
 * - AWS/Route53 HealthCheckStatus of the readiness check (GET /status holds "ready":true):
 *   the mirror cannot serve current copies, or cannot be reached at all. Route53 publishes
 *   health-check metrics in us-east-1 only, so this alarm lives there (its own provider unless
 *   the stack is in us-east-1) and notifies a topic there.
 * - AWS/EC2 StatusCheckFailed (1-minute data even with basic monitoring): the instance or its
 *   host failed AWS's reachability checks.
 * - AWS/EC2 CPUUtilization (5-minute data with basic monitoring): sustained saturation; plus
 *   CPUCreditBalance on burstable (t*) types, where an empty balance throttles the host.
 *
 * Disk use would need the CloudWatch agent, which the mirror does not install: the Prometheus
 * rules cover it (ops/prometheus/smart-mirror.rules.yml). The definitions are pure
 * (definitions.ts); createAlarms only turns them into resources.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { AlarmDefinition, alarmDefinitions, ROUTE53_METRICS_REGION } from "./definitions";

export interface AlarmsInput {
  name: string;
  domainName: string;
  snsTopicArn: pulumi.Input<string>;
  healthCheckSnsTopicArn?: pulumi.Input<string>;
  minutes?: number;
  healthCheck?: aws.route53.HealthCheck;
  instance?: aws.ec2.Instance;
  instanceType?: string;
  /** The stack's AWS region, when known: no extra provider when it is us-east-1. */
  region?: string;
  parent: pulumi.Resource;
}

export function createAlarms(i: AlarmsInput): aws.cloudwatch.MetricAlarm[] {
  const defs = alarmDefinitions({ domainName: i.domainName, minutes: i.minutes, healthCheck: i.healthCheck !== undefined, instance: i.instance !== undefined, instanceType: i.instanceType });
  // Created only when a health-check alarm needs it: the stack's own credentials, region us-east-1.
  let usEast1: aws.Provider | undefined;
  const providerFor = (d: AlarmDefinition): aws.Provider | undefined => {
    if (d.on !== "healthCheck" || i.region === ROUTE53_METRICS_REGION) return undefined;
    usEast1 ??= new aws.Provider(`${i.name}-${ROUTE53_METRICS_REGION}`, { region: ROUTE53_METRICS_REGION }, { parent: i.parent });
    return usEast1;
  };
  return defs.map((d) => {
    const topic = d.on === "healthCheck" ? (i.healthCheckSnsTopicArn ?? i.snsTopicArn) : i.snsTopicArn;
    const dimensions: Record<string, pulumi.Input<string>> = d.on === "healthCheck" ? { HealthCheckId: (i.healthCheck as aws.route53.HealthCheck).id } : { InstanceId: (i.instance as aws.ec2.Instance).id };
    const provider = providerFor(d);
    return new aws.cloudwatch.MetricAlarm(
      `${i.name}-alarm-${d.suffix}`,
      {
        alarmDescription: d.description,
        namespace: d.namespace,
        metricName: d.metricName,
        dimensions,
        statistic: d.statistic,
        comparisonOperator: d.comparisonOperator,
        threshold: d.threshold,
        period: d.period,
        evaluationPeriods: d.evaluationPeriods,
        treatMissingData: d.treatMissingData,
        // Told when it fires and when it clears (a page and its all-clear).
        alarmActions: [topic],
        okActions: [topic],
        tags: { Name: `${i.name} ${d.suffix}` },
      },
      { parent: i.parent, ...(provider ? { provider } : {}) },
    );
  });
}
