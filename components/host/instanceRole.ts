/**
 * An EC2 instance role with Session Manager and Run Command (AmazonSSMManagedInstanceCore) and
 * its instance profile: the single host's whole role, and a farm node's before its own policy.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

export interface InstanceRoleNames {
  role: string;
  ssmAttachment: string;
  profile: string;
}

export function ssmInstanceRole(names: InstanceRoleNames, description: string, tags: Record<string, string>, parent: pulumi.Resource): { role: aws.iam.Role; profile: aws.iam.InstanceProfile } {
  const partition = aws.getPartitionOutput({}, { parent }).partition;
  const role = new aws.iam.Role(
    names.role,
    {
      description,
      assumeRolePolicy: JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }] }),
      tags,
    },
    { parent },
  );
  new aws.iam.RolePolicyAttachment(names.ssmAttachment, { role: role.name, policyArn: pulumi.interpolate`arn:${partition}:iam::aws:policy/AmazonSSMManagedInstanceCore` }, { parent });
  const profile = new aws.iam.InstanceProfile(names.profile, { role: role.name, tags }, { parent });
  return { role, profile };
}
