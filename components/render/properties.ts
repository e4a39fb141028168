/**
 * bitbucket.properties for a mirror host. Pure: plain values in, Java properties text out
 * (escaping by dot-properties, the same library the daemon parses with). Keys come out in the
 * order of the daemon's key table (sync/config/keys.ts), so the file reads like the reference.
 *
 * No secret ever goes into this file: secrets live in their own 0600 files and the
 * properties only name them (the *File keys), as the daemon requires.
 */
import { stringify } from "dot-properties";
import { KEYS } from "../../sync/config/keys";

export interface PropertiesValues {
  displayName: string;
  /** https://<mirror name> */
  baseUrl: string;
  /** The primary's https URL. */
  upstreamUrl: string;
  /** ssh://user@host:port of the primary. */
  sshUrl: string;
  /** Pinned host keys of the primary, "type base64" each. */
  hostKeys: string[];
  keyFile: string;
  /** REST catalog (with the token file) or a fixed list of PROJECT/slug. */
  catalog: { kind: "rest"; tokenFile: string } | { kind: "static"; repos: string[] };
  projects: "ALL" | string[];
  caFile?: string;
  syncInterval?: string;
  concurrency?: number;
  webhookSecretFile?: string;
  auth?: "primary" | "anonymous" | "tokens";
  tokensFile?: string;
  listen?: string;
  logLevel?: string;
  /** Further keys, validated by the caller against the daemon's table. */
  extra?: Record<string, string>;
}

/** The keys renderProperties sets from the typed values (extra must not repeat them). */
export const MANAGED_KEYS = [
  "setup.displayName",
  "setup.baseUrl",
  "plugin.mirroring.upstream.url",
  "plugin.mirroring.synchronization.interval",
  "mirror.upstream.sshUrl",
  "mirror.upstream.hostKeys",
  "mirror.upstream.keyFile",
  "mirror.upstream.caFile",
  "mirror.upstream.tokenFile",
  "mirror.catalog",
  "mirror.catalog.repos",
  "mirror.projects",
  "mirror.sync.concurrency",
  "mirror.webhook.secretFile",
  "mirror.serve.listen",
  "mirror.serve.auth",
  "mirror.serve.tokensFile",
  "mirror.log.level",
] as const;

/** key -> value for every key that has one, before ordering. */
export function propertyEntries(v: PropertiesValues): Map<string, string> {
  const e = new Map<string, string>();
  const set = (k: string, value: string | number | undefined) => {
    if (value !== undefined) e.set(k, String(value));
  };
  set("setup.displayName", v.displayName);
  set("setup.baseUrl", v.baseUrl);
  set("plugin.mirroring.upstream.url", v.upstreamUrl);
  set("plugin.mirroring.synchronization.interval", v.syncInterval);
  set("mirror.upstream.sshUrl", v.sshUrl);
  set("mirror.upstream.hostKeys", v.hostKeys.map((k) => k.trim()).join(", "));
  set("mirror.upstream.keyFile", v.keyFile);
  set("mirror.upstream.caFile", v.caFile);
  if (v.catalog.kind === "rest") {
    set("mirror.catalog", "rest");
    set("mirror.upstream.tokenFile", v.catalog.tokenFile);
  } else {
    set("mirror.catalog", "static");
    set("mirror.catalog.repos", v.catalog.repos.join(", "));
  }
  set("mirror.projects", v.projects === "ALL" ? "ALL" : v.projects.join(", "));
  set("mirror.sync.concurrency", v.concurrency);
  set("mirror.webhook.secretFile", v.webhookSecretFile);
  set("mirror.serve.listen", v.listen);
  set("mirror.serve.auth", v.auth);
  if (v.auth === "tokens") set("mirror.serve.tokensFile", v.tokensFile);
  set("mirror.log.level", v.logLevel);
  for (const [k, value] of Object.entries(v.extra ?? {})) {
    if ((MANAGED_KEYS as readonly string[]).includes(k)) throw new Error(`extra property ${k} is set from the typed values; do not repeat it`);
    e.set(k, value);
  }
  return e;
}

export function renderProperties(v: PropertiesValues): string {
  const entries = propertyEntries(v);
  const order = new Map(KEYS.map((k, i) => [k.name, i]));
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
