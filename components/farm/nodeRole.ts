/**
 * The farm node's IAM role: Session Manager and Run Command (AmazonSSMManagedInstanceCore),
 * reading its own farm's prefix of the deploy bucket and decrypting with the farm's key, and
 * listing instances for the peers file. Nothing else: a node cannot read another farm's plan,
 * write to the bucket, or change anything in EC2.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { ssmInstanceRole } from "../host/instanceRole";

export interface NodePolicyInput {
  bucketArn: string;
  /** The farm's prefix in the bucket, ending with "/". */
  prefix: string;
  keyArn: string;
}

/** The role's own policy (pure, so its scope is easy to read and test). */
export function nodePolicyDocument(i: NodePolicyInput): string {
  if (!i.prefix.endsWith("/") || i.prefix.includes("*")) throw new Error(`node policy: prefix ${JSON.stringify(i.prefix)} must end with "/" and hold no wildcard`);
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: [
      // The plan (secrets) and the bundle: only this farm's objects, only reading (nodes fetch by
      // key, never by version id: no GetObjectVersion).
      { Sid: "ReadFarmObjects", Effect: "Allow", Action: ["s3:GetObject"], Resource: `${i.bucketArn}/${i.prefix}*` },
      // The objects are SSE-KMS: S3 decrypts with the node's permission, and only on S3's behalf.
      { Sid: "DecryptFarmObjects", Effect: "Allow", Action: "kms:Decrypt", Resource: i.keyArn, Condition: { StringLike: { "kms:ViaService": "s3.*.amazonaws.com" } } },
      // The peers file: which instances of the farm run (Describe* has no resource-level scope).
      { Sid: "ListPeers", Effect: "Allow", Action: "ec2:DescribeInstances", Resource: "*" },
    ],
  });
}

export interface NodeRoleInput {
  name: string;
  domainName: string;
  bucketArn: pulumi.Input<string>;
  prefix: string;
  keyArn: pulumi.Input<string>;
  tags: Record<string, string>;
  parent: pulumi.Resource;
}

export function createNodeRole(i: NodeRoleInput): { role: aws.iam.Role; profile: aws.iam.InstanceProfile } {
  const { name, parent, tags } = i;
  const { role, profile } = ssmInstanceRole(
    { role: `${name}-node-role`, ssmAttachment: `${name}-node-ssm`, profile: `${name}-node-profile` },
    `smart-mirror farm ${i.domainName}: SSM, its farm's deploy objects, peer listing`,
    tags,
    parent,
  );
  new aws.iam.RolePolicy(
    `${name}-node-policy`,
    { role: role.name, policy: pulumi.all([i.bucketArn, i.keyArn]).apply(([bucketArn, keyArn]) => nodePolicyDocument({ bucketArn, prefix: i.prefix, keyArn })) },
    { parent },
  );
  return { role, profile };
}
