/**
 * The smart-mirror package as a Pulumi resource provider (a component provider), so Python, Go,
 * .NET and YAML stacks can use SmartMirror after `pulumi package add`.
 *
 * The schema is derived from the TypeScript types by Pulumi's own component analyzer (the one
 * behind `componentProviderHost`), then the secret inputs are marked (schemaSecrets.ts). Two
 * things differ from `componentProviderHost`, each for a reason:
 * - the analyzer is pointed at components/index.ts (the TypeScript sources) explicitly, because
 *   package.json's main/exports name the compiled JavaScript the npm tarball ships;
 * - Construct knows SmartMirror's outputs from a list kept equal to the schema by a test, so it
 *   never runs the analyzer (seconds of type checking) in the middle of an update.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type * as pulumi from "@pulumi/pulumi";
import type { ConstructResult, Provider } from "@pulumi/pulumi/provider";
import { Analyzer } from "@pulumi/pulumi/provider/experimental/analyzer";
import { generateSchema } from "@pulumi/pulumi/provider/experimental/schema";
import { SECRET_INPUTS, type SmartMirrorInputs } from "../components/args";
import { SmartMirror, SMART_MIRROR_TYPE } from "../components/smartMirrorComponent";
import { markSecrets, type PackageSchema } from "./schemaSecrets";
import { unliftSecretObjects } from "./unliftSecrets";

/** The package name: the first part of every type token (smart-mirror:index:SmartMirror). */
export const PACKAGE_NAME = "smart-mirror";

/** SmartMirror's outputs, as Construct returns them (the GetSchema test keeps this equal to the schema). */
export const SMART_MIRROR_OUTPUTS = [
  "mirrorUrl",
  "cloneUrlTemplate",
  "statusUrl",
  "syncPublicKey",
  "hostAddress",
  "propertiesText",
  "globalUrl",
  "caCertificatePem",
  "deploySummary",
  "nodeCount",
] as const satisfies readonly (keyof SmartMirror)[];

/** The analyzer's view of the package: the TypeScript entry, whatever main/exports say. */
const ANALYZER_ENTRY = "../components/index.ts";

/**
 * provider/ in the package's source tree, found from where this module runs: itself, or its
 * compiled copy (e.g. build/provider/), by walking up to the folder holding PulumiPlugin.yaml.
 */
export function sourceProviderDir(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, "PulumiPlugin.yaml"))) return path.join(dir, "provider");
    if (path.dirname(dir) === dir) throw new Error(`no PulumiPlugin.yaml above ${from}: run the provider from the smart-mirror package folder`);
  }
}

export class SmartMirrorProvider implements Provider {
  readonly version: string;
  private derived?: Promise<string>;

  /** `dir` holds the analyzer's tsconfig.json (provider/); the package root is its parent. */
  constructor(private readonly dir: string = sourceProviderDir(__dirname)) {
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, "..", "package.json"), "utf8")) as { version?: string; description?: string };
    this.version = pkg.version ?? "0.0.0";
    this.description = pkg.description ?? "";
  }
  private readonly description: string;

  getSchema(): Promise<string> {
    this.derived ??= Promise.resolve().then(() => JSON.stringify(this.deriveSchema()));
    return this.derived;
  }

  /** The schema from the TypeScript types, secrets marked. */
  deriveSchema(): PackageSchema {
    const packageJson = { name: PACKAGE_NAME, version: this.version, main: ANALYZER_ENTRY };
    const { components, typeDefinitions, dependencies } = new Analyzer(this.dir, PACKAGE_NAME, packageJson, new Set([SmartMirror.name])).analyze();
    const derived = generateSchema(PACKAGE_NAME, this.version, this.description, components, typeDefinitions, dependencies) as unknown as PackageSchema;
    return markSecrets(derived, SECRET_INPUTS);
  }

  async construct(name: string, type: string, inputs: pulumi.Inputs, options: pulumi.ComponentResourceOptions): Promise<ConstructResult> {
    if (type !== SMART_MIRROR_TYPE) throw new Error(`unknown resource type ${type}: the ${PACKAGE_NAME} package has ${SMART_MIRROR_TYPE}`);
    // The engine's inputs are the schema's shape (SmartMirrorInputs); the constructor validates them.
    // Objects holding a secret arrive as one secret Output (SDK lifting): make them objects again.
    const args = await unliftSecretObjects(inputs);
    const mirror = new SmartMirror(name, args as unknown as SmartMirrorInputs, options);
    const state: pulumi.Inputs = {};
    for (const key of SMART_MIRROR_OUTPUTS) state[key] = mirror[key];
    return { urn: mirror.urn, state };
  }
}
