/**
 * The package as a Pulumi plugin, started exactly as the engine starts it (test/provider/plugin.ts)
 * from an unrelated working directory, asked for its schema over gRPC: SmartMirror with its
 * inputs in the any-language shape, its outputs, and the secret inputs marked secret. This is
 * what `pulumi package add` turns into Python, Go, .NET and YAML SDKs.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as yaml from "js-yaml";
import { GetSchemaRequest, type GetSchemaResponse } from "@pulumi/pulumi/proto/provider_pb";
import { tempDir } from "../../testbed/resources";
import { SMART_MIRROR_OUTPUTS } from "../../provider/smartMirrorProvider";
import { secretPaths, type PackageSchema } from "../../provider/schemaSecrets";
import { validateSmartMirrorArgs } from "../../components/validate";
import type { SchemaProperty } from "../../provider/schemaSecrets";
import { call, PACKAGE_ROOT, startPlugin, type RunningPlugin } from "./plugin";

const TOKEN = "smart-mirror:index:SmartMirror";
const T = (name: string) => `smart-mirror:index:${name}`;
const ref = (name: string) => `#/types/${T(name)}`;

let plugin: RunningPlugin;
let schema: PackageSchema;

beforeAll(async () => {
  // The engine runs plugins from the user's project folder: one with no tsconfig.json or package.json.
  plugin = await startPlugin(PACKAGE_ROOT, tempDir("provider-user-project"));
  const req = new GetSchemaRequest();
  req.setVersion(0);
  const res = await call<GetSchemaRequest, GetSchemaResponse>(plugin.client.getSchema.bind(plugin.client), req);
  schema = JSON.parse(res.getSchema()) as PackageSchema;
}, 300_000);

afterAll(async () => {
  await plugin?.stop();
});

test("the plugin is declared for the nodejs runtime, and main is the provider entry", () => {
  expect(fs.readFileSync(path.join(PACKAGE_ROOT, "PulumiPlugin.yaml"), "utf8")).toMatch(/^runtime: nodejs$/m);
  const pkg = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, "package.json"), "utf8")) as { main: string; version: string };
  expect(pkg.main.replace(/\.(ts|js)$/, "")).toMatch(/provider\/index$/);
  expect(schema.name).toBe("smart-mirror");
  expect(schema.version).toBe(pkg.version);
});

test("SmartMirror is a component with every input of the any-language shape", () => {
  const r = schema.resources[TOKEN];
  expect(r).toMatchObject({ isComponent: true });
  expect(Object.keys(r.inputProperties ?? {}).sort()).toEqual(["alarms", "deploy", "displayName", "dns", "domainName", "farm", "host", "mirror", "primary", "region", "registerAccessKey", "tls"]);
  expect(r.requiredInputs).toEqual(["displayName", "domainName", "host", "primary", "tls"]);
  expect(r.inputProperties?.host).toMatchObject({ $ref: ref("Host"), plain: true });
  expect(r.inputProperties?.tls).toMatchObject({ $ref: ref("Tls"), plain: true });
  // A farm decides which resources exist (an Auto Scaling group instead of one instance).
  expect(r.inputProperties?.farm).toMatchObject({ $ref: ref("Farm"), plain: true });
  // A plain value decides the certificate and URLs; displayName may come from another resource.
  expect(r.inputProperties?.domainName).toMatchObject({ type: "string", plain: true });
  expect(r.inputProperties?.displayName).toEqual(expect.objectContaining({ type: "string" }));
  expect(r.inputProperties?.displayName).not.toHaveProperty("plain");
  for (const [name, def] of Object.entries(r.inputProperties ?? {})) expect([name, typeof def.description]).toEqual([name, "string"]);
});

test("host: one optional object per kind; tls: one per kind", () => {
  expect(schema.types[T("Host")]).toMatchObject({ type: "object", required: [], properties: { aws: { $ref: ref("AwsHost") }, existing: { $ref: ref("ExistingHost") } } });
  expect(schema.types[T("Tls")]).toMatchObject({
    type: "object",
    required: [],
    properties: { acme: { $ref: ref("AcmeTls") }, provided: { $ref: ref("ProvidedTls") }, privateCa: { $ref: ref("PrivateCaTls") } },
  });
  // subnetId and ssh are required for a single host only (a farm uses farm.subnetIds and no SSH): validation says so.
  expect(schema.types[T("AwsHost")].required).toEqual([]);
  expect(schema.types[T("Farm")].required).toEqual(["subnetIds"]);
  expect(schema.types[T("Farm")].properties?.subnetIds).toMatchObject({ type: "array", items: { type: "string" } });
  expect(schema.types[T("ExistingHost")].required).toEqual(["address", "hostKey", "privateKey"]);
  expect(schema.types[T("ProvidedTls")].required).toEqual(["certificatePem", "privateKeyPem"]);
  expect(schema.types[T("PrivateCaTls")].required).toEqual(["clientsTrustPrivateCa"]);
  expect(schema.types[T("AcmeTls")].required).toEqual([]);
  // No `kind` in the any-language shape.
  for (const t of ["AwsHost", "ExistingHost", "AcmeTls", "ProvidedTls", "PrivateCaTls"]) expect(schema.types[T(t)].properties).not.toHaveProperty("kind");
});

test("string choices are enums; lists, maps and Input lists keep their element types", () => {
  const values = (name: string) => schema.types[T(name)].enum?.map((e) => e.value);
  expect(values("HostOs")).toEqual(["ubuntu-24.04", "debian-12"]);
  expect(values("DataVolumeType")).toEqual(["gp3", "gp2", "io1", "io2", "st1"]);
  expect(values("MirrorAuth")).toEqual(["primary", "anonymous", "tokens"]);
  expect(values("LogLevel")).toEqual(["fatal", "error", "warn", "info", "debug", "trace", "silent"]);
  expect(schema.types[T("AwsHost")].properties?.os).toMatchObject({ $ref: ref("HostOs") });
  expect(schema.types[T("DataVolume")].properties?.type).toMatchObject({ $ref: ref("DataVolumeType") });
  const mirror = schema.types[T("MirrorSettings")].properties ?? {};
  expect(mirror.projects).toMatchObject({ type: "array", items: { type: "string" } });
  expect(mirror.auth).toMatchObject({ $ref: ref("MirrorAuth") });
  expect(mirror.extraProperties).toMatchObject({ type: "object", additionalProperties: { type: "string" } });
  expect(mirror.cloneTokens).toMatchObject({ type: "array", items: { type: "string" } });
  expect(schema.types[T("AwsHost")].properties?.tags).toMatchObject({ type: "object", additionalProperties: { type: "string" } });
  expect(schema.types[T("SshAccess")].properties?.fromSecurityGroupIds).toMatchObject({ type: "array", items: { type: "string" } });
  expect(schema.types[T("Primary")].properties?.hostKeys).toMatchObject({ type: "array", items: { type: "string" } });
});

test("outputs: the stack-output contract, optional ones not required, none secret", () => {
  const r = schema.resources[TOKEN];
  expect(Object.keys(r.properties ?? {}).sort()).toEqual([...SMART_MIRROR_OUTPUTS].sort());
  for (const o of ["mirrorUrl", "cloneUrlTemplate", "statusUrl", "syncPublicKey", "hostAddress", "propertiesText"]) expect(r.properties?.[o]).toMatchObject({ type: "string" });
  expect(r.required).toEqual(["cloneUrlTemplate", "deploySummary", "hostAddress", "mirrorUrl", "nodeCount", "propertiesText", "statusUrl", "syncPublicKey"]);
  expect(r.properties?.nodeCount).toMatchObject({ type: "number" });
  // The outputs carry no secret: propertiesText names secret files, it does not hold them.
  for (const def of Object.values(r.properties ?? {})) expect(def.secret).toBeUndefined();
});

test("secrets: private keys, tokens, the webhook secret and clone tokens are secret, nothing else", () => {
  expect(secretPaths(schema)).toEqual([
    "AcmeTls.route53Config",
    "Bastion.privateKey",
    "ExistingHost.privateKey",
    "MirrorEvents.secret",
    "MirrorSettings.cloneTokens",
    "MirrorSettings.webhookSecret",
    "Primary.catalogToken",
    "ProvidedTls.privateKeyPem",
    "RegisterAccessKey.token",
  ]);
});

test("the schema is what the analyzer derives now (no stale copy): every argument type is described", () => {
  expect(Object.keys(schema.types).sort()).toEqual(
    ["AcmeTls", "Alarms", "AwsHost", "Bastion", "DataVolume", "DataVolumeType", "Deploy", "Dns", "ExistingHost", "Farm", "FarmHealthCheck", "Host", "HostOs", "LogLevel", "MirrorAuth", "MirrorEvents", "MirrorPush", "MirrorSettings", "Primary", "PrivateCaTls", "ProvidedTls", "RegisterAccessKey", "SshAccess", "Tls"].map(T),
  );
});

describe("examples/yaml", () => {
  interface YamlProgram {
    packages: Record<string, string>;
    resources: Record<string, { type: string; properties: Record<string, unknown> }>;
    outputs: Record<string, string>;
  }
  const program = () => yaml.load(fs.readFileSync(path.join(PACKAGE_ROOT, "examples", "yaml", "Pulumi.yaml"), "utf8")) as YamlProgram;

  /** Problems of `value` against a schema property: unknown keys, missing required ones, wrong kinds. */
  function conform(where: string, value: unknown, def: SchemaProperty | undefined): string[] {
    if (!def) return [`${where}: not in the schema`];
    if (typeof value === "string" && value.startsWith("${")) return [];
    if (def.$ref) {
      const t = schema.types[def.$ref.replace(/^#\/types\//, "")];
      if (t.enum) return t.enum.some((e) => e.value === value) ? [] : [`${where}: ${String(value)} is not one of the enum's values`];
      if (typeof value !== "object" || value === null) return [`${where}: must be an object`];
      const obj = value as Record<string, unknown>;
      return [
        ...(t.required ?? []).filter((k) => !(k in obj)).map((k) => `${where}.${k}: required`),
        ...Object.entries(obj).flatMap(([k, v]) => conform(`${where}.${k}`, v, t.properties?.[k])),
      ];
    }
    if (def.type === "array") return Array.isArray(value) ? value.flatMap((v, i) => conform(`${where}[${i}]`, v, def.items)) : [`${where}: must be a list`];
    return typeof value === def.type ? [] : [`${where}: must be a ${def.type}`];
  }

  test("uses the package from this repository and only what the schema describes", () => {
    const p = program();
    expect(path.resolve(PACKAGE_ROOT, "examples", "yaml", p.packages["smart-mirror"])).toBe(PACKAGE_ROOT);
    const r = schema.resources[TOKEN];
    expect(p.resources.mirror.type).toBe(TOKEN);
    const props = p.resources.mirror.properties;
    expect((r.requiredInputs ?? []).filter((k) => !(k in props))).toEqual([]);
    expect(Object.entries(props).flatMap(([k, v]) => conform(k, v, r.inputProperties?.[k]))).toEqual([]);
    for (const [name, expr] of Object.entries(p.outputs)) expect([name, expr]).toEqual([name, `\${mirror.${name}}`]);
    for (const name of Object.keys(p.outputs)) expect(r.properties).toHaveProperty(name);
  });

  test("its arguments pass the component's validation (config secrets arrive as Outputs)", () => {
    const interpolate = (v: unknown): unknown =>
      typeof v === "string" && /^\$\{\w+\}$/.test(v) ? pulumi.secret("from config") : Array.isArray(v) ? v.map(interpolate) : v && typeof v === "object" ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, interpolate(x)])) : v;
    const args = interpolate(program().resources.mirror.properties) as Parameters<typeof validateSmartMirrorArgs>[0];
    expect(validateSmartMirrorArgs(args)).toEqual([]);
  });
});
