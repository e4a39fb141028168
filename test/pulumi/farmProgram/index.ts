/**
 * A mirror farm in eu-west-1: 4 nodes in three subnets behind a Network Load Balancer, its
 * own name and the latency-routed global name in Route53 (test/pulumi/farm.test.ts).
 */
import * as pulumi from "@pulumi/pulumi";
import { SmartMirror } from "../../../components/smartMirror";

const config = new pulumi.Config();

const mirror = new SmartMirror("farm", {
  displayName: "Dublin mirror farm",
  domainName: "mirror-dub.example.com",
  region: "eu-west-1",
  primary: {
    url: "https://bitbucket.example.com",
    sshUrl: "ssh://git@bitbucket.example.com:7999",
    hostKeys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMLSLrCXW0pcoxGUW/EJTuGUPZLoE6StPXIw8GBCqaZE"],
    catalogToken: config.requireSecret("catalogToken"),
  },
  host: { kind: "aws", instanceType: "m6i.large", allowedCidrs: ["10.0.0.0/8"], dataVolume: { sizeGiB: 300 } },
  tls: { kind: "acme" },
  dns: { zoneId: "Z0123456789ABCDEFGHIJ", globalName: "git.example.com" },
  farm: { nodes: 4, subnetIds: ["subnet-0aaaabbbbccccdddd", "subnet-0eeeeffff00001111", "subnet-0123412341234abcd"], drainSeconds: 600 },
});

export const mirrorUrl = mirror.mirrorUrl;
export const statusUrl = mirror.statusUrl;
export const cloneUrlTemplate = mirror.cloneUrlTemplate;
export const syncPublicKey = mirror.syncPublicKey;
export const hostAddress = mirror.hostAddress;
export const globalUrl = mirror.globalUrl;
export const nodeCount = mirror.nodeCount;
export const deploySummary = mirror.deploySummary;
