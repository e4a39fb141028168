/**
 * The `alarms` argument under Pulumi mocks: which CloudWatch alarms exist for each host and DNS
 * setup, on which metric and dimension, in which region, notifying which topic; and the
 * validation of the topics.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { tempDir } from "../../testbed/resources";
import { installMocks, optionsRecorder, promiseOf, RecordedResource, settled } from "../../testbed/pulumiMocks";
import type { SmartMirrorArgs } from "../args";
import { SmartMirror } from "../smartMirror";
import { validateSmartMirrorArgs } from "../validate";
import { alarmDefinitions, isBurstable } from "./definitions";

const world = installMocks();
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMLSLrCXW0pcoxGUW/EJTuGUPZLoE6StPXIw8GBCqaZE";
const SYD_TOPIC = "arn:aws:sns:ap-southeast-2:123456789012:mirror-pages";
const USE1_TOPIC = "arn:aws:sns:us-east-1:123456789012:mirror-pages";

let bundlePath: string;
beforeAll(() => {
  bundlePath = path.join(tempDir("alarm-bundle"), "smart-mirror.js");
  fs.writeFileSync(bundlePath, "#!/usr/bin/env node\n");
});
beforeEach(() => {
  world.resources.length = 0;
});

function args(over: Partial<SmartMirrorArgs> = {}): SmartMirrorArgs {
  return {
    displayName: "Sydney mirror",
    domainName: "mirror-syd.example.com",
    region: "ap-southeast-2",
    primary: { url: "https://bitbucket.example.com", sshUrl: "ssh://git@bitbucket.example.com:7999", hostKeys: [HOST_KEY], repos: ["PROJ/app"] },
    host: { kind: "aws", subnetId: "subnet-0abc", ssh: { adminCidrs: ["203.0.113.7/32"] } },
    tls: { kind: "acme" },
    dns: { zoneId: "Z0123456789" },
    alarms: { snsTopicArn: SYD_TOPIC, healthCheckSnsTopicArn: USE1_TOPIC },
    deploy: { bundlePath },
    ...over,
  };
}

async function build(a: SmartMirrorArgs, opts: pulumi.ComponentResourceOptions = {}): Promise<void> {
  const { transformation, recorded } = optionsRecorder();
  const m = new SmartMirror("syd", a, { ...opts, transformations: [transformation] });
  await settled(recorded);
  await promiseOf(m.deploySummary);
}

const alarms = () => world.resources.filter((r) => r.type === "aws:cloudwatch/metricAlarm:MetricAlarm");
const alarm = (name: string): RecordedResource => {
  const a = alarms().find((r) => r.name === name);
  if (!a) throw new Error(`no alarm ${name}; have ${alarms().map((r) => r.name).join(", ")}`);
  return a;
};

describe("CloudWatch alarms", () => {
  test("AWS host: readiness (Route53, in us-east-1), status checks and CPU (in the stack's region), each to its topic, fire and clear", async () => {
    await build(args());
    expect(alarms().map((a) => a.name).sort()).toEqual(["syd-alarm-cpu", "syd-alarm-not-ready", "syd-alarm-status-check"]);
    // No global name: the health check is made for the alarm, on the readiness marker.
    const hc = world.resources.filter((r) => r.type === "aws:route53/healthCheck:HealthCheck");
    expect(hc).toHaveLength(1);
    expect(hc[0].inputs).toEqual(expect.objectContaining({ fqdn: "mirror-syd.example.com", type: "HTTPS_STR_MATCH", searchString: '"ready":true', resourcePath: "/status" }));

    const ready = alarm("syd-alarm-not-ready");
    expect(ready.inputs).toEqual(
      expect.objectContaining({
        namespace: "AWS/Route53",
        metricName: "HealthCheckStatus",
        dimensions: { HealthCheckId: "syd-health-id" },
        statistic: "Minimum",
        comparisonOperator: "LessThanThreshold",
        threshold: 1,
        period: 60,
        evaluationPeriods: 5,
        treatMissingData: "breaching",
        alarmActions: [USE1_TOPIC],
        okActions: [USE1_TOPIC],
      }),
    );
    // Route53's metrics exist only in us-east-1: the alarm goes through a provider there.
    const providers = world.resources.filter((r) => r.type === "pulumi:providers:aws");
    expect(providers.map((p) => [p.name, p.inputs.region])).toEqual([["syd-us-east-1", "us-east-1"]]);
    expect(ready.provider).toMatch(/::syd-us-east-1::/);

    const status = alarm("syd-alarm-status-check");
    expect(status.inputs).toEqual(
      expect.objectContaining({ namespace: "AWS/EC2", metricName: "StatusCheckFailed", dimensions: { InstanceId: "i-0123456789abcdef0" }, statistic: "Maximum", comparisonOperator: "GreaterThanOrEqualToThreshold", threshold: 1, alarmActions: [SYD_TOPIC], okActions: [SYD_TOPIC] }),
    );
    expect(status.provider ?? "").not.toMatch(/syd-us-east-1/);
    expect(alarm("syd-alarm-cpu").inputs).toEqual(expect.objectContaining({ metricName: "CPUUtilization", threshold: 90, period: 300, evaluationPeriods: 3 }));
  });

  test("the global name's health check is the one alarmed on; a stack in us-east-1 needs no extra provider; a burstable type gets a credit alarm", async () => {
    await build(args({ region: "us-east-1", dns: { zoneId: "Z0123456789", globalName: "git.example.com" }, alarms: { snsTopicArn: USE1_TOPIC, minutes: 10 }, host: { kind: "aws", subnetId: "subnet-0abc", instanceType: "t3.large", ssh: { adminCidrs: ["203.0.113.7/32"] } } }));
    expect(world.resources.filter((r) => r.type === "aws:route53/healthCheck:HealthCheck")).toHaveLength(1);
    expect(world.resources.filter((r) => r.type === "pulumi:providers:aws")).toEqual([]);
    expect(alarms().map((a) => a.name).sort()).toEqual(["syd-alarm-cpu", "syd-alarm-cpu-credits", "syd-alarm-not-ready", "syd-alarm-status-check"]);
    expect(alarm("syd-alarm-not-ready").inputs).toEqual(expect.objectContaining({ evaluationPeriods: 10, alarmActions: [USE1_TOPIC] }));
    expect(alarm("syd-alarm-cpu-credits").inputs).toEqual(expect.objectContaining({ metricName: "CPUCreditBalance", threshold: 10 }));
  });

  test("an existing host: the readiness alarm only (no instance to watch)", async () => {
    await build(
      args({
        host: { kind: "existing", address: "mirror.internal.example.com", privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n", hostKey: HOST_KEY },
        tls: { kind: "privateCa", clientsTrustPrivateCa: true },
      }),
    );
    expect(alarms().map((a) => a.name)).toEqual(["syd-alarm-not-ready"]);
  });

  test("without the argument: no alarm, no extra health check or provider", async () => {
    await build(args({ alarms: undefined }));
    expect(alarms()).toEqual([]);
    expect(world.resources.filter((r) => r.type === "aws:route53/healthCheck:HealthCheck" || r.type === "pulumi:providers:aws")).toEqual([]);
  });

  test("a company's explicit provider reaches the instance alarms", async () => {
    const provider = new aws.Provider("company", { region: "ap-southeast-2" });
    await build(args(), { providers: [provider] });
    const urn = await promiseOf(provider.urn);
    expect(alarm("syd-alarm-status-check").provider?.startsWith(`${urn}::`)).toBe(true);
  });
});

describe("validation", () => {
  const problems = (alarmsArg: SmartMirrorArgs["alarms"]) => validateSmartMirrorArgs(args({ alarms: alarmsArg })).filter((p) => p.startsWith("alarms"));

  test("topics are SNS ARNs; the health-check alarm's topic must be in us-east-1", () => {
    expect(problems({ snsTopicArn: SYD_TOPIC, healthCheckSnsTopicArn: USE1_TOPIC })).toEqual([]);
    expect(problems({ snsTopicArn: USE1_TOPIC })).toEqual([]);
    expect(problems({ snsTopicArn: pulumi.output(SYD_TOPIC) })).toEqual([]);
    expect(problems({ snsTopicArn: SYD_TOPIC })).toEqual([expect.stringMatching(/^alarms\.snsTopicArn: is in ap-southeast-2, but the health-check alarm lives in us-east-1 .* set alarms\.healthCheckSnsTopicArn to a topic in us-east-1/)]);
    expect(problems({ snsTopicArn: SYD_TOPIC, healthCheckSnsTopicArn: SYD_TOPIC })).toEqual([expect.stringMatching(/^alarms\.healthCheckSnsTopicArn: is in ap-southeast-2/)]);
    expect(problems({ snsTopicArn: "mirror-pages", healthCheckSnsTopicArn: USE1_TOPIC })).toEqual([expect.stringMatching(/^alarms\.snsTopicArn: "mirror-pages" is not an SNS topic ARN .*arn:aws:sns:/)]);
    expect(problems({ snsTopicArn: "" })).toEqual([expect.stringMatching(/^alarms\.snsTopicArn: is required/)]);
    expect(problems({ snsTopicArn: USE1_TOPIC, minutes: 0 })).toEqual([expect.stringMatching(/^alarms\.minutes: 0 is out of range/)]);
  });

  test("definitions: burstable types, and each alarm's window", () => {
    expect(["t3.large", "t4g.small", "t3a.medium", "t2.micro"].every(isBurstable)).toBe(true);
    expect(["m6i.xlarge", "c7g.large", "r6a.2xlarge"].some(isBurstable)).toBe(false);
    const d = alarmDefinitions({ domainName: "m.example.com", healthCheck: true, instance: false });
    expect(d).toHaveLength(1);
    expect(d[0].description).toContain("https://m.example.com/status");
  });
});
