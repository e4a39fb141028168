/**
 * bitbucket.properties for a mirror host. Pure: plain values in, Java properties text out
 * (escaping by dot-properties, the same library the daemon parses with). Keys come out in the
 * order of the daemon's key table (sync/config/keys.ts), so the file reads like the reference.
 *
 * No secret ever goes into this file: secrets live in their own 0600 files and the
 * properties only name them (the *File keys), as the daemon requires.
 */
import { stringify } from "dot-properties";
import { EnumOf, KEY_ENTRIES, KEY_LIST, KeyId, KEYS, KeySpec } from "../../sync/config/keys";

/** The keys the component sets from its arguments: those with an `arg` in the table. */
type ManagedId = { [K in KeyId]: (typeof KEYS)[K] extends { arg: string } ? K : never }[KeyId];
type Kind<K extends KeyId> = (typeof KEYS)[K]["value"]["kind"];
/** What the renderer takes for a key: lists as arrays, numbers as numbers, enums typed. */
type RenderValue<K extends KeyId> = Kind<K> extends "enum"
  ? EnumOf<K>
  : Kind<K> extends "projects"
    ? "ALL" | readonly string[]
    : Kind<K> extends "hostKeys" | "repoList" | "refPatterns" | "eventUrls"
      ? readonly string[]
      : Kind<K> extends "int" | "percent"
        ? number
        : string;
type Always<K extends KeyId> = (typeof KEYS)[K] extends { required: true } ? K : never;

/**
 * The values of bitbucket.properties by key id (KEYS.<id>): required keys must be given.
 * A key whose table condition (usedWhen) does not hold is left out, e.g. tokenFile with a
 * static catalog.
 */
export type PropertiesValues = { [K in Always<ManagedId>]: RenderValue<K> } & { [K in Exclude<ManagedId, Always<ManagedId>>]?: RenderValue<K> } & {
  /** Further keys, validated by the caller against the daemon's table. */
  extra?: Record<string, string>;
};

/** The keys renderProperties sets from the typed values (extra must not repeat them). */
export function managedKeys(keys: readonly KeySpec[] = KEY_LIST): string[] {
  return keys.filter((k) => k.arg !== undefined).map((k) => k.name);
}
export const MANAGED_KEYS: readonly string[] = managedKeys();

function text(v: unknown): string {
  return Array.isArray(v) ? v.map((s: string) => s.trim()).join(", ") : String(v);
}

/** key -> value for every key that has one, before ordering. */
export function propertyEntries(v: PropertiesValues, table: ReadonlyArray<[string, KeySpec]> = KEY_ENTRIES): Map<string, string> {
  const given = v as unknown as Record<string, unknown>;
  const e = new Map<string, string>();
  for (const [id, k] of table) if (k.arg !== undefined && given[id] !== undefined) e.set(k.name, text(given[id]));
  // A key only used under a condition is left out when the condition does not hold (the
  // daemon would warn that it is ignored).
  const specs = new Map(table.map(([, k]) => [k.name, k]));
  for (const [name, k] of specs) {
    const c = k.usedWhen;
    if (c && e.has(name) && (e.get(c.key) ?? specs.get(c.key)?.default) !== c.equals) e.delete(name);
  }
  for (const [k, value] of Object.entries(v.extra ?? {})) {
    if (e.has(k) || specs.get(k)?.arg !== undefined) throw new Error(`extra property ${k} is set from the typed values; do not repeat it`);
    e.set(k, value);
  }
  return e;
}

export function renderProperties(v: PropertiesValues): string {
  const entries = propertyEntries(v);
  const order = new Map(KEY_LIST.map((k, i) => [k.name, i]));
  const keys = [...entries.keys()].sort((a, b) => (order.get(a) ?? 1e9) - (order.get(b) ?? 1e9) || a.localeCompare(b));
  const lines: Array<string | [string, string]> = [
    "# Rendered by smart-mirror (components/render/properties.ts) on every deploy: edits here",
    "# are overwritten. Change the Pulumi stack configuration instead.",
    "# Reference: the configuration table in the README; `smart-mirror check --home DIR` validates.",
    "",
    ...keys.map((k): [string, string] => [k, entries.get(k) as string]),
  ];
  // keySep "=", no folding: one key per line, so diffs and grep stay simple.
  return stringify(lines, { keySep: "=", lineWidth: null, latin1: false }) + "\n";
}
