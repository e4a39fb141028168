/**
 * Undoes the SDK's secret lifting for Construct's inputs.
 *
 * The engine sends a secret nested in an object input (host.existing.privateKey) as a secret
 * inside that object; the Node SDK's deserializer (runtime/rpc.ts deserializeProperty) cannot
 * keep a secret below the top level, so it turns the whole top-level input (`host`) into one
 * secret Output. SmartMirror needs `host`, `tls`, `primary`... as plain objects (they decide the
 * resource graph), so the provider resolves such an Output back into its object and marks the
 * fields the schema declares secret (SECRET_INPUTS) secret again, leaf by leaf.
 */
import * as pulumi from "@pulumi/pulumi";
import { SECRET_INPUTS } from "../components/args";

/** Where each schema type with secret fields sits in SmartMirror's inputs. */
export const SECRET_TYPE_PATHS = {
  Bastion: ["host.existing.bastion", "host.aws.ssh.bastion"],
  ExistingHost: ["host.existing"],
  ProvidedTls: ["tls.provided"],
  AcmeTls: ["tls.acme"],
  Primary: ["primary"],
  MirrorSettings: ["mirror"],
  MirrorEvents: ["mirror.events"],
  RegisterAccessKey: ["registerAccessKey"],
} as const satisfies Record<keyof typeof SECRET_INPUTS, readonly string[]>;

/** Every secret field's dotted path in the inputs (host.existing.privateKey, ...). */
export function secretInputPaths(): string[] {
  return Object.entries(SECRET_TYPE_PATHS).flatMap(([type, paths]) => paths.flatMap((p) => SECRET_INPUTS[type as keyof typeof SECRET_INPUTS].map((f) => `${p}.${f}`)));
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v) && !pulumi.Output.isInstance(v);

/** A copy of `value` (the input named `top`) with each secret path below it wrapped in pulumi.secret. */
export function remarkSecrets(top: string, value: Obj, paths: string[] = secretInputPaths()): Obj {
  const copy: Obj = { ...value };
  for (const p of paths) {
    const [head, ...rest] = p.split(".");
    if (head !== top || rest.length === 0) continue;
    let obj: Obj | undefined = copy;
    for (const k of rest.slice(0, -1)) {
      const next: unknown = obj[k];
      if (!isObj(next)) {
        obj = undefined;
        break;
      }
      obj[k] = { ...next };
      obj = obj[k] as Obj;
    }
    const leaf = rest[rest.length - 1];
    if (obj && obj[leaf] !== undefined) obj[leaf] = pulumi.secret(obj[leaf]);
  }
  return copy;
}

/** The Output's value as the SDK resolved it (undefined when unknown, in a preview). */
async function valueOf(o: pulumi.Output<unknown>): Promise<unknown> {
  // Output.promise() is the SDK's own accessor for a resolved value (marked internal in its typings).
  return (o as unknown as { promise(): Promise<unknown> }).promise();
}

/** Construct's inputs with every secret-lifted object input turned back into a plain object. */
export async function unliftSecretObjects(inputs: pulumi.Inputs): Promise<pulumi.Inputs> {
  const out: pulumi.Inputs = { ...inputs };
  for (const [key, v] of Object.entries(inputs)) {
    if (!pulumi.Output.isInstance(v)) continue;
    const value = await valueOf(v);
    if (isObj(value)) out[key] = remarkSecrets(key, value);
  }
  return out;
}
