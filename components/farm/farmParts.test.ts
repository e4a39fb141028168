/**
 * The farm's pure parts: the node policy's scope, the SSM document's parameter patterns against
 * the URLs and digests the component really passes, the health check and the quiet period, the
 * staged bundle path the node script and the plan agree on.
 */
import { createHash } from "node:crypto";
import { stagedPaths } from "../deploy/commands";
import { STAGING_DIR } from "../deploy/layout";
import { renderFarmNodeScript } from "../render/farmNode";
import { targetHealthCheck } from "./loadBalancer";
import { nodePolicyDocument } from "./nodeRole";
import { farmDocumentContent } from "./rollout";
import { objectKeys } from "./storage";
import { quietPeriodSeconds } from "./validateFarm";

const sha = (s: string) => createHash("sha256").update(s).digest("hex");

test("the node policy reads only the farm's prefix; a prefix that would widen it is refused", () => {
  const doc = JSON.parse(nodePolicyDocument({ bucketArn: "arn:aws:s3:::b", prefix: "farm/syd/", keyArn: "arn:aws:kms:eu-west-1:1:key/k" })) as { Statement: Array<{ Action: unknown; Resource: string }> };
  expect(doc.Statement.map((s) => [s.Action, s.Resource])).toEqual([
    [["s3:GetObject"], "arn:aws:s3:::b/farm/syd/*"],
    ["kms:Decrypt", "arn:aws:kms:eu-west-1:1:key/k"],
    ["ec2:DescribeInstances", "*"],
  ]);
  expect(JSON.stringify(doc)).not.toMatch(/s3:(Put|Delete|List)|"s3:\*"|ec2:(Run|Terminate|Create|Modify)/);
  // "farm/syd" without the slash would also match farm/sydney/...
  expect(() => nodePolicyDocument({ bucketArn: "arn:aws:s3:::b", prefix: "farm/syd", keyArn: "k" })).toThrow(/must end with "\/"/);
  expect(() => nodePolicyDocument({ bucketArn: "arn:aws:s3:::b", prefix: "farm/*/", keyArn: "k" })).toThrow(/no wildcard/);
});

test("the SSM document's allowedPatterns accept the component's own URLs and digests, and refuse a shell quote", () => {
  const doc = JSON.parse(farmDocumentContent(renderFarmNodeScript({ stageDir: STAGING_DIR }), "d")) as { parameters: Record<string, { allowedPattern: string; default?: string }> };
  const ok = (p: string, v: string) => new RegExp(doc.parameters[p].allowedPattern).test(v);
  const keys = objectKeys("farm/syd/", sha("plan"), sha("bundle"));
  expect(ok("planUrl", `s3://smart-mirror-farm-20260101000000000000000001/${keys.plan}`)).toBe(true);
  expect(ok("bundleUrl", `s3://smart-mirror-farm-20260101000000000000000001/${keys.bundle}`)).toBe(true);
  expect(ok("planUrl", "https://plans.example.com:8443/farm/plan.json?v=2")).toBe(true);
  expect(ok("planUrl", "s3://b/x'; rm -rf / #")).toBe(false);
  expect(ok("planUrl", "file:///etc/passwd")).toBe(false);
  expect(ok("planSha256", sha("plan"))).toBe(true);
  expect(ok("planSha256", sha("plan").toUpperCase())).toBe(false);
  expect(ok("waitReadySeconds", doc.parameters.waitReadySeconds.default as string)).toBe(true);
  expect(ok("revision", "")).toBe(true);
  expect(ok("revision", "2026-01-01.a")).toBe(true);
  expect(ok("revision", "$(id)")).toBe(false);
});

test("health check and quiet period: the load balancer stops sending before the daemon's quiet period ends", () => {
  expect(targetHealthCheck({})).toMatchObject({ protocol: "HTTPS", path: "/status/ready", matcher: "200", interval: 10, timeout: 9, unhealthyThreshold: 2 });
  expect(targetHealthCheck({ healthCheck: { intervalSeconds: 5 } }).timeout).toBe(4);
  expect(targetHealthCheck({ healthCheck: { intervalSeconds: 60 } }).timeout).toBe(10);
  expect(quietPeriodSeconds({})).toBe(30);
  expect(quietPeriodSeconds({ healthCheck: { intervalSeconds: 30, unhealthyThreshold: 3 } })).toBe(120);
  for (const [interval, threshold] of [[5, 2], [10, 2], [30, 3], [60, 9]]) {
    const hc = targetHealthCheck({ healthCheck: { intervalSeconds: interval, unhealthyThreshold: threshold } });
    expect(quietPeriodSeconds({ healthCheck: { intervalSeconds: interval, unhealthyThreshold: threshold } })).toBeGreaterThan((hc.interval as number) * (hc.unhealthyThreshold as number));
  }
});

test("the node script puts the verified bundle where the plan installs it from", () => {
  expect(stagedPaths(STAGING_DIR).bundlePath).toBe(`${STAGING_DIR}/smart-mirror.js`);
  expect(renderFarmNodeScript({ stageDir: STAGING_DIR })).toContain(`stage=${STAGING_DIR}\n`);
  expect(renderFarmNodeScript({ stageDir: STAGING_DIR })).toContain('mv -f "$tmp" "$stage/smart-mirror.js"');
});
