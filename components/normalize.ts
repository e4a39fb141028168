/**
 * One pure step between the two shapes of SmartMirror's arguments (see args.ts): the
 * any-language shape (`host: { aws: {...} }`, `tls: { acme: {} }`) and the TypeScript `kind:`
 * shape (`host: { kind: "aws", ... }`) both become the `kind:` shape the component uses inside.
 * "Exactly one kind" is decided here, with every problem named; the fields inside a kind are
 * validated afterwards (validate.ts), and their messages are relabelled to the path the caller
 * wrote (`host.aws.subnetId` for the any-language shape, `host.subnetId` for the `kind:` one).
 */
import * as pulumi from "@pulumi/pulumi";
import type { HostKindArgs, NormalizedSmartMirrorArgs, SmartMirrorArgs, SmartMirrorInputs, TlsKindArgs } from "./args";

export const HOST_KINDS = ["aws", "existing"] as const;
export const TLS_KINDS = ["acme", "provided", "privateCa"] as const;

const HOST_EXAMPLE = 'host: { aws: { subnetId, ssh: { adminCidrs: ["203.0.113.7/32"] } } } or host: { existing: { address, privateKey, hostKey } }';
const TLS_EXAMPLE = "tls: { acme: {} } (Let's Encrypt via Route53), tls: { provided: { certificatePem, privateKeyPem } } or tls: { privateCa: { clientsTrustPrivateCa: true } }";

/** One argument whose object names its kind, read in either shape. */
export interface KindChoice<K extends string> {
  /** The object in the `kind:` shape; undefined when the kind cannot be told (see problem). */
  value?: { kind: K } & Record<string, unknown>;
  /** Where the caller wrote the kind's fields: "host" (kind shape) or "host.aws". */
  path: string;
  problem?: string;
}

/**
 * Read `field` (host or tls) in either shape. Exactly one kind must be chosen: a `kind:` that is
 * one of `kinds`, or exactly one of the optional objects named after them, never both.
 */
export function chooseKind<K extends string>(field: string, raw: unknown, kinds: readonly K[], example: string): KindChoice<K> {
  const list = kinds.map((k) => `${field}.${k}`).join(", ");
  if (pulumi.Output.isInstance(raw)) {
    return { path: field, problem: `${field}: is an Output, but its kind decides which resources exist — pass a plain object (only values inside it may be Outputs), e.g. ${example}` };
  }
  if (raw === undefined || raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    return { path: field, problem: `${field}: is required — set exactly one of ${list}, e.g. ${example}` };
  }
  const obj = raw as Record<string, unknown>;
  const chosen = kinds.filter((k) => obj[k] !== undefined && obj[k] !== null);
  if ("kind" in obj && obj.kind !== undefined) {
    const kind = obj.kind;
    if (!kinds.includes(kind as K)) {
      return { path: field, problem: `${field}.kind: ${JSON.stringify(kind)} is not one of ${kinds.map((k) => `"${k}"`).join(", ")} — set exactly one of ${list}, e.g. ${example}` };
    }
    if (chosen.length > 0) {
      return { path: field, problem: `${field}: mixes kind "${String(kind)}" with ${chosen.map((k) => `${field}.${k}`).join(", ")} — use one shape: ${field}.${String(kind)}: { ... } without kind, or kind: "${String(kind)}" with the fields beside it` };
    }
    return { value: obj as { kind: K } & Record<string, unknown>, path: field };
  }
  if (chosen.length === 0) return { path: field, problem: `${field}: sets none of ${list} — set exactly one, e.g. ${example}` };
  if (chosen.length > 1) return { path: field, problem: `${field}: sets ${chosen.map((k) => `${field}.${k}`).join(" and ")} — keep exactly one of ${list}` };
  const kind = chosen[0];
  const body = obj[kind];
  if (typeof body !== "object" || Array.isArray(body) || pulumi.Output.isInstance(body)) {
    return { path: `${field}.${kind}`, problem: `${field}.${kind}: must be a plain object of its settings — e.g. ${example}` };
  }
  return { value: { ...(body as Record<string, unknown>), kind }, path: `${field}.${kind}` };
}

export interface NormalizeResult {
  /** The arguments with host and tls in the `kind:` shape (either may be undefined: see problems). */
  args: Omit<NormalizedSmartMirrorArgs, "host" | "tls"> & { host?: HostKindArgs; tls?: TlsKindArgs };
  /** Problems choosing the host and TLS kinds; empty when both are clear. */
  problems: string[];
  /** Where the caller wrote the host's and TLS's fields, for relabelProblem. */
  paths: { host: string; tls: string };
}

/** Either shape of the arguments -> the `kind:` shape. Pure; the input is not modified. */
export function normalizeSmartMirrorArgs(args: SmartMirrorArgs | SmartMirrorInputs): NormalizeResult {
  const host = chooseKind("host", args.host, HOST_KINDS, HOST_EXAMPLE);
  const tls = chooseKind("tls", args.tls, TLS_KINDS, TLS_EXAMPLE);
  return {
    args: { ...args, host: host.value as HostKindArgs | undefined, tls: tls.value as TlsKindArgs | undefined },
    problems: [host.problem, tls.problem].filter((p): p is string => p !== undefined),
    paths: { host: host.path, tls: tls.path },
  };
}

/**
 * Validation speaks of `host.subnetId` and `tls.zoneId` (the `kind:` shape); a caller who wrote
 * `host: { aws: {...} }` must read `host.aws.subnetId`. Rewrites every `host.`/`tls.` path in a
 * problem to the caller's shape; paths already inside a kind are left alone.
 */
export function relabelProblem(problem: string, paths: { host: string; tls: string }): string {
  let out = problem;
  for (const field of ["host", "tls"] as const) {
    const to = paths[field];
    if (to === field) continue;
    const kinds: readonly string[] = field === "host" ? HOST_KINDS : TLS_KINDS;
    const re = new RegExp(`(^|[^\\w.-])${field}\\.(?!(?:${kinds.join("|")})\\b)(?=\\w)`, "g");
    out = out.replace(re, `$1${to}.`);
  }
  return out;
}

/** The arguments in the `kind:` shape, or throws when the kinds cannot be told (validation reports it first). */
export function normalizedOrThrow(args: SmartMirrorArgs | SmartMirrorInputs): NormalizedSmartMirrorArgs {
  const n = normalizeSmartMirrorArgs(args);
  if (!n.args.host || !n.args.tls) throw new Error(n.problems.join("\n"));
  return n.args as NormalizedSmartMirrorArgs;
}

/**
 * The `kind:` shape -> the any-language shape (the inverse of normalizeSmartMirrorArgs for
 * host and tls; `mirror.projects: "ALL"` becomes "not set", which means all). For callers that
 * hand TypeScript-built arguments to another language's stack, and for the tests.
 */
export function inputsShape(args: SmartMirrorArgs): SmartMirrorInputs {
  const split = <T extends { kind?: string }>(v: T): Record<string, Omit<T, "kind">> | T => {
    if (!v || typeof v !== "object" || typeof v.kind !== "string") return v;
    const { kind, ...rest } = v;
    return { [kind as string]: rest };
  };
  const { mirror, ...rest } = args;
  const out = { ...rest, host: split(args.host as { kind?: string }), tls: split(args.tls as { kind?: string }) } as unknown as SmartMirrorInputs;
  if (mirror) {
    const { projects, ...m } = mirror;
    out.mirror = projects === "ALL" ? m : { ...m, projects };
  }
  return out;
}
