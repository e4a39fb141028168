/**
 * One stack per region: `pulumi up -s eu-west-1`, `-s us-east-1`, `-s ap-southeast-2`.
 * Every stack builds the same SmartMirror for its region (settings from the table below) and
 * adds its latency record to the shared name git.example.com, so a client anywhere resolves
 * the nearest mirror, and a region that fails its health check drops out of the answers.
 *
 * Stacks are independent: adding a region is a new row and a new stack; removing one is a
 * `pulumi destroy` of its stack (its data volume is kept unless dataVolume.keep is false).
 */
import * as pulumi from "@pulumi/pulumi";
import { SmartMirror, SmartMirrorArgs } from "smart-mirror";

interface RegionSettings {
  /** Short name used in the mirror's DNS name. */
  short: string;
  subnetId: string;
  /** Larger regions get bigger hosts; all above the documented minimum. */
  instanceType: string;
}

const REGIONS: Record<string, RegionSettings> = {
  "eu-west-1": { short: "dub", subnetId: "subnet-0123456789abcdef0", instanceType: "m6i.xlarge" },
  "us-east-1": { short: "iad", subnetId: "subnet-0aaaabbbbccccdddd0", instanceType: "m6i.2xlarge" },
  "ap-southeast-2": { short: "syd", subnetId: "subnet-0fedcba9876543210", instanceType: "c6i.xlarge" },
};

const GLOBAL_NAME = "git.example.com";
const ZONE_ID = "Z0123456789ABCDEFGHIJ";

const region = new pulumi.Config("aws").require("region");
const settings = REGIONS[region];
if (!settings) throw new Error(`no settings for region ${region}; add it to REGIONS in index.ts (known: ${Object.keys(REGIONS).join(", ")})`);

const config = new pulumi.Config();
const args: SmartMirrorArgs = {
  displayName: `${settings.short.toUpperCase()} mirror`,
  domainName: `mirror-${settings.short}.example.com`,
  region,
  primary: {
    url: "https://bitbucket.example.com",
    sshUrl: "ssh://git@bitbucket.example.com:7999",
    hostKeys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMLSLrCXW0pcoxGUW/EJTuGUPZLoE6StPXIw8GBCqaZE"],
    catalogToken: config.requireSecret("catalogToken"),
  },
  host: {
    kind: "aws",
    subnetId: settings.subnetId,
    instanceType: settings.instanceType,
    ssh: { adminCidrs: ["203.0.113.7/32"] },
    tags: { service: "git-mirror", region },
  },
  tls: { kind: "acme" },
  // The global name is on every region's certificate, so TLS holds whichever region answers.
  dns: { zoneId: ZONE_ID, globalName: GLOBAL_NAME },
  mirror: { projects: "ALL" },
  registerAccessKey: config.getSecret("accessKeyToken") ? { token: config.requireSecret("accessKeyToken") } : undefined,
};

const mirror = new SmartMirror(`mirror-${settings.short}`, args);

export const mirrorUrl = mirror.mirrorUrl;
export const globalUrl = mirror.globalUrl;
export const cloneUrlTemplate = mirror.cloneUrlTemplate;
export const statusUrl = mirror.statusUrl;
export const syncPublicKey = mirror.syncPublicKey;
export const hostAddress = mirror.hostAddress;
