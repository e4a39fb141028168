/**
 * Properties entries -> typed MirrorConfig, with every problem found (not just the first).
 * Per-key parsing runs through one zod object schema (each key: default from the key table,
 * then its value parser from values.ts); rules between keys (required-when, ignored-unless)
 * come from the same table. Pure: file contents are checked by files.ts.
 */
import { z } from "zod";
import * as path from "node:path";
import { RepoId, repoKey } from "../types";
import { Condition, KeyName, KEYS, keySpec, withHome } from "./keys";
import { Invalid, Problem, Warning } from "./problems";
import { Entry } from "./properties";
import {
  HostKey,
  ListenAddress,
  parseBool,
  parseDurationIn,
  parseEnum,
  parseHostKeys,
  parseHttpsUrl,
  parseIntIn,
  parseListen,
  parsePercent,
  parseProjects,
  parseRefPatterns,
  parseRepoList,
  parseSshBase,
  resolvePath,
  SshBase,
} from "./values";

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const SERVE_AUTH = ["primary", "anonymous", "tokens"] as const;
export type ServeAuth = (typeof SERVE_AUTH)[number];
export const PACK_CACHE_SCOPES = ["clones", "all"] as const;
export type PackCacheScope = (typeof PACK_CACHE_SCOPES)[number];
export const CATALOGS = ["rest", "static"] as const;

/** The validated configuration: camelCase, durations in ms, absolute paths, lists parsed. */
export interface MirrorConfig {
  /** Absolute mirror home (--home DIR). */
  home: string;
  /** Absolute path of the properties file this came from. */
  propertiesFile: string;
  setup: {
    displayName: string;
    /** The mirror's public https URL, without trailing slash. */
    baseUrl: string;
  };
  upstream: {
    /** The primary's https base URL, without trailing slash. */
    url: string;
    ssh: SshBase;
    hostKeys: HostKey[];
    keyFile: string;
    caFile?: string;
    /** Set when the REST catalog is used (mirror.catalog=rest). */
    tokenFile?: string;
  };
  catalog: { kind: "rest" } | { kind: "static"; repos: RepoId[] };
  /** "ALL" or the selected project keys. */
  projects: "ALL" | string[];
  sync: {
    /** Full reconcile interval (plugin.mirroring.synchronization.interval). */
    reconcileIntervalMs: number;
    concurrency: number;
    timeoutMs: number;
    retryMaxMs: number;
    firstCloneStepBytes: number;
    excludeRefs: string[];
  };
  webhook: {
    /** Undefined: the webhook endpoint is disabled. */
    secretFile?: string;
  };
  purge: { enabled: boolean; protectPercent: number };
  maintenance: {
    /** 0 = off. */
    repackIntervalMs: number;
    /** 0 = off. */
    fsckIntervalMs: number;
  };
  /** Free space below which syncs that grow the disk pause; 0 = never. */
  disk: { minFreeBytes: number };
  serve: {
    listen: ListenAddress;
    auth: ServeAuth;
    /** Set when auth is "tokens". */
    tokensFile?: string;
    /** 0 = no caching. */
    authCacheTtlMs: number;
    /** Pack cache disk budget in bytes; 0 = off. */
    packCacheBytes: number;
    packCacheScope: PackCacheScope;
    /** 0 = auto (slots.ts defaultPerClient). */
    uploadPacksPerClient: number;
    /** Bytes per second; 0 = no minimum. */
    minTransferBytesPerSec: number;
    lowSpeedTimeMs: number;
    /** 0 = no limit. */
    maxTransferMs: number;
    bodyBudgetBytes: number;
    bodyTimeoutMs: number;
  };
  log: { level: LogLevel };
}

/** A file the configuration points at, checked by files.ts (existence, mode, content shape). */
export interface FileTarget {
  key: KeyName;
  path: string;
  /** What the value was as written; undefined when the default path is used. */
  written?: string;
  kind: "privateKey" | "secret" | "caBundle";
}

export interface Validation {
  config?: MirrorConfig;
  problems: Problem[];
  warnings: Warning[];
  /** Files to check, derived from the entries even when other keys are invalid. */
  files: FileTarget[];
}

type Parse<T> = (value: string) => T | Invalid;
type Ctx = z.core.$RefinementCtx<string | undefined>;

function addIssue(ctx: Ctx, message: string, fix: string): void {
  ctx.addIssue({ code: "custom", message, params: { fix } });
}

/**
 * One key: the written value (trimmed; Java keeps trailing blanks, which only ever hurt
 * here) or the table's default, then the key's parser. `optional` keys without a default
 * yield undefined when unset; all other unset keys are either defaulted or required.
 */
function makeField(home: string) {
  function run<T>(name: KeyName, parse: Parse<T>, written: string | undefined, ctx: Ctx, allowEmpty: boolean): T | undefined | typeof z.NEVER {
    const spec = keySpec(name);
    const value = written?.trim() ?? (spec.default !== undefined ? withHome(spec.default, home) : undefined);
    if (value === undefined) {
      if (spec.required === true) {
        addIssue(ctx, "is required but not set", `add ${name}=${withHome(spec.example, home)}  — ${spec.description}`);
        return z.NEVER;
      }
      return undefined;
    }
    if (value === "" && !allowEmpty) {
      const fix = spec.default !== undefined ? `delete the line to use the default (${withHome(spec.default, home)}), or set ${name}=${withHome(spec.example, home)}` : `${name}=${withHome(spec.example, home)}`;
      addIssue(ctx, "is empty", fix);
      return z.NEVER;
    }
    const parsed = parse(value);
    if (parsed instanceof Invalid) {
      addIssue(ctx, parsed.message, parsed.fix);
      return z.NEVER;
    }
    return parsed;
  }
  return {
    /** A key that always has a value (required, or defaulted). */
    field<T>(name: KeyName, parse: Parse<T>, opts: { allowEmpty?: boolean } = {}) {
      const spec = keySpec(name);
      if (spec.required !== true && spec.default === undefined) throw new Error(`${name} has neither a default nor required=true`);
      return z
        .string()
        .optional()
        .transform((w, ctx) => run(name, parse, w, ctx, opts.allowEmpty ?? false) as T);
    },
    /** A key that may stay unset. */
    optional<T>(name: KeyName, parse: Parse<T>) {
      return z
        .string()
        .optional()
        .transform((w, ctx) => run(name, parse, w, ctx, false));
    },
  };
}

function makeSchema(home: string, sshHint?: { host: string; port: number }) {
  const { field, optional } = makeField(home);
  const p = (v: string) => resolvePath(v, home);
  return z.object({
    "setup.displayName": field("setup.displayName", (v) => displayName(v)),
    "setup.baseUrl": field("setup.baseUrl", (v) =>
      parseHttpsUrl(v, "setup.baseUrl", {
        why: "Bitbucket mirrors are served over HTTPS; nginx terminates TLS in front of the daemon",
        otherScheme: "this is the mirror's own public HTTPS URL",
      }),
    ),
    "plugin.mirroring.upstream.url": field("plugin.mirroring.upstream.url", (v) =>
      parseHttpsUrl(v, "plugin.mirroring.upstream.url", {
        why: "the primary must serve HTTPS with a valid certificate, as Bitbucket requires for mirroring; tokens and user credentials are never sent over plain HTTP",
        otherScheme: "this is the primary's web address; its SSH address goes in mirror.upstream.sshUrl",
      }),
    ),
    "plugin.mirroring.synchronization.interval": field("plugin.mirroring.synchronization.interval", (v) =>
      parseDurationIn(v, "plugin.mirroring.synchronization.interval", { minMs: 10_000, maxMs: 86_400_000, example: "3m" }),
    ),
    "mirror.upstream.sshUrl": field("mirror.upstream.sshUrl", (v) => parseSshBase(v, "mirror.upstream.sshUrl")),
    "mirror.upstream.hostKeys": field("mirror.upstream.hostKeys", (v) => parseHostKeys(v, "mirror.upstream.hostKeys", sshHint)),
    "mirror.upstream.keyFile": field("mirror.upstream.keyFile", p),
    "mirror.upstream.caFile": optional("mirror.upstream.caFile", p),
    "mirror.upstream.tokenFile": field("mirror.upstream.tokenFile", p),
    "mirror.catalog": field("mirror.catalog", (v) => parseEnum(v, "mirror.catalog", CATALOGS)),
    "mirror.catalog.repos": optional("mirror.catalog.repos", (v) => parseRepoList(v, "mirror.catalog.repos")),
    "mirror.projects": field("mirror.projects", (v) => parseProjects(v, "mirror.projects")),
    "mirror.sync.concurrency": field("mirror.sync.concurrency", (v) => parseIntIn(v, "mirror.sync.concurrency", 1, 64, 8)),
    "mirror.sync.timeout": field("mirror.sync.timeout", (v) => parseDurationIn(v, "mirror.sync.timeout", { minMs: 1000, maxMs: 86_400_000, example: "10m" })),
    "mirror.sync.excludeRefs": field("mirror.sync.excludeRefs", (v) => parseRefPatterns(v, "mirror.sync.excludeRefs"), { allowEmpty: true }),
    "mirror.sync.firstCloneStepMb": field("mirror.sync.firstCloneStepMb", (v) => parseIntIn(v, "mirror.sync.firstCloneStepMb", 1, 65536, 64)),
    "mirror.sync.retryMax": field("mirror.sync.retryMax", (v) => parseDurationIn(v, "mirror.sync.retryMax", { minMs: 1000, maxMs: 86_400_000, example: "10m" })),
    "mirror.webhook.secretFile": optional("mirror.webhook.secretFile", p),
    "mirror.purge.enabled": field("mirror.purge.enabled", (v) => parseBool(v, "mirror.purge.enabled")),
    "mirror.purge.protect": field("mirror.purge.protect", (v) => parsePercent(v, "mirror.purge.protect")),
    "mirror.maintenance.repackInterval": field("mirror.maintenance.repackInterval", (v) =>
      parseDurationIn(v, "mirror.maintenance.repackInterval", { minMs: 3_600_000, maxMs: 365 * 86_400_000, zeroMeansOff: true, example: "1d" }),
    ),
    "mirror.maintenance.fsckInterval": field("mirror.maintenance.fsckInterval", (v) =>
      parseDurationIn(v, "mirror.maintenance.fsckInterval", { minMs: 3_600_000, maxMs: 365 * 86_400_000, zeroMeansOff: true, example: "7d" }),
    ),
    "mirror.serve.listen": field("mirror.serve.listen", (v) => parseListen(v, "mirror.serve.listen", home)),
    "mirror.serve.auth": field("mirror.serve.auth", (v) => parseEnum(v, "mirror.serve.auth", SERVE_AUTH)),
    "mirror.serve.tokensFile": optional("mirror.serve.tokensFile", p),
    "mirror.serve.authCacheTtl": field("mirror.serve.authCacheTtl", (v) =>
      parseDurationIn(v, "mirror.serve.authCacheTtl", { minMs: 1000, maxMs: 86_400_000, zeroMeansOff: true, example: "5m" }),
    ),
    "mirror.disk.minFreeMb": field("mirror.disk.minFreeMb", (v) => parseIntIn(v, "mirror.disk.minFreeMb", 0, 1_048_576, 4096)),
    "mirror.serve.packCacheMb": field("mirror.serve.packCacheMb", (v) => parseIntIn(v, "mirror.serve.packCacheMb", 0, 1_048_576, 2048)),
    "mirror.serve.packCacheScope": field("mirror.serve.packCacheScope", (v) => parseEnum(v, "mirror.serve.packCacheScope", PACK_CACHE_SCOPES)),
    "mirror.serve.uploadPacksPerClient": field("mirror.serve.uploadPacksPerClient", (v) => parseIntIn(v, "mirror.serve.uploadPacksPerClient", 0, 1024, 0)),
    "mirror.serve.minTransferRateKb": field("mirror.serve.minTransferRateKb", (v) => parseIntIn(v, "mirror.serve.minTransferRateKb", 0, 1_048_576, 16)),
    "mirror.serve.lowSpeedTime": field("mirror.serve.lowSpeedTime", (v) => parseDurationIn(v, "mirror.serve.lowSpeedTime", { minMs: 5000, maxMs: 3_600_000, example: "60s" })),
    "mirror.serve.maxTransferTime": field("mirror.serve.maxTransferTime", (v) =>
      parseDurationIn(v, "mirror.serve.maxTransferTime", { minMs: 60_000, maxMs: 7 * 86_400_000, zeroMeansOff: true, example: "6h" }),
    ),
    "mirror.serve.bodyBudgetMb": field("mirror.serve.bodyBudgetMb", (v) => parseIntIn(v, "mirror.serve.bodyBudgetMb", 1, 65_536, 64)),
    "mirror.serve.bodyTimeout": field("mirror.serve.bodyTimeout", (v) => parseDurationIn(v, "mirror.serve.bodyTimeout", { minMs: 1000, maxMs: 600_000, example: "30s" })),
    "mirror.log.level": field("mirror.log.level", (v) => parseEnum(v, "mirror.log.level", LOG_LEVELS)),
  });
}

/** The keys the schema parses; a test holds this equal to the key table. */
export function schemaKeys(): string[] {
  return Object.keys(makeSchema("/").shape);
}

function displayName(v: string): string | Invalid {
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(v)) return new Invalid("must not contain control characters", "setup.displayName=Sydney mirror");
  if (v.length > 255) return new Invalid("is longer than 255 characters", `setup.displayName=${v.slice(0, 60)}`);
  return v;
}

/** The value a key takes: as written (trimmed), else the table default, else undefined. */
function effective(entries: Map<string, Entry>, name: string, home: string): string | undefined {
  const w = entries.get(name)?.value.trim();
  if (w !== undefined && w !== "") return w;
  const d = keySpec(name).default;
  return d === undefined ? undefined : withHome(d, home);
}

function holds(c: Condition, entries: Map<string, Entry>, home: string): boolean {
  return effective(entries, c.key, home) === c.equals;
}

/** Validate the entries of a properties file (known keys only; unknown keys are load.ts's business). */
export function validateEntries(entries: Map<string, Entry>, home: string): Validation {
  home = path.resolve(home);
  const problems: Problem[] = [];
  const warnings: Warning[] = [];
  const written = (k: string) => entries.get(k)?.value;
  const line = (k: string) => entries.get(k)?.line;

  const ssh = parseSshBase(effective(entries, "mirror.upstream.sshUrl", home) ?? "", "mirror.upstream.sshUrl");
  const input: Record<string, string> = {};
  for (const k of KEYS) {
    const v = written(k.name);
    if (v !== undefined) input[k.name] = v;
  }
  const result = makeSchema(home, ssh instanceof Invalid ? undefined : ssh).safeParse(input);
  if (!result.success) {
    for (const issue of result.error.issues) {
      const key = String(issue.path[0] ?? "bitbucket.properties");
      const fix = issue.code === "custom" && typeof issue.params?.fix === "string" ? issue.params.fix : "see the configuration reference (smart-mirror check)";
      problems.push({ key, value: written(key), message: issue.message, fix, line: line(key) });
    }
  }

  // Rules between keys, from the table: required when / only used when.
  for (const spec of KEYS) {
    const has = (written(spec.name)?.trim() ?? "") !== "";
    // Written but empty is already reported ("is empty") by the schema.
    if (typeof spec.required === "object" && holds(spec.required, entries, home) && written(spec.name) === undefined) {
      problems.push({
        key: spec.name,
        value: written(spec.name),
        message: `is required when ${spec.required.key}=${spec.required.equals}`,
        fix: `add ${spec.name}=${withHome(spec.example, home)}  — ${spec.description}`,
      });
    }
    if (spec.usedWhen && has && !holds(spec.usedWhen, entries, home)) {
      warnings.push({
        key: spec.name,
        message: `is ignored because ${spec.usedWhen.key} is ${effective(entries, spec.usedWhen.key, home) ?? "not set"} (it is only used when ${spec.usedWhen.key}=${spec.usedWhen.equals})`,
        fix: `delete the line, or set ${spec.usedWhen.key}=${spec.usedWhen.equals}`,
        line: line(spec.name),
      });
    }
  }

  const files = fileTargets(entries, home);
  if (!result.success || problems.length > 0) return { problems, warnings, files };

  const d = result.data;
  const catalog: MirrorConfig["catalog"] = d["mirror.catalog"] === "static" ? { kind: "static", repos: d["mirror.catalog.repos"] ?? [] } : { kind: "rest" };
  const config: MirrorConfig = {
    home,
    propertiesFile: propertiesPath(home),
    setup: { displayName: d["setup.displayName"], baseUrl: d["setup.baseUrl"] },
    upstream: {
      url: d["plugin.mirroring.upstream.url"],
      ssh: d["mirror.upstream.sshUrl"],
      hostKeys: d["mirror.upstream.hostKeys"],
      keyFile: d["mirror.upstream.keyFile"],
      caFile: d["mirror.upstream.caFile"],
      tokenFile: catalog.kind === "rest" ? d["mirror.upstream.tokenFile"] : undefined,
    },
    catalog,
    projects: d["mirror.projects"],
    sync: {
      reconcileIntervalMs: d["plugin.mirroring.synchronization.interval"],
      concurrency: d["mirror.sync.concurrency"],
      timeoutMs: d["mirror.sync.timeout"],
      retryMaxMs: d["mirror.sync.retryMax"],
      firstCloneStepBytes: d["mirror.sync.firstCloneStepMb"] * 1024 * 1024,
      excludeRefs: d["mirror.sync.excludeRefs"],
    },
    webhook: { secretFile: d["mirror.webhook.secretFile"] },
    purge: { enabled: d["mirror.purge.enabled"], protectPercent: d["mirror.purge.protect"] },
    maintenance: { repackIntervalMs: d["mirror.maintenance.repackInterval"], fsckIntervalMs: d["mirror.maintenance.fsckInterval"] },
    disk: { minFreeBytes: d["mirror.disk.minFreeMb"] * 2 ** 20 },
    serve: {
      listen: d["mirror.serve.listen"],
      auth: d["mirror.serve.auth"],
      tokensFile: d["mirror.serve.auth"] === "tokens" ? d["mirror.serve.tokensFile"] : undefined,
      authCacheTtlMs: d["mirror.serve.authCacheTtl"],
      packCacheBytes: d["mirror.serve.packCacheMb"] * 2 ** 20,
      packCacheScope: d["mirror.serve.packCacheScope"],
      uploadPacksPerClient: d["mirror.serve.uploadPacksPerClient"],
      minTransferBytesPerSec: d["mirror.serve.minTransferRateKb"] * 1024,
      lowSpeedTimeMs: d["mirror.serve.lowSpeedTime"],
      maxTransferMs: d["mirror.serve.maxTransferTime"],
      bodyBudgetBytes: d["mirror.serve.bodyBudgetMb"] * 2 ** 20,
      bodyTimeoutMs: d["mirror.serve.bodyTimeout"],
    },
    log: { level: d["mirror.log.level"] },
  };
  warnings.push(...semanticWarnings(config, entries));
  return { config, problems, warnings, files };
}

/** Valid but probably not what was meant. */
function semanticWarnings(c: MirrorConfig, entries: Map<string, Entry>): Warning[] {
  const out: Warning[] = [];
  const projects = c.projects;
  if (c.catalog.kind === "static" && projects !== "ALL") {
    const outside = c.catalog.repos.filter((r) => !projects.includes(r.project));
    if (outside.length > 0) {
      out.push({
        key: "mirror.catalog.repos",
        message: `${outside.map(repoKey).join(", ")} ${outside.length === 1 ? "is" : "are"} not in mirror.projects (${projects.join(", ")}) and will not be mirrored`,
        fix: "add the project to mirror.projects, or remove the repository from the list",
        line: entries.get("mirror.catalog.repos")?.line,
      });
    }
  }
  const l = c.serve.listen;
  if (l.kind === "tcp" && (l.host === "0.0.0.0" || l.host === "::")) {
    out.push({
      key: "mirror.serve.listen",
      message: `listens on all interfaces (${l.host}); clients would bypass nginx and TLS`,
      fix: "mirror.serve.listen=127.0.0.1:" + l.port + "  (nginx proxies to it), or a unix: socket",
      line: entries.get("mirror.serve.listen")?.line,
    });
  }
  if (c.purge.enabled && c.purge.protectPercent === 0) {
    out.push({
      key: "mirror.purge.protect",
      message: "is 0: any deletion at all will be refused, so no repository is ever purged",
      fix: "mirror.purge.protect=5, or mirror.purge.enabled=false to say so explicitly",
      line: entries.get("mirror.purge.protect")?.line,
    });
  }
  return out;
}

/** Which files to check, from the effective values (so a bad URL elsewhere does not hide a missing key file). */
function fileTargets(entries: Map<string, Entry>, home: string): FileTarget[] {
  const out: FileTarget[] = [];
  const add = (key: KeyName, kind: FileTarget["kind"]) => {
    const v = effective(entries, key, home);
    if (v === undefined) return;
    const w = entries.get(key)?.value.trim();
    out.push({ key, kind, path: resolvePath(v, home), written: w === "" ? undefined : w });
  };
  add("mirror.upstream.keyFile", "privateKey");
  if (effective(entries, "mirror.catalog", home) === "rest") add("mirror.upstream.tokenFile", "secret");
  add("mirror.upstream.caFile", "caBundle");
  add("mirror.webhook.secretFile", "secret");
  if (effective(entries, "mirror.serve.auth", home) === "tokens") add("mirror.serve.tokensFile", "secret");
  return out;
}

export function propertiesPath(home: string): string {
  return path.join(path.resolve(home), "shared", "bitbucket.properties");
}
