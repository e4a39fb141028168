/**
 * A company platform stack that already owns a VPC, a bastion, a private Route53 zone and a
 * company CA: it imports SmartMirror like any other component and hands it its own
 * aws.Provider (assumed deploy role, default tags). Every AWS resource of the mirror, and its
 * look-ups, go through that provider; nothing uses ambient credentials or the default region.
 */
import * as fs from "node:fs";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { SmartMirror } from "smart-mirror";

const config = new pulumi.Config();

const platform = new aws.Provider("platform", {
  region: "eu-central-1",
  assumeRoles: [{ roleArn: config.require("deployRoleArn"), sessionName: "smart-mirror" }],
  defaultTags: { tags: { owner: "platform", service: "git-mirror" } },
});

// The existing network: the platform VPC and its private subnets.
const vpc = aws.ec2.getVpcOutput({ tags: { Name: config.require("vpcName") } }, { provider: platform });
const privateSubnets = aws.ec2.getSubnetsOutput(
  { filters: [{ name: "vpc-id", values: [vpc.id] }, { name: "tag:tier", values: ["private"] }] },
  { provider: platform },
);
const zone = aws.route53.getZoneOutput({ name: "platform.example.com", privateZone: true }, { provider: platform });

const mirror = new SmartMirror(
  "git-mirror",
  {
    displayName: "Platform mirror (Frankfurt)",
    domainName: "git.platform.example.com",
    region: "eu-central-1",
    primary: {
      url: "https://bitbucket.example.com",
      sshUrl: "ssh://git@bitbucket.example.com:7999",
      hostKeys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMLSLrCXW0pcoxGUW/EJTuGUPZLoE6StPXIw8GBCqaZE"],
      catalogToken: config.requireSecret("catalogToken"),
      // The primary's certificate comes from the company CA as well.
      caCertificatesPem: fs.readFileSync("company-ca.pem", "utf8"),
    },
    host: {
      kind: "aws",
      subnetId: privateSubnets.ids[0],
      instanceType: "m6i.2xlarge",
      // Only the company network clones; nothing is reachable from the internet.
      allowedCidrs: ["10.0.0.0/8"],
      elasticIp: false,
      ssh: {
        fromSecurityGroupIds: [config.require("bastionSecurityGroupId")],
        bastion: { host: config.require("bastionHost"), user: "ec2-user", privateKey: config.requireSecret("bastionKey") },
      },
    },
    // A certificate the company CA issued for git.platform.example.com (every client trusts that CA).
    tls: { kind: "provided", certificatePem: fs.readFileSync("mirror.crt", "utf8"), privateKeyPem: config.requireSecret("tlsKey") },
    dns: { zoneId: zone.zoneId },
    mirror: { projects: ["PLAT", "INFRA"], auth: "primary" },
  },
  { providers: [platform] },
);

export const url = mirror.mirrorUrl;
export const cloneUrlTemplate = mirror.cloneUrlTemplate;
export const syncPublicKey = mirror.syncPublicKey;
