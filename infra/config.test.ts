import * as fs from "node:fs";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { validateSmartMirrorArgs } from "../components/validate";
import type { AwsHostArgs } from "../components/args";
import { argsFromConfig, AwsHostConfig, SECRET_KEYS, StackConfig, StackConfigError, StackSecrets } from "./config";
import { readStackConfig, REPO_ROOT, stackNames } from "../testbed/stackFiles";

/** The stack file's smart-mirror:* keys as the StackConfig object the program builds. */
function stackConfig(stack: string): StackConfig {
  const raw = readStackConfig(stack);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) if (k.startsWith("smart-mirror:")) out[k.slice("smart-mirror:".length)] = v;
  return out as unknown as StackConfig;
}

const ALL_SECRETS: StackSecrets = {
  catalogToken: "BBDC-token",
  webhookSecret: "whsec-0123456789abcdef",
  accessKeyToken: "admin-token",
  bastionPrivateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nYmFzdGlvbg==\n-----END OPENSSH PRIVATE KEY-----\n",
};

describe("example stack files", () => {
  test("there is one per documented region", () => {
    expect(stackNames()).toEqual(["ap-southeast-2", "eu-west-1"]);
  });

  test.each(stackNames())("Pulumi.%s.yaml builds valid SmartMirror arguments", (stack) => {
    const args = argsFromConfig(stackConfig(stack), ALL_SECRETS);
    expect(validateSmartMirrorArgs(args)).toEqual([]);
    expect(args.region).toBe(stack);
    expect(readStackConfig(stack)["aws:region"]).toBe(stack);
  });

  test.each(stackNames())("Pulumi.%s.yaml holds no secret in plain text", (stack) => {
    const raw = readStackConfig(stack);
    for (const key of SECRET_KEYS) expect(raw[`smart-mirror:${key}`]).toBeUndefined();
    const text = fs.readFileSync(path.join(REPO_ROOT, `Pulumi.${stack}.yaml`), "utf8");
    expect(text).not.toMatch(/PRIVATE KEY/);
  });

  test("every config key used in a stack file is documented in docs/stack-config.md", () => {
    const doc = fs.readFileSync(path.join(REPO_ROOT, "docs", "stack-config.md"), "utf8");
    const keys = new Set<string>();
    const walk = (prefix: string, v: unknown) => {
      keys.add(prefix);
      if (v && typeof v === "object" && !Array.isArray(v) && !prefix.endsWith("tags") && !prefix.endsWith("extraProperties")) {
        for (const [k, x] of Object.entries(v)) walk(`${prefix}.${k}`, x);
      }
    };
    for (const stack of stackNames()) for (const [k, v] of Object.entries(readStackConfig(stack))) walk(k, v);
    const missing = [...keys].filter((k) => !doc.includes(`\`${k}\``));
    expect(missing).toEqual([]);
    for (const key of SECRET_KEYS) expect(doc).toContain(`\`smart-mirror:${key}\``);
  });

  test("Pulumi.yaml names the program and the TypeScript runtime", () => {
    const project = yaml.load(fs.readFileSync(path.join(REPO_ROOT, "Pulumi.yaml"), "utf8")) as Record<string, unknown>;
    expect(project.name).toBe("smart-mirror");
    expect(project.main).toBe("infra/index.ts");
    expect(project.runtime).toEqual({ name: "nodejs", options: { typescript: true, packagemanager: "npm" } });
    expect(fs.existsSync(path.join(REPO_ROOT, project.main as string))).toBe(true);
  });
});

describe("argsFromConfig", () => {
  const base = () => stackConfig("eu-west-1");

  test("missing secrets are named with the command that sets them", () => {
    const c = base();
    c.host = { kind: "existing", address: "h.example.com", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMLSLrCXW0pcoxGUW/EJTuGUPZLoE6StPXIw8GBCqaZE", bastion: { host: "b", user: "u" } };
    c.tls = { kind: "provided", certificatePem: "pem" };
    c.mirror = { auth: "tokens" };
    try {
      argsFromConfig(c, {});
      throw new Error("expected StackConfigError");
    } catch (e) {
      expect(e).toBeInstanceOf(StackConfigError);
      const problems = (e as StackConfigError).problems;
      expect(problems.map((p) => p.split(" ")[0]).sort()).toEqual(
        ["smart-mirror:bastionPrivateKey", "smart-mirror:catalogToken", "smart-mirror:cloneTokens", "smart-mirror:hostPrivateKey", "smart-mirror:tlsPrivateKeyPem"].sort(),
      );
      for (const p of problems) expect(p).toMatch(/pulumi config set --secret smart-mirror:\w+/);
    }
  });

  test("secrets land where the component expects them; the registration runs only with its token", () => {
    const c = base();
    c.mirror = { auth: "tokens" };
    const args = argsFromConfig(c, { catalogToken: "cat", cloneTokens: "a, b\nc", webhookSecret: "wh" });
    expect(args.primary.catalogToken).toBe("cat");
    expect(args.mirror?.cloneTokens).toEqual(["a", "b", "c"]);
    expect(args.mirror?.webhookSecret).toBe("wh");
    expect(args.registerAccessKey).toBeUndefined();
    const withToken = argsFromConfig(base(), { catalogToken: "cat", accessKeyToken: "adm" });
    expect(withToken.registerAccessKey).toEqual({ projects: ["PROJ", "OPS"], token: "adm" });
  });

  test("mirror.events: the URLs from the config, the secret from the eventsSecret secret key (required)", () => {
    const c = base();
    c.mirror = { events: { urls: ["https://ci.example.com/h"] } };
    expect(() => argsFromConfig(c, { catalogToken: "cat" })).toThrow(/smart-mirror:eventsSecret is not set.*pulumi config set --secret smart-mirror:eventsSecret/);
    const args = argsFromConfig(c, { catalogToken: "cat", eventsSecret: "evsec-0123456789abcdef" });
    expect(args.mirror?.events).toEqual({ urls: ["https://ci.example.com/h"], secret: "evsec-0123456789abcdef" });
    expect(argsFromConfig(base(), { catalogToken: "cat" }).mirror?.events).toBeUndefined();
  });

  test("a fixed repository list needs no catalog token; the region defaults to aws:region", () => {
    const c = base();
    c.primary = { ...c.primary, repos: ["PROJ/app"] };
    delete c.region;
    const args = argsFromConfig(c, {}, { region: "eu-west-1" });
    expect(args.primary.catalogToken).toBeUndefined();
    expect(args.region).toBe("eu-west-1");
  });

  test("farm: the stack key becomes the component's farm; a host without ssh stays without it, so the farm validates", () => {
    const c = base();
    const { subnetId: _subnet, ssh: _ssh, ...host } = c.host as AwsHostConfig;
    c.host = { ...host, kind: "aws" };
    c.farm = { nodes: 3, subnetIds: ["subnet-0aaaabbbbccccdddd", "subnet-0eeeeffff00001111"] };
    const args = argsFromConfig(c, { catalogToken: "cat" });
    expect(args.farm).toEqual(c.farm);
    expect((args.host as AwsHostArgs).ssh).toBeUndefined();
    // The file's single-host settings a farm cannot use are named, each with its fix.
    expect(validateSmartMirrorArgs(args).map((p) => p.split(":")[0])).toEqual(["host.elasticIp", "host.dataVolume.keep", "deploy.sshTimeoutSeconds"]);
    const { elasticIp: _eip, dataVolume, ...farmHost } = c.host as AwsHostConfig;
    c.host = { ...farmHost, kind: "aws", dataVolume: { ...dataVolume, keep: undefined } };
    c.deploy = { ...c.deploy, sshTimeoutSeconds: undefined };
    expect(validateSmartMirrorArgs(argsFromConfig(c, { catalogToken: "cat" }))).toEqual([]);
    // The single host of the same file keeps its SSH access.
    expect((argsFromConfig(base(), { catalogToken: "cat" }).host as AwsHostArgs).ssh?.adminCidrs).toBeDefined();
  });
});
