/**
 * Post-processing of the schema Pulumi's component analyzer derives from the TypeScript types
 * (pure): the analyzer cannot express `secret: true`, so the secret inputs are marked here from
 * one list (components/args.ts SECRET_INPUTS). A listed property the schema lacks is an error, so
 * the list cannot silently drift from the types.
 */

/** The parts of a Pulumi package schema this module reads and writes. */
export interface PackageSchema {
  name: string;
  version?: string;
  resources: Record<string, { inputProperties?: Record<string, SchemaProperty>; properties?: Record<string, SchemaProperty>; requiredInputs?: string[]; required?: string[]; description?: string }>;
  types: Record<string, { type: string; properties?: Record<string, SchemaProperty>; required?: string[]; enum?: { name?: string; value: string | number }[]; description?: string }>;
  [key: string]: unknown;
}

export interface SchemaProperty {
  type?: string;
  $ref?: string;
  secret?: boolean;
  description?: string;
  items?: SchemaProperty;
  additionalProperties?: SchemaProperty;
  [key: string]: unknown;
}

/** A copy of `schema` with every listed `Type.property` marked secret; throws naming what is missing. */
export function markSecrets(schema: PackageSchema, secrets: Readonly<Record<string, readonly string[]>>): PackageSchema {
  const out: PackageSchema = structuredClone(schema);
  const missing: string[] = [];
  for (const [typeName, props] of Object.entries(secrets)) {
    const type = out.types[`${out.name}:index:${typeName}`];
    for (const prop of props) {
      const p = type?.properties?.[prop];
      if (p) p.secret = true;
      else missing.push(`${typeName}.${prop}`);
    }
  }
  if (missing.length > 0) throw new Error(`secret inputs missing from the derived schema: ${missing.join(", ")} — update SECRET_INPUTS in components/args.ts to the argument types`);
  return out;
}

/** Every `Type.property` path marked secret in the schema's types, sorted (for tests and reports). */
export function secretPaths(schema: PackageSchema): string[] {
  const prefix = `${schema.name}:index:`;
  const paths: string[] = [];
  for (const [token, type] of Object.entries(schema.types)) {
    for (const [prop, def] of Object.entries(type.properties ?? {})) if (def.secret) paths.push(`${token.slice(prefix.length)}.${prop}`);
  }
  for (const [token, res] of Object.entries(schema.resources)) {
    for (const [prop, def] of Object.entries({ ...res.inputProperties, ...res.properties })) if (def.secret) paths.push(`${token.slice(prefix.length)}.${prop}`);
  }
  return paths.sort();
}
