/**
 * The rolling update: an SSM Command document whose one step is the node's update script
 * (render/farmNode.ts, the same text cloud-init runs at boot), and an association that runs it
 * on the farm's nodes (by tag) ONE AT A TIME (maxConcurrency "1") and stops at the first node
 * that fails (maxErrors "0"): a node fails when its plan cannot be fetched or verified, or when
 * it is not ready again within the wait (`apply --wait-ready`). The association's parameters
 * carry the plan's and the bundle's locations and digests, so a new plan changes them and SSM
 * runs the association again.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { SHA256_PATTERN, SOURCE_PATTERN, ssmRunCommand } from "../render/farmNode";
import { FARM_TAG } from "./plan";
import type { ReleasePointers } from "./storage";

/** How long a node may take to be ready again after its update before the rollout stops. */
export const WAIT_READY_SECONDS = 900;

/** The Command document (schema 2.2), as JSON text (pure). */
export function farmDocumentContent(script: string, description: string): string {
  return JSON.stringify(
    {
      schemaVersion: "2.2",
      description,
      parameters: {
        bundleUrl: { type: "String", description: "s3:// or https:// URL of the daemon bundle", allowedPattern: SOURCE_PATTERN },
        bundleSha256: { type: "String", description: "sha256 of the bundle (hex)", allowedPattern: SHA256_PATTERN },
        planUrl: { type: "String", description: "s3:// or https:// URL of the deploy plan", allowedPattern: SOURCE_PATTERN },
        planSha256: { type: "String", description: "sha256 of the plan (hex)", allowedPattern: SHA256_PATTERN },
        waitReadySeconds: { type: "String", description: "seconds to wait for /status/ready after the apply (0 = do not wait)", default: String(WAIT_READY_SECONDS), allowedPattern: "^[0-9]{1,5}$" },
        revision: { type: "String", description: "deploy.revision: a change runs the update again with unchanged content", default: "", allowedPattern: "^[A-Za-z0-9._:-]{0,64}$" },
      },
      mainSteps: [
        {
          action: "aws:runShellScript",
          name: "applyPlan",
          inputs: {
            runCommand: ssmRunCommand(script, { bundleUrl: "{{ bundleUrl }}", bundleSha256: "{{ bundleSha256 }}", planUrl: "{{ planUrl }}", planSha256: "{{ planSha256 }}", waitReadySeconds: "{{ waitReadySeconds }}" }),
            // Fetch, apply (the daemon drains first) and the wait for readiness.
            timeoutSeconds: String(WAIT_READY_SECONDS + 2700),
          },
        },
      ],
    },
    null,
    1,
  );
}

export interface RolloutInput extends ReleasePointers {
  name: string;
  domainName: string;
  farmId: string;
  script: string;
  revision?: string;
  dependsOn: pulumi.Resource[];
  tags: Record<string, string>;
  parent: pulumi.Resource;
}

export function createRollout(i: RolloutInput): { document: aws.ssm.Document; association: aws.ssm.Association } {
  const { name, parent } = i;
  const document = new aws.ssm.Document(
    `${name}-farm-update`,
    { documentType: "Command", documentFormat: "JSON", targetType: "/AWS::EC2::Instance", content: farmDocumentContent(i.script, `smart-mirror farm ${i.domainName}: fetch, verify and apply the deploy plan`), tags: i.tags },
    { parent },
  );
  const association = new aws.ssm.Association(
    `${name}-farm-rollout`,
    {
      name: document.name,
      targets: [{ key: `tag:${FARM_TAG}`, values: [i.farmId] }],
      parameters: {
        bundleUrl: i.bundleUrl,
        bundleSha256: i.bundleSha256,
        planUrl: i.planUrl,
        planSha256: i.planSha256,
        waitReadySeconds: String(WAIT_READY_SECONDS),
        revision: i.revision ?? "",
      },
      maxConcurrency: "1",
      maxErrors: "0",
      complianceSeverity: "HIGH",
    },
    { parent, dependsOn: i.dependsOn },
  );
  return { document, association };
}
