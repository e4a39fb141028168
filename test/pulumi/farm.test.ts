/**
 * A mirror farm's graph under Pulumi's own runner (test/pulumi/farmProgram: 4 nodes, three
 * subnets, Route53 with a global name), `pulumi preview`, `pulumi up` and `pulumi up` again
 * against the recording engine: the Auto Scaling group and its launch template, the Network Load
 * Balancer and its target group checking /status/ready over HTTPS, the plan and bundle as
 * KMS-encrypted S3 objects, the node role scoped to the farm's prefix, the SSM document and its
 * one-node-at-a-time association, the alias records; no SSH deploy; secrets stay secret.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { isSecret, Recording, Registration, ROOT_STACK_TYPE } from "./recordingEngine";
import { leaks, Lifecycle, one, previewUpdateUpdate, registeredInputs, urns } from "./lifecycle";
import { KEYS } from "../../sync/config/keys";
import { stopBoundSec } from "../../components/render/systemd";

const ROOT = path.join(__dirname, "farmProgram");
const BUNDLE = path.resolve(__dirname, "../../dist/smart-mirror.js");
const STACK = "eu-west-1";
const SECRETS = { catalogToken: "BBDC-farm-catalog-token-5d1e" };

/** A secret's plain value (the engine hands the program's secret inputs over wrapped). */
const plain = (v: unknown): unknown => (isSecret(v) ? (v as Record<string, unknown>).value : v);
const fn = (v: unknown) => JSON.parse(String(plain(v))) as Record<string, unknown>;

let life: Lifecycle;
let rec: Recording;
const all = (type: string): Registration[] => rec.registrations.filter((r) => r.type === type);

beforeAll(async () => {
  if (!fs.existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run \`npm run build\` first (npm test does)`);
  life = await previewUpdateUpdate({ root: ROOT, stack: STACK, secrets: SECRETS });
  for (const [what, r] of Object.entries(life)) console.log(`[pulumi-runner] farm ${STACK} ${what}: ${r.durationMs} ms, ${r.recording.registrations.length} registrations`);
  rec = life.update.recording;
}, 300_000);

test("one SmartMirror under the stack; every resource under it; no single host and no SSH deploy", () => {
  const mirror = one(rec, "smart-mirror:index:SmartMirror");
  expect(mirror.parent).toBe(one(rec, ROOT_STACK_TYPE).urn);
  const byUrn = new Map(rec.registrations.map((r) => [r.urn, r]));
  const under = (urn: string): boolean => urn === mirror.urn || (byUrn.get(urn)?.parent ? under(byUrn.get(urn)!.parent) : false);
  expect(rec.registrations.filter((r) => r.type !== ROOT_STACK_TYPE && !r.type.startsWith("pulumi:providers:") && !under(r.urn)).map((r) => r.urn)).toEqual([]);
  const types = rec.registrations.map((r) => r.type);
  for (const t of ["aws:ec2/instance:Instance", "aws:ec2/eip:Eip", "aws:ebs/volume:Volume", "command:remote:Command", "command:remote:CopyToRemote"]) expect(types).not.toContain(t);
});

test("the Auto Scaling group: 4 nodes from the launch template's latest version, in the three subnets, ELB health, in the target group, tagged for SSM", () => {
  const group = one(rec, "aws:autoscaling/group:Group");
  const lt = one(rec, "aws:ec2/launchTemplate:LaunchTemplate");
  const tg = one(rec, "aws:lb/targetGroup:TargetGroup");
  expect(group.inputs).toMatchObject({ minSize: 4, maxSize: 4, desiredCapacity: 4, healthCheckType: "ELB", healthCheckGracePeriod: 3600 });
  expect(group.inputs.vpcZoneIdentifiers).toEqual(["subnet-0aaaabbbbccccdddd", "subnet-0eeeeffff00001111", "subnet-0123412341234abcd"]);
  expect(group.inputs.launchTemplate).toEqual({ id: `${lt.name}-id`, version: "1" });
  expect(group.inputs.targetGroupArns).toEqual([expect.stringContaining(`targetgroup/${tg.name}/`)]);
  expect(group.inputs.tags).toContainEqual({ key: "smart-mirror-farm", value: `smart-mirror-farm.${STACK}.farm`, propagateAtLaunch: true });
});

test("the launch template: IMDSv2 only, encrypted root and per-node data volume, the node group, no SSH key, the farm's cloud-init booting the current plan", () => {
  const lt = one(rec, "aws:ec2/launchTemplate:LaunchTemplate");
  expect(lt.inputs).toMatchObject({ instanceType: "m6i.large", imageId: "ami-0123456789abcdef0", metadataOptions: { httpEndpoint: "enabled", httpTokens: "required", httpPutResponseHopLimit: 1 } });
  expect(lt.inputs.keyName).toBeUndefined();
  expect(lt.inputs.blockDeviceMappings).toEqual([
    { deviceName: "/dev/sda1", ebs: { volumeSize: 20, volumeType: "gp3", encrypted: "true", deleteOnTermination: "true" } },
    { deviceName: "/dev/sdf", ebs: { volumeSize: 300, volumeType: "gp3", encrypted: "true", deleteOnTermination: "true" } },
  ]);
  expect(lt.inputs.vpcSecurityGroupIds).toEqual(["sg-0123456789abcdef0"]);
  expect(lt.propertyDependencies.vpcSecurityGroupIds).toEqual([one(rec, "aws:ec2/securityGroup:SecurityGroup", "-node-sg").urn]);
  const userData = Buffer.from(String(plain(lt.inputs.userData)), "base64").toString("utf8");
  expect(userData).toMatch(/^#cloud-config\n/);
  expect(userData).not.toMatch(/ssh_authorized_keys|ssh_keys/);
  const plan = one(rec, "aws:s3/bucketObjectv2:BucketObjectv2", "-farm-plan");
  const bundle = one(rec, "aws:s3/bucketObjectv2:BucketObjectv2", "-farm-bundle");
  const bucket = one(rec, "aws:s3/bucket:Bucket");
  const bucketName = `smart-mirror-farm-20260101000000000000000001`;
  expect(bucket.inputs.bucketPrefix).toBe("smart-mirror-farm-");
  expect(userData).toContain(`s3://${bucketName}/${String(bundle.inputs.key)}`);
  expect(userData).toContain(`s3://${bucketName}/${String(plan.inputs.key)}`);
});

test("the security groups: clients (allowedCidrs) reach the load balancer; nodes take HTTPS only from it and from each other; no port 22", () => {
  const nlbSg = one(rec, "aws:ec2/securityGroup:SecurityGroup", "-nlb-sg");
  const nodeSg = one(rec, "aws:ec2/securityGroup:SecurityGroup", "-node-sg");
  expect(nlbSg.inputs.ingress).toEqual([expect.objectContaining({ fromPort: 443, toPort: 443, cidrBlocks: ["10.0.0.0/8"] })]);
  expect(nodeSg.propertyDependencies.ingress).toEqual([nlbSg.urn]);
  expect(nodeSg.inputs.ingress).toEqual([
    expect.objectContaining({ fromPort: 443, toPort: 443, securityGroups: ["sg-0123456789abcdef0"] }),
    expect.objectContaining({ fromPort: 443, toPort: 443, self: true }),
  ]);
  expect(JSON.stringify([nlbSg.inputs.ingress, nodeSg.inputs.ingress])).not.toMatch(/"fromPort":22/);
});

test("the Network Load Balancer: TCP 443 to the target group, cross-zone; targets keep the client IP, drain for drainSeconds, health = HTTPS GET /status/ready 200", () => {
  const nlb = one(rec, "aws:lb/loadBalancer:LoadBalancer");
  expect(nlb.inputs).toMatchObject({ loadBalancerType: "network", internal: false, enableCrossZoneLoadBalancing: true });
  expect(nlb.inputs.subnets).toHaveLength(3);
  const tg = one(rec, "aws:lb/targetGroup:TargetGroup");
  expect(tg.inputs).toMatchObject({ protocol: "TCP", port: 443, targetType: "instance", preserveClientIp: "true", deregistrationDelay: 600, connectionTermination: false, vpcId: "vpc-0123456789abcdef0" });
  expect(tg.inputs.healthCheck).toEqual({ enabled: true, protocol: "HTTPS", port: "traffic-port", path: "/status/ready", matcher: "200", interval: 10, timeout: 9, healthyThreshold: 3, unhealthyThreshold: 2 });
  const listener = one(rec, "aws:lb/listener:Listener");
  expect(listener.inputs).toMatchObject({ protocol: "TCP", port: 443, loadBalancerArn: expect.stringContaining("loadbalancer/net/"), defaultActions: [{ type: "forward", targetGroupArn: expect.stringContaining("targetgroup/") }] });
});

test("the plan and the bundle: content-addressed S3 objects, SSE-KMS with the farm's key, the plan secret; the bucket private, versioned, TLS-only", () => {
  const key = one(rec, "aws:kms/key:Key");
  expect(key.inputs.enableKeyRotation).toBe(true);
  const keyArn = `arn:aws:kms:eu-west-1:123456789012:key/${key.name}-0000`;
  const plan = one(rec, "aws:s3/bucketObjectv2:BucketObjectv2", "-farm-plan");
  const bundle = one(rec, "aws:s3/bucketObjectv2:BucketObjectv2", "-farm-bundle");
  for (const o of [plan, bundle]) expect(o.inputs).toMatchObject({ serverSideEncryption: "aws:kms", kmsKeyId: keyArn, bucketKeyEnabled: true });
  expect(isSecret(plan.inputs.content)).toBe(true);
  const planText = String(plain(plan.inputs.content));
  expect(plan.inputs.key).toBe(`farm/farm/plan/${createHash("sha256").update(planText).digest("hex")}.json`);
  const bundleSha = createHash("sha256").update(fs.readFileSync(BUNDLE)).digest("hex");
  expect(bundle.inputs.key).toBe(`farm/farm/bundle/${bundleSha}.js`);

  const enc = one(rec, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration");
  expect(enc.inputs.rules).toEqual([{ applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: keyArn }, bucketKeyEnabled: true }]);
  expect(one(rec, "aws:s3/bucketVersioning:BucketVersioning").inputs.versioningConfiguration).toEqual({ status: "Enabled" });
  expect(one(rec, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs).toMatchObject({ blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true });
  const policy = fn(one(rec, "aws:s3/bucketPolicy:BucketPolicy").inputs.policy);
  expect(policy.Statement).toEqual([expect.objectContaining({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } })]);

  // The plan: the farm's files and keys, the farm token a secret file of the daemon's.
  const parsed = JSON.parse(planText) as { files: Array<{ path: string; mode: number; secret?: boolean; contentBase64?: string }>; services: Array<{ unit: string }> };
  const token = parsed.files.find((f) => f.path.endsWith("/shared/secrets/farm-token"));
  expect(token).toMatchObject({ mode: 0o600, secret: true });
  expect(parsed.services.map((s) => s.unit)).toEqual(["smart-mirror.service", "nginx.service", "smart-mirror-farm-peers.timer"]);
  const props = Buffer.from(parsed.files.find((f) => f.path.endsWith("bitbucket.properties"))?.contentBase64 ?? "", "base64").toString("utf8");
  expect(props).toContain(`${KEYS.drainQuietPeriod.name}=30s\n`);
  expect(props).toContain(`${KEYS.drainTimeout.name}=600s\n`);
  // systemd waits out that drain bound (farm.drainSeconds), not the single host's default.
  const unit = Buffer.from(parsed.files.find((f) => f.path.endsWith("/smart-mirror.service"))?.contentBase64 ?? "", "base64").toString("utf8");
  expect(Number(/^TimeoutStopSec=(\d+)s$/m.exec(unit)?.[1])).toBeGreaterThanOrEqual(stopBoundSec(600));
  expect(props).toContain(`${KEYS.farmPeersFile.name}=/etc/smart-mirror/farm/peers\n`);
  expect(props).toContain(`${KEYS.farmTokenFile.name}=/var/lib/smart-mirror/shared/secrets/farm-token\n`);
  expect(props).toContain(`${KEYS.farmServerName.name}=mirror-dub.example.com\n`);
  const peersScript = Buffer.from(parsed.files.find((f) => f.path === "/usr/local/sbin/smart-mirror-farm-peers")?.contentBase64 ?? "", "base64").toString("utf8");
  expect(peersScript).toContain(`"Name=tag:smart-mirror-farm,Values=smart-mirror-farm.${STACK}.farm"`);
});

test("the node role: SSM core, GetObject only under the farm's prefix, kms:Decrypt only for its key via S3, ec2:DescribeInstances; nothing else", () => {
  const role = one(rec, "aws:iam/role:Role");
  expect(one(rec, "aws:iam/rolePolicyAttachment:RolePolicyAttachment").inputs.policyArn).toBe("arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore");
  const policy = one(rec, "aws:iam/rolePolicy:RolePolicy");
  expect(policy.inputs.role).toBe(role.inputs.name ?? `${role.name}-role`);
  const doc = fn(policy.inputs.policy) as { Statement: Array<{ Action: string | string[]; Resource: string; Condition?: unknown }> };
  const bucketArn = "arn:aws:s3:::smart-mirror-farm-20260101000000000000000001";
  expect(doc.Statement).toEqual([
    expect.objectContaining({ Effect: "Allow", Action: ["s3:GetObject"], Resource: `${bucketArn}/farm/farm/*` }),
    expect.objectContaining({ Effect: "Allow", Action: "kms:Decrypt", Resource: `arn:aws:kms:eu-west-1:123456789012:key/${one(rec, "aws:kms/key:Key").name}-0000`, Condition: { StringLike: { "kms:ViaService": "s3.*.amazonaws.com" } } }),
    expect.objectContaining({ Effect: "Allow", Action: "ec2:DescribeInstances", Resource: "*" }),
  ]);
  const profile = one(rec, "aws:iam/instanceProfile:InstanceProfile");
  expect(one(rec, "aws:ec2/launchTemplate:LaunchTemplate").inputs.iamInstanceProfile).toEqual({ arn: `arn:aws:iam::123456789012:instance-profile/${profile.name}` });
});

test("the rollout: an SSM Command document running the node script; the association targets the farm's tag, one node at a time, stopping at the first failure, with the current digests", () => {
  const document = one(rec, "aws:ssm/document:Document");
  expect(document.inputs).toMatchObject({ documentType: "Command", documentFormat: "JSON", targetType: "/AWS::EC2::Instance" });
  const content = JSON.parse(String(document.inputs.content)) as { parameters: Record<string, { allowedPattern: string }>; mainSteps: Array<{ action: string; inputs: { runCommand: string[] } }> };
  expect(Object.keys(content.parameters)).toEqual(["bundleUrl", "bundleSha256", "planUrl", "planSha256", "waitReadySeconds", "revision"]);
  expect(content.parameters.planSha256.allowedPattern).toBe("^[0-9a-f]{64}$");
  expect(content.mainSteps[0].action).toBe("aws:runShellScript");
  expect(content.mainSteps[0].inputs.runCommand[0]).toBe("set -- '{{ bundleUrl }}' '{{ bundleSha256 }}' '{{ planUrl }}' '{{ planSha256 }}' '{{ waitReadySeconds }}'");
  expect(content.mainSteps[0].inputs.runCommand.join("\n")).toContain('"$stage/smart-mirror.js" apply --plan-url "$plan_url" --plan-sha256 "$plan_sha"');

  const association = one(rec, "aws:ssm/association:Association");
  const plan = one(rec, "aws:s3/bucketObjectv2:BucketObjectv2", "-farm-plan");
  const planSha = createHash("sha256").update(String(plain(plan.inputs.content))).digest("hex");
  expect(association.inputs).toMatchObject({ name: `${document.name}-document`, maxConcurrency: "1", maxErrors: "0", targets: [{ key: "tag:smart-mirror-farm", values: [`smart-mirror-farm.${STACK}.farm`] }] });
  // The digests are not secret (previews show a plan change); the plan itself is.
  expect(association.inputs.parameters).toMatchObject({ planSha256: planSha, planUrl: `s3://smart-mirror-farm-20260101000000000000000001/farm/farm/plan/${planSha}.json`, waitReadySeconds: "900" });
  // It runs once the objects and the group exist.
  for (const dep of [plan, one(rec, "aws:s3/bucketObjectv2:BucketObjectv2", "-farm-bundle"), one(rec, "aws:autoscaling/group:Group")]) expect(association.dependencies).toContain(dep.urn);
});

test("DNS: alias A records to the load balancer (own name, and the global name latency-routed for the region), evaluating target health", () => {
  const nlb = one(rec, "aws:lb/loadBalancer:LoadBalancer");
  const alias = [{ name: `${nlb.name}-50dc6c495c0c9188.elb.eu-west-1.amazonaws.com`, zoneId: "Z2IFOLAFXWLO4F", evaluateTargetHealth: true }];
  expect(one(rec, "aws:route53/record:Record", "-dns").inputs).toMatchObject({ name: "mirror-dub.example.com", type: "A", aliases: alias });
  expect(one(rec, "aws:route53/record:Record", "-dns-global").inputs).toMatchObject({ name: "git.example.com", type: "A", aliases: alias, setIdentifier: STACK, latencyRoutingPolicies: [{ region: STACK }] });
  expect(all("aws:route53/healthCheck:HealthCheck")).toEqual([]);
});

test("outputs: the single host's, plus nodeCount; hostAddress is the load balancer's name", () => {
  const outputs = rec.outputs.get(rec.rootUrn) ?? {};
  expect(outputs).toMatchObject({ mirrorUrl: "https://mirror-dub.example.com", statusUrl: "https://mirror-dub.example.com/status", globalUrl: "https://git.example.com", nodeCount: 4 });
  expect(String(outputs.hostAddress)).toMatch(/\.elb\.eu-west-1\.amazonaws\.com$/);
  expect(isSecret(outputs.syncPublicKey)).toBe(false);
  expect(fn(outputs.deploySummary)).toMatchObject({ farm: { nodes: 4, associationId: "f4a6c5e2-0000-4000-8000-000000000001" } });
});

test("secrets stay secret: the catalog token, the farm token and the keys never travel in plain text", () => {
  const plan = one(rec, "aws:s3/bucketObjectv2:BucketObjectv2", "-farm-plan");
  const files = (JSON.parse(String(plain(plan.inputs.content))) as { files: Array<{ path: string; contentBase64?: string }> }).files;
  const farmToken = Buffer.from(files.find((f) => f.path.endsWith("farm-token"))?.contentBase64 ?? "", "base64").toString("utf8").trim();
  expect(farmToken.length).toBe(48);
  for (const r of Object.values(life)) {
    expect(leaks(r.recording, [SECRETS.catalogToken, farmToken])).toEqual([]);
    expect(r.stdout + r.stderr).not.toContain(SECRETS.catalogToken);
  }
  expect(isSecret(one(rec, "random:index/randomPassword:RandomPassword").inputs.length)).toBe(false);
});

test("the preview announces what the update registers; a second update registers identical inputs", () => {
  expect(urns(life.preview.recording)).toEqual(urns(life.update.recording));
  expect(registeredInputs(life.again.recording)).toEqual(registeredInputs(life.update.recording));
});
