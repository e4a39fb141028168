/**
 * SmartMirror as TypeScript callers import it. The class is smartMirrorComponent.ts; its
 * declared argument type is the any-language shape (what Pulumi's analyzer turns into the
 * schema). Here the same class is typed to also take the `kind:` shape TypeScript programs have
 * always written (`host: { kind: "aws", ... }`), so both keep compiling and behave the same.
 */
import type * as pulumi from "@pulumi/pulumi";
import type { SmartMirrorArgs } from "./args";
import { SmartMirror as SmartMirrorComponent } from "./smartMirrorComponent";

export { SMART_MIRROR_TYPE, DEFAULT_BUNDLE_PATH } from "./smartMirrorComponent";

/** The class's statics, with a constructor that takes either shape of the arguments. */
export type SmartMirrorConstructor = Omit<typeof SmartMirrorComponent, "prototype"> & {
  new (name: string, args: SmartMirrorArgs, opts?: pulumi.ComponentResourceOptions): SmartMirrorComponent;
  prototype: SmartMirrorComponent;
};

/**
 * One read-only Git mirror of a primary, in one region. The cast widens only the argument type:
 * the constructor validates and normalizes either shape at run time (normalize.ts).
 */
export const SmartMirror = SmartMirrorComponent as unknown as SmartMirrorConstructor;
export type SmartMirror = SmartMirrorComponent;
