/**
 * Pulumi mocks for the component tests (awsx style): every resource's type, name, inputs
 * (as the engine would receive them: secrets still wrapped) and options are recorded, so tests
 * assert on the graph. Providers answer with the shared fakes of cloudFakes.ts.
 */
import * as pulumi from "@pulumi/pulumi";
import { fakeId, fakeInvoke, fakeOutputs } from "./cloudFakes";

export { ed25519PublicLine } from "./cloudFakes";

export interface RecordedResource {
  type: string;
  name: string;
  /** Inputs as the engine received them (secrets wrapped: see isSecretValue). */
  inputs: Record<string, unknown>;
  provider?: string;
}

export interface RecordedOptions {
  type: string;
  name: string;
  opts: pulumi.CustomResourceOptions & pulumi.ComponentResourceOptions;
  /** Inputs before serialization (Outputs, secrets as pulumi secrets). */
  props: Record<string, unknown>;
  resource: pulumi.Resource;
}

export interface RecordedInvoke {
  token: string;
  inputs: Record<string, unknown>;
  provider?: string;
}

const SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

/** A value the engine would store encrypted. */
export function isSecretValue(v: unknown): boolean {
  return typeof v === "object" && v !== null && (v as Record<string, unknown>)[SIG_KEY] === SECRET_SIG;
}

/** The inputs with secret wrappers removed (for asserting on values). */
export function unwrap(v: unknown): unknown {
  if (isSecretValue(v)) return unwrap((v as { value: unknown }).value);
  if (Array.isArray(v)) return v.map(unwrap);
  if (v && typeof v === "object" && !(v instanceof pulumi.asset.Asset)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrap(x)]));
  return v;
}

/** Does any secret wrapper occur anywhere inside v? */
export function containsSecret(v: unknown): boolean {
  if (isSecretValue(v)) return true;
  if (Array.isArray(v)) return v.some(containsSecret);
  if (v && typeof v === "object") return Object.values(v).some(containsSecret);
  return false;
}

export interface MockWorld {
  resources: RecordedResource[];
  invokes: RecordedInvoke[];
}

/** Install mocks for this test file; returns what they record (reset it between tests with `world.resources.length = 0`). */
export function installMocks(): MockWorld {
  const world: MockWorld = { resources: [], invokes: [] };
  pulumi.runtime.setMocks(
    {
      newResource(args: pulumi.runtime.MockResourceArgs) {
        world.resources.push({ type: args.type, name: args.name, inputs: args.inputs, provider: args.provider });
        return { id: fakeId(args.type, args.name), state: { ...args.inputs, ...fakeOutputs(args.type, args.name, args.inputs) } };
      },
      call(args: pulumi.runtime.MockCallArgs) {
        world.invokes.push({ token: args.token, inputs: args.inputs, provider: args.provider });
        return fakeInvoke(args.token, args.inputs) ?? {};
      },
    },
    "smart-mirror",
    "test",
    false,
  );
  return world;
}

/** Records every resource (and its options) created under a component, via the transformations option. */
export function optionsRecorder(): { transformation: pulumi.ResourceTransformation; recorded: RecordedOptions[] } {
  const recorded: RecordedOptions[] = [];
  const transformation: pulumi.ResourceTransformation = (a) => {
    recorded.push({ type: a.type, name: a.name, opts: a.opts as RecordedOptions["opts"], props: a.props as Record<string, unknown>, resource: a.resource });
    return undefined;
  };
  return { transformation, recorded };
}

export function promiseOf<T>(o: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => o.apply((v) => resolve(v)));
}

/** Resolves once every recorded resource is registered (its URN known). */
export async function settled(recorded: RecordedOptions[]): Promise<void> {
  await Promise.all(recorded.map((r) => promiseOf(r.resource.urn)));
}
