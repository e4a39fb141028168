/**
 * Reading the example stack files (Pulumi.<stack>.yaml) the way Pulumi hands their values to
 * the program, for the tests: `project:key` entries, objects as JSON.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as yaml from "js-yaml";

export const REPO_ROOT = path.resolve(__dirname, "..");

export function stackNames(root = REPO_ROOT): string[] {
  return fs
    .readdirSync(root)
    .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
    .filter((s): s is string => s !== undefined)
    .sort();
}

/** The stack file's config as `ns:key` -> raw value. */
export function readStackConfig(stack: string, root = REPO_ROOT): Record<string, unknown> {
  const doc = yaml.load(fs.readFileSync(path.join(root, `Pulumi.${stack}.yaml`), "utf8")) as { config?: Record<string, unknown> };
  return doc.config ?? {};
}

/** What `new pulumi.Config()` sees: every value as a string, objects and arrays as JSON. */
export function asPulumiConfig(config: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(config).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
}
