/**
 * What happens to a live stack when its arguments change, and to the host when it goes, at
 * the graph level under Pulumi mocks (the commands themselves run for real in
 * deploy/*.test.ts): machine replacement on an OS / architecture / home change, the SSH user of
 * a pinned image, the filesystem grow step, the existing host's delete step, the bundle asset
 * across checkout paths, the ACME solver's region and the health check's path.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { tempDir } from "../testbed/resources";
import type { AwsHostArgs, SmartMirrorArgs } from "./args";
import { SmartMirror } from "./smartMirror";
import { installMocks, optionsRecorder, promiseOf, RecordedResource, settled, unwrap } from "../testbed/pulumiMocks";
import { validationWarnings } from "./validate";
import { ROUTE53_HEALTH_CHECKER_CIDRS } from "./dns/healthCheckers";
import { loginUserOfImage, pinnedImageProblem } from "./host/ami";

const world = installMocks();
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMLSLrCXW0pcoxGUW/EJTuGUPZLoE6StPXIw8GBCqaZE";

let bundlePath: string;
beforeAll(() => {
  bundlePath = path.join(tempDir("lifecycle-bundle"), "smart-mirror.js");
  fs.writeFileSync(bundlePath, "// lifecycle bundle\n");
});
beforeEach(() => {
  world.resources.length = 0;
  world.invokes.length = 0;
});

function args(host: Partial<AwsHostArgs> = {}, over: Partial<SmartMirrorArgs> = {}): SmartMirrorArgs {
  return {
    displayName: "Sydney mirror",
    domainName: "mirror-syd.example.com",
    region: "ap-southeast-2",
    primary: { url: "https://bitbucket.example.com", sshUrl: "ssh://git@bitbucket.example.com:7999", hostKeys: [HOST_KEY], repos: ["PROJ/repo"] },
    host: { kind: "aws", subnetId: "subnet-0abc", ssh: { adminCidrs: ["203.0.113.7/32"] }, ...host },
    tls: { kind: "acme" },
    dns: { zoneId: "Z0123456789", globalName: "git.example.com" },
    deploy: { bundlePath },
    ...over,
  };
}

/** Build under mocks and wait until every child is registered; returns the recorded graph. */
async function graph(a: SmartMirrorArgs): Promise<RecordedResource[]> {
  const { transformation, recorded } = optionsRecorder();
  const m = new SmartMirror("syd", a, { transformations: [transformation] });
  await settled(recorded);
  await promiseOf(m.deploySummary);
  return [...world.resources];
}
const find = (g: RecordedResource[], type: string) => g.filter((r) => r.type === type);
const named = (g: RecordedResource[], name: string) => {
  const r = g.find((x) => x.name === name);
  if (!r) throw new Error(`no resource ${name}; have ${g.map((x) => x.name).join(", ")}`);
  return r;
};
const sshUser = (g: RecordedResource[]) => (unwrap(named(g, "syd-apply").inputs.connection) as { user: string }).user;

describe("changing the machine of a live stack: a clean replacement, never a stop-and-modify", () => {
  test("the default machine keeps its name (no change for existing stacks)", async () => {
    const g = await graph(args());
    expect(find(g, "aws:ec2/instance:Instance").map((r) => r.name)).toEqual(["syd-host"]);
    expect(sshUser(g)).toBe("ubuntu");
  });

  test.each<[string, Partial<AwsHostArgs>, Partial<SmartMirrorArgs>, string, string, string]>([
    ["host.os ubuntu -> debian", { os: "debian-12" }, {}, "syd-host-debian-12-x86_64", "admin", "debian-12-amd64-*"],
    ["m6i -> m7g (x86_64 -> arm64)", { instanceType: "m7g.xlarge" }, {}, "syd-host-ubuntu-2404-arm64", "ubuntu", "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-*"],
    ["deploy.home", {}, { deploy: { home: "/srv/mirror" } }, "syd-host-ubuntu-2404-x86_64-", "ubuntu", "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"],
  ])("%s: a new instance (new URN) from a fresh lookup, the kept volume re-attached to it, the deploy as the new image's user", async (_n, host, over, name, user, imageName) => {
    const g = await graph(args(host, { ...over, deploy: { bundlePath, ...(over.deploy ?? {}) } }));
    const instances = find(g, "aws:ec2/instance:Instance");
    expect(instances).toHaveLength(1);
    expect(instances[0].name.startsWith(name)).toBe(true);
    expect(instances[0].name).not.toBe("syd-host");
    // A fresh lookup of the new OS/architecture feeds the new instance (no old image carried over).
    const lookup = world.invokes.find((i) => i.token === "aws:ec2/getAmi:getAmi");
    expect((lookup?.inputs.filters as Array<{ name: string; values: string[] }>).find((f) => f.name === "name")?.values).toEqual([imageName]);
    // The data volume keeps its name (same resource, protected) and is attached to the new instance.
    expect(named(g, "syd-data").inputs.size).toBe(200);
    expect(named(g, "syd-data-attachment").inputs.instanceId).toBe("i-0123456789abcdef0");
    expect(sshUser(g)).toBe(user);
    // The new machine's cloud-init mounts the kept volume at the (new) home.
    const home = over.deploy?.home ?? "/var/lib/smart-mirror";
    expect(String(unwrap(instances[0].inputs.userData))).toContain(`- ${home}`);
  });

  test("a pinned image decides the SSH user (a Debian AMI with host.os left at its default logs in as admin)", async () => {
    const g = await graph(args({ amiId: "ami-0d000000000000086" }));
    expect(sshUser(g)).toBe("admin");
    expect(named(g, "syd-host").inputs.ami).toBe("ami-0d000000000000086");
  });

  test("a pinned image of the wrong architecture is refused before AWS is asked, naming the fix", () => {
    expect(pinnedImageProblem("ami-0d000000000000a64", "arm64", "m6i.xlarge", "x86_64")).toMatch(
      /host\.amiId ami-0d000000000000a64 is an arm64 image, but host\.instanceType m6i\.xlarge is x86_64: pin an x86_64 image of the same OS, or remove host\.amiId/,
    );
    expect(pinnedImageProblem("ami-0d000000000000a64", "arm64", "m7g.xlarge", "arm64")).toBeUndefined();
    expect(loginUserOfImage("debian-12-arm64-20250101-2000")).toBe("admin");
    expect(loginUserOfImage("ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-20250101")).toBe("ubuntu");
    expect(loginUserOfImage("my-golden-image")).toBeUndefined();
  });
});

describe("data volume growth", () => {
  test("the grow step runs after the volume, again when sizeGiB changes, and asks for the new size", async () => {
    const small = await graph(args());
    const grow = named(small, "syd-grow-fs");
    expect(unwrap(grow.inputs.triggers)).toEqual(["i-0123456789abcdef0", 200]);
    expect(String(grow.inputs.create)).toContain(`want=${200 * 1024 ** 3}`);
    world.resources.length = 0;
    const big = await graph(args({ dataVolume: { sizeGiB: 300 } }));
    expect(named(big, "syd-data").inputs.size).toBe(300);
    expect(unwrap(named(big, "syd-grow-fs").inputs.triggers)).toEqual(["i-0123456789abcdef0", 300]);
    expect(String(named(big, "syd-grow-fs").inputs.create)).toContain(`want=${300 * 1024 ** 3}`);
  });
});

describe("pulumi destroy", () => {
  const existing = (): SmartMirrorArgs =>
    args({}, { host: { kind: "existing", address: "mirror.internal.example.com", privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n", hostKey: HOST_KEY }, dns: undefined, tls: { kind: "privateCa", clientsTrustPrivateCa: true } });

  test("an existing host gets a delete step (stop the daemon, remove its secrets) and nothing runs on create", async () => {
    const g = await graph(existing());
    const remove = named(g, "syd-remove");
    expect(remove.inputs.create).toBeUndefined();
    expect(String(remove.inputs.delete)).toMatch(/systemctl disable --now smart-mirror\.service/);
    expect(String(remove.inputs.delete)).toContain("/var/lib/smart-mirror/shared/secrets");
    expect(String(remove.inputs.delete)).toContain("/var/lib/smart-mirror-deploy");
    expect(find(g, "command:remote:Command").some((r) => r.name === "syd-grow-fs")).toBe(false);
  });

  test("an EC2 host has none (the instance is terminated; the kept volume is the README's subject)", async () => {
    const g = await graph(args());
    expect(g.some((r) => r.name === "syd-remove")).toBe(false);
  });
});

test("Debian 12 hosts: a warning that Session Manager will not work, with the fix", () => {
  expect(validationWarnings(args({ os: "debian-12" }))).toEqual([expect.stringMatching(/Debian's AMIs have no SSM agent.*Fix: use host\.os "ubuntu-24\.04".*or pin an image with amazon-ssm-agent/)]);
  expect(validationWarnings(args())).toEqual([]);
});

describe("the bundle asset", () => {
  test("two checkouts at different paths with the same bundle register identical inputs", async () => {
    const other = path.join(tempDir("another checkout"), "dist", "smart-mirror.js");
    fs.mkdirSync(path.dirname(other), { recursive: true });
    fs.copyFileSync(bundlePath, other);
    const a = named(await graph(args()), "syd-bundle").inputs;
    world.resources.length = 0;
    const b = named(await graph(args({}, { deploy: { bundlePath: other } })), "syd-bundle").inputs;
    // The asset's path is what the engine compares (with its hash); JSON shows neither.
    const assetPath = async (inputs: Record<string, unknown>) => (inputs.source as pulumi.asset.FileAsset).path;
    expect(await assetPath(b)).toBe(await assetPath(a));
    expect(await assetPath(a)).not.toContain(path.dirname(bundlePath));
    expect(unwrap(b.triggers)).toEqual(unwrap(a.triggers));
    expect(JSON.stringify(unwrap(b))).toBe(JSON.stringify(unwrap(a)));
  });
});

describe("ACME's route53 solver gets a region", () => {
  const solver = (g: RecordedResource[]) => (unwrap(named(g, "syd-cert").inputs.dnsChallenges) as Array<{ config: Record<string, string> }>)[0].config;
  test("the component's region", async () => {
    expect(solver(await graph(args()))).toEqual({ AWS_REGION: "ap-southeast-2", AWS_HOSTED_ZONE_ID: "Z0123456789" });
  });
  test("no region anywhere: us-east-1 (Route53 is global; lego only needs one to start)", async () => {
    expect(solver(await graph(args({}, { region: undefined, dns: { zoneId: "Z0123456789" } }))).AWS_REGION).toBe("us-east-1");
  });
  test("an AWS_REGION in tls.route53Config wins", async () => {
    expect(solver(await graph(args({}, { tls: { kind: "acme", route53Config: { AWS_REGION: "eu-central-1" } } }))).AWS_REGION).toBe("eu-central-1");
  });
});

describe("the latency record's health check", () => {
  test("probes readiness (/status must say ready:true; not while starting, initially syncing or in ERROR), not liveness", async () => {
    const hc = find(await graph(args()), "aws:route53/healthCheck:HealthCheck");
    expect(hc).toHaveLength(1);
    expect(hc[0].inputs).toEqual(expect.objectContaining({ type: "HTTPS_STR_MATCH", searchString: '"ready":true', port: 443, resourcePath: "/status", fqdn: "mirror-syd.example.com" }));
  });

  test("validation warns when allowedCidrs keep Route53's health checkers out, and names the ranges to add", () => {
    expect(validationWarnings(args())).toEqual([]);
    const w = validationWarnings(args({ allowedCidrs: ["10.0.0.0/8"] }));
    expect(w).toHaveLength(1);
    expect(w[0]).toMatch(/dns\.globalName git\.example\.com: host\.allowedCidrs keeps 17 of Route53's 17 health-checker ranges out/);
    expect(w[0]).toContain("15.177.0.0/18");
    expect(w[0]).toContain("ROUTE53_HEALTHCHECKS");
    // With the ranges added (or a covering block) the warning goes.
    expect(validationWarnings(args({ allowedCidrs: ["10.0.0.0/8", ...ROUTE53_HEALTH_CHECKER_CIDRS] }))).toEqual([]);
    expect(validationWarnings(args({ allowedCidrs: ["10.0.0.0/8", "0.0.0.0/1", "128.0.0.0/1"] }))).toEqual([]);
    // Partly covered: only the missing ones are named.
    const partial = validationWarnings(args({ allowedCidrs: ["15.177.0.0/16", "54.0.0.0/8"] }))[0];
    expect(partial).toMatch(/keeps 3 of/);
    expect(partial).toContain("176.34.159.192/26, 177.71.207.128/26, 107.23.255.0/26");
    // Without a global name there is no health check to starve.
    expect(validationWarnings(args({ allowedCidrs: ["10.0.0.0/8"] }, { dns: { zoneId: "Z0123456789" } }))).toEqual([]);
  });
});

