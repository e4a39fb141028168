/**
 * `pulumi preview` and `pulumi up` (twice) of the per-region program (infra/) for every
 * committed stack file, under @pulumi/pulumi's own runner (its ts-node registration with the
 * project's TypeScript, cwd infra/, infra/tsconfig.json) against the recording engine. Before
 * infra/tsconfig.json set rootDir, the program did not even load (TS5011).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { stackNames, readStackConfig } from "../../testbed/stackFiles";
import { isSecret, ROOT_STACK_TYPE } from "./recordingEngine";
import { leaks, Lifecycle, one, previewUpdateUpdate, registeredInputs, urns } from "./lifecycle";

const REPO = path.resolve(__dirname, "../..");
const BUNDLE = path.join(REPO, "dist/smart-mirror.js");

/** What `pulumi config set --secret` would have stored for each stack (the engine decrypts it). */
const SECRETS: Record<string, Record<string, string>> = {
  "eu-west-1": {
    catalogToken: "BBDC-eu-catalog-token-7f3a",
    webhookSecret: "eu-webhook-hmac-secret-91c2",
    accessKeyToken: "BBDC-eu-project-admin-token-c44d",
  },
  "ap-southeast-2": {
    catalogToken: "BBDC-syd-catalog-token-2b9e",
    bastionPrivateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nc3lkLWJhc3Rpb24ta2V5LXRlc3Q=\n-----END OPENSSH PRIVATE KEY-----\n",
  },
};

const CONTRACT_OUTPUTS = ["mirrorUrl", "cloneUrlTemplate", "statusUrl", "syncPublicKey", "hostAddress"];

test("every committed stack file has test secrets", () => {
  expect(stackNames()).toEqual(Object.keys(SECRETS).sort());
});

describe.each(stackNames())("infra/ under Pulumi's runner, stack %s", (stack) => {
  let life: Lifecycle;
  const file = readStackConfig(stack);
  const host = file["smart-mirror:host"] as { subnetId: string; instanceType: string; dataVolume: { sizeGiB: number } };
  const domainName = String(file["smart-mirror:domainName"]);

  beforeAll(async () => {
    if (!fs.existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run \`npm run build\` first (npm test does)`);
    life = await previewUpdateUpdate({ root: REPO, stack, secrets: SECRETS[stack] });
    for (const [what, r] of Object.entries(life)) console.log(`[pulumi-runner] infra ${stack} ${what}: ${r.durationMs} ms, ${r.recording.registrations.length} registrations`);
  }, 300_000);

  test("the program loads (no TypeScript error) and registers one SmartMirror (named mirror, aliased to the stack name) under the stack", () => {
    const rec = life.update.recording;
    const root = one(rec, ROOT_STACK_TYPE);
    expect(root.name).toBe(`smart-mirror-${stack}`);
    const mirror = one(rec, "smart-mirror:index:SmartMirror");
    // A fixed name survives `pulumi stack rename`; the alias adopts stacks created under the old name.
    expect(mirror.name).toBe("mirror");
    expect(mirror.parent).toBe(root.urn);
    // Every resource of the mirror hangs under the component (directly or through a child).
    const byUrn = new Map(rec.registrations.map((r) => [r.urn, r]));
    const underMirror = (urn: string): boolean => urn === mirror.urn || (byUrn.get(urn)?.parent ? underMirror(byUrn.get(urn)!.parent) : false);
    const outside = rec.registrations.filter((r) => r.type !== ROOT_STACK_TYPE && r.urn !== mirror.urn && !underMirror(r.urn)).map((r) => r.urn);
    expect(outside).toEqual([]);
    expect(mirror.urn).toBe(`urn:pulumi:${stack}::smart-mirror::smart-mirror:index:SmartMirror::mirror`);
    expect(JSON.stringify(mirror.aliases)).toContain(`"name":"${stack}"`);
  });

  test("the graph: host, data volume, certificate, DNS and the deploy, with the stack file's values", () => {
    const rec = life.update.recording;
    const types = new Set(rec.registrations.map((r) => r.type));
    for (const t of [
      "aws:ec2/securityGroup:SecurityGroup",
      "aws:ec2/instance:Instance",
      "aws:ebs/volume:Volume",
      "aws:ec2/volumeAttachment:VolumeAttachment",
      "aws:ec2/eip:Eip",
      "tls:index/privateKey:PrivateKey",
      "acme:index/registration:Registration",
      "acme:index/certificate:Certificate",
      "aws:route53/record:Record",
      "command:remote:Command",
    ]) {
      expect(types).toContain(t);
    }
    const instance = one(rec, "aws:ec2/instance:Instance");
    expect(instance.inputs.subnetId).toBe(host.subnetId);
    expect(instance.inputs.instanceType).toBe(host.instanceType);
    expect(one(rec, "aws:ebs/volume:Volume").inputs.size).toBe(host.dataVolume.sizeGiB);
    expect(one(rec, "aws:route53/record:Record", "-dns").inputs.name).toBe(domainName);
    expect(one(rec, "aws:route53/record:Record", "-dns-global").inputs.setIdentifier).toBe(stack);
    // The ACME certificate is issued through an explicit acme provider, not ambient defaults.
    expect(one(rec, "acme:index/certificate:Certificate").provider).toMatch(/[:$]pulumi:providers:acme::/);
  });

  test("CloudWatch alarms from the stack file (eu-west-1 sets them): the health check's in us-east-1, the instance's in the stack's region", () => {
    const rec = life.update.recording;
    const alarms = rec.registrations.filter((r) => r.type === "aws:cloudwatch/metricAlarm:MetricAlarm");
    const alarmsConfig = file["smart-mirror:alarms"] as { snsTopicArn: string; healthCheckSnsTopicArn: string } | undefined;
    if (!alarmsConfig) {
      expect(alarms).toEqual([]);
      return;
    }
    expect(alarms.map((a) => a.name).sort()).toEqual(["mirror-alarm-cpu", "mirror-alarm-not-ready", "mirror-alarm-status-check"]);
    const ready = one(rec, "aws:cloudwatch/metricAlarm:MetricAlarm", "-not-ready");
    expect(ready.inputs).toMatchObject({ namespace: "AWS/Route53", metricName: "HealthCheckStatus", alarmActions: [alarmsConfig.healthCheckSnsTopicArn] });
    expect(ready.provider).toMatch(/pulumi:providers:aws::mirror-us-east-1::/);
    const usEast1 = one(rec, "pulumi:providers:aws", "-us-east-1");
    expect(usEast1.inputs.region).toBe("us-east-1");
    expect(one(rec, "aws:cloudwatch/metricAlarm:MetricAlarm", "-status-check").inputs).toMatchObject({ metricName: "StatusCheckFailed", alarmActions: [alarmsConfig.snsTopicArn] });
  });

  test("stack outputs: the contract outputs, known after the update, the sync key public", () => {
    const outputs = life.update.recording.outputs.get(life.update.recording.rootUrn) ?? {};
    for (const k of CONTRACT_OUTPUTS) expect(Object.keys(outputs)).toContain(k);
    expect(outputs.mirrorUrl).toBe(`https://${domainName}`);
    expect(outputs.statusUrl).toBe(`https://${domainName}/status`);
    expect(outputs.hostAddress).toBe("198.51.100.7");
    expect(isSecret(outputs.syncPublicKey)).toBe(false);
    expect(String(outputs.syncPublicKey)).toMatch(/^ssh-ed25519 /);
  });

  test("secrets from the stack's config and generated keys never travel in plain text", () => {
    for (const r of Object.values(life)) {
      expect(leaks(r.recording, Object.values(SECRETS[stack]))).toEqual([]);
      for (const s of Object.values(SECRETS[stack])) expect(r.stdout + r.stderr).not.toContain(s);
    }
    // The private keys the tls provider returns are secrets, and so is everything built from them.
    expect(leaks(life.update.recording, ["mock " + `${stack}-host-key`, "mock " + `${stack}-deploy-key`].map((s) => Buffer.from(s).toString("base64")))).toEqual([]);
  });

  test("the preview announces exactly what the update registers", () => {
    expect(urns(life.preview.recording)).toEqual(urns(life.update.recording));
    expect(life.preview.recording.dryRun).toBe(true);
  });

  test("a second update with the same config registers identical inputs (no perpetual diff)", () => {
    expect(registeredInputs(life.again.recording)).toEqual(registeredInputs(life.update.recording));
  });
});
