/**
 * Properties entries -> typed MirrorConfig, with every problem found (not just the first).
 * Per-key parsing runs through one zod object schema built from the key table (each key: its
 * default, then the parser of its value kind and range from values.ts); rules between keys
 * (required-when, ignored-unless) come from the same table. Pure: file contents are checked
 * by files.ts.
 */
import { z } from "zod";
import * as path from "node:path";
import { homePath } from "../homeLayout";
import { RepoId, repoKey } from "../types";
import { Condition, EnumOf, KEY_ENTRIES, KEY_LIST, KeyId, KeyName, KEYS, KeySpec, keySpec, ValueSpec, withHome } from "./keys";
import { formatDuration } from "./duration";
import { Invalid, Problem, Warning } from "./problems";
import { Entry, FILE_LABEL } from "./properties";
import {
  HostKey,
  ListenAddress,
  parseBool,
  parseDurationIn,
  parseEnum,
  parseEventUrls,
  parseHostKeys,
  parseHttpsUrl,
  parseIntIn,
  parseListen,
  parsePercent,
  parseProjects,
  parseRefPatterns,
  parseRepoList,
  parseSshBase,
  parseText,
  resolvePath,
  SshBase,
} from "./values";

export type LogLevel = EnumOf<"logLevel">;
export type ServeAuth = EnumOf<"auth">;
export type PackCacheScope = EnumOf<"packCacheScope">;
export type Freshness = EnumOf<"freshness">;
export type PushMode = EnumOf<"push">;

/** What a value kind parses to. */
type Parsed<V> = V extends { kind: "enum"; values: readonly (infer E)[] }
  ? E
  : V extends { kind: "duration" | "int" | "percent" }
    ? number
    : V extends { kind: "bool" }
      ? boolean
      : V extends { kind: "sshBase" }
        ? SshBase
        : V extends { kind: "hostKeys" }
          ? HostKey[]
          : V extends { kind: "repoList" }
            ? RepoId[]
            : V extends { kind: "projects" }
              ? "ALL" | string[]
              : V extends { kind: "refPatterns" | "eventUrls" }
                ? string[]
                : V extends { kind: "listen" }
                  ? ListenAddress
                  : string;

/** A key without default that is not always required may stay unset. */
type Parsed_<K extends KeyId> = (typeof KEYS)[K] extends { default: string } | { required: true } ? Parsed<(typeof KEYS)[K]["value"]> : Parsed<(typeof KEYS)[K]["value"]> | undefined;
/** Every key's parsed value, by id. */
export type ParsedKeys = { [K in KeyId]: Parsed_<K> };

/** What parsing a value needs beyond the text: the home (paths) and the SSH address (host-key hints). */
export interface ParseContext {
  home: string;
  sshHint?: { host: string; port: number };
}

type Parser<K extends ValueSpec["kind"]> = (value: string, label: string, v: Extract<ValueSpec, { kind: K }>, example: string, ctx: ParseContext) => unknown;

/** Each value kind's parser (values.ts); `label` names the value in messages. */
const PARSERS: { [K in ValueSpec["kind"]]: Parser<K> } = {
  text: (value, label, v, example) => parseText(value, label, v.maxLength, example),
  httpsUrl: (value, label, v) => parseHttpsUrl(value, label, { why: v.why, otherScheme: v.otherScheme }),
  duration: (value, label, v, example) => parseDurationIn(value, label, { minMs: v.minMs, maxMs: v.maxMs, zeroMeansOff: v.zeroMeansOff, example }),
  int: (value, label, v, example) => parseIntIn(value, label, v.min, v.max, Number(example)),
  enum: (value, label, v) => parseEnum(value, label, v.values),
  bool: (value, label) => parseBool(value, label),
  percent: (value, label) => parsePercent(value, label),
  path: (value, _label, _v, _example, ctx) => resolvePath(value, ctx.home),
  sshBase: (value, label) => parseSshBase(value, label),
  hostKeys: (value, label, _v, _example, ctx) => parseHostKeys(value, label, ctx.sshHint),
  repoList: (value, label) => parseRepoList(value, label),
  projects: (value, label) => parseProjects(value, label),
  refPatterns: (value, label) => parseRefPatterns(value, label),
  listen: (value, label, _v, _example, ctx) => parseListen(value, label, ctx.home),
  eventUrls: (value, label, v) => parseEventUrls(value, label, v.max),
};

/**
 * One value of one key, by the table's value spec. `label` names it in messages (the key, or
 * the SmartMirror argument the component checks it for).
 */
export function parseValue(spec: Pick<KeySpec, "value" | "example">, value: string, label: string, ctx: ParseContext): unknown {
  const parse = PARSERS[spec.value.kind] as Parser<ValueSpec["kind"]>;
  return parse(value, label, spec.value as never, spec.example, ctx);
}

/** A key's value parsed by the table (the component's argument checks use this: one range). */
export function parseKeyValue<K extends KeyId>(id: K, value: string, label: string, ctx: ParseContext): Parsed<(typeof KEYS)[K]["value"]> | Invalid {
  return parseValue(KEYS[id], value, label, ctx) as Parsed<(typeof KEYS)[K]["value"]> | Invalid;
}

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
    /** The reconcile's scan budget (mirror.scan.*). */
    scan: { maxPerSecond: number; idleBoundMs: number; activeWindowMs: number };
  };
  webhook: {
    /** Undefined: the webhook endpoint is disabled. */
    secretFile?: string;
  };
  /** The synced event out; undefined: no events. */
  events?: { urls: string[]; secretFile: string; queueSize: number; maxAttempts: number; timeoutMs: number };
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
    /** Longest wait of a request for the primary (on-demand fetch, fresh advertisement); 0 = off. */
    onDemandWaitMs: number;
    freshness: Freshness;
    /** Pushes: forwarded to the primary (proxy) or refused with its URL. */
    push: PushMode;
  };
  /** Git LFS through the mirror (sync/serve/lfs). */
  lfs: { enabled: boolean; /** 0 = no limit. */ maxObjectBytes: number; prefetch: boolean };
  /** /status: when a repository behind the primary counts as delayed. */
  status: { delayedSyncToleranceMs: number };
  /** Draining before a stop (serve/drain.ts); quietPeriodMs < timeoutMs. */
  drain: { timeoutMs: number; quietPeriodMs: number };
  /** Farm mode (mirror.farm.*); undefined: a single node. */
  farm?: { peersFile: string; tokenFile: string; serverName: string; caFile?: string; nodeId?: string };
  /** /metrics: the served certificate whose expiry is exported; undefined = none. */
  metrics: { tlsCertificateFile?: string };
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

type Ctx = z.core.$RefinementCtx<string | undefined>;

function addIssue(ctx: Ctx, message: string, fix: string): void {
  ctx.addIssue({ code: "custom", message, params: { fix } });
}

/**
 * One key: the written value (trimmed; Java keeps trailing blanks, which only ever hurt
 * here) or the table's default, then the key's parser. A key without a default that is not
 * always required yields undefined when unset.
 */
function field(spec: KeySpec, ctx: ParseContext) {
  const { name } = spec;
  const ex = `${name}=${withHome(spec.example, ctx.home)}`;
  return z
    .string()
    .optional()
    .transform((written, zctx) => {
      const value = written?.trim() ?? (spec.default !== undefined ? withHome(spec.default, ctx.home) : undefined);
      if (value === undefined) {
        if (spec.required !== true) return undefined;
        addIssue(zctx, "is required but not set", `add ${ex}  — ${spec.description}`);
        return z.NEVER;
      }
      const allowEmpty = spec.value.kind === "refPatterns" && spec.value.allowEmpty === true;
      if (value === "" && !allowEmpty) {
        addIssue(zctx, "is empty", spec.default !== undefined ? `delete the line to use the default (${withHome(spec.default, ctx.home)}), or set ${ex}` : ex);
        return z.NEVER;
      }
      const parsed = parseValue(spec, value, name, ctx);
      if (parsed instanceof Invalid) {
        addIssue(zctx, parsed.message, parsed.fix);
        return z.NEVER;
      }
      return parsed;
    });
}

/** The zod schema of a key table: one field per key, named by the properties key. */
export function schemaOf(keys: readonly KeySpec[], ctx: ParseContext) {
  return z.object(Object.fromEntries(keys.map((k) => [k.name, field(k, ctx)])));
}

/** The table's keys parsed, by id (typed: `d.concurrency` is a number). */
function parseKeys(input: Record<string, string>, ctx: ParseContext): { success: true; data: ParsedKeys } | { success: false; error: z.ZodError } {
  const r = schemaOf(KEY_LIST, ctx).safeParse(input);
  if (!r.success) return r;
  const byName = r.data as Record<string, unknown>;
  return { success: true, data: Object.fromEntries(KEY_ENTRIES.map(([id, k]) => [id, byName[k.name]])) as ParsedKeys };
}

/** The keys the schema parses; a test holds this equal to the key table. */
export function schemaKeys(keys: readonly KeySpec[] = KEY_LIST): string[] {
  return Object.keys(schemaOf(keys, { home: "/" }).shape);
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

  const ssh = parseSshBase(effective(entries, KEYS.sshUrl.name, home) ?? "", KEYS.sshUrl.name);
  const input: Record<string, string> = {};
  for (const k of KEY_LIST) {
    const v = written(k.name);
    if (v !== undefined) input[k.name] = v;
  }
  const result = parseKeys(input, { home, sshHint: ssh instanceof Invalid ? undefined : ssh });
  if (!result.success) {
    for (const issue of result.error.issues) {
      const key = String(issue.path[0] ?? FILE_LABEL);
      const fix = issue.code === "custom" && typeof issue.params?.fix === "string" ? issue.params.fix : "see the configuration reference (smart-mirror check)";
      problems.push({ key, value: written(key), message: issue.message, fix, line: line(key) });
    }
  }

  // Rules between keys, from the table: required when / only used when.
  for (const spec of KEY_LIST) {
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

  // Events are never sent unsigned: URLs need the secret (a table condition cannot say "when set").
  if ((written(KEYS.eventsUrls.name)?.trim() ?? "") !== "" && (written(KEYS.eventsSecretFile.name)?.trim() ?? "") === "") {
    problems.push({
      key: KEYS.eventsSecretFile.name,
      value: undefined,
      message: `is required when ${KEYS.eventsUrls.name} is set (events are always signed)`,
      fix: `create a secret: \`(umask 077; openssl rand -hex 32 > ${homePath(home, "eventsSecretFile")})\`, add ${KEYS.eventsSecretFile.name}=${withHome(KEYS.eventsSecretFile.example, home)} and give the receivers the same secret`,
    });
  }
  if ((written(KEYS.eventsSecretFile.name)?.trim() ?? "") !== "" && (written(KEYS.eventsUrls.name)?.trim() ?? "") === "") {
    warnings.push({ key: KEYS.eventsSecretFile.name, message: `is ignored because ${KEYS.eventsUrls.name} is not set`, fix: `add ${KEYS.eventsUrls.name}=${KEYS.eventsUrls.example}, or delete the line`, line: line(KEYS.eventsSecretFile.name) });
  }

  problems.push(...farmProblems(written, home));

  const files = fileTargets(entries, home);
  if (!result.success || problems.length > 0) return { problems, warnings, files };

  const d = result.data;
  // The timeout bounds the whole drain: a quiet period as long would cut every drain.
  if (d.drainQuietPeriod >= d.drainTimeout) {
    problems.push({
      key: KEYS.drainQuietPeriod.name,
      value: written(KEYS.drainQuietPeriod.name),
      message: `(${formatDuration(d.drainQuietPeriod)}) must be shorter than ${KEYS.drainTimeout.name} (${formatDuration(d.drainTimeout)}), which bounds the whole drain`,
      fix: `lower ${KEYS.drainQuietPeriod.name}, or raise ${KEYS.drainTimeout.name} to at least the quiet period plus the longest clone you want to let finish`,
      line: line(KEYS.drainQuietPeriod.name),
    });
    return { problems, warnings, files };
  }
  const catalog: MirrorConfig["catalog"] = d.catalog === "static" ? { kind: "static", repos: d.catalogRepos ?? [] } : { kind: "rest" };
  const config: MirrorConfig = {
    home,
    propertiesFile: propertiesPath(home),
    setup: { displayName: d.displayName, baseUrl: d.baseUrl },
    upstream: {
      url: d.upstreamUrl,
      ssh: d.sshUrl,
      hostKeys: d.hostKeys,
      keyFile: d.keyFile,
      caFile: d.caFile,
      tokenFile: catalog.kind === "rest" ? d.tokenFile : undefined,
    },
    catalog,
    projects: d.projects,
    sync: {
      reconcileIntervalMs: d.syncInterval,
      concurrency: d.concurrency,
      timeoutMs: d.syncTimeout,
      retryMaxMs: d.retryMax,
      firstCloneStepBytes: d.firstCloneStepMb * 1024 * 1024,
      excludeRefs: d.excludeRefs,
      // The bound is never shorter than a round (a round is the finest grain of checks).
      scan: { maxPerSecond: d.scanMaxPerSecond, idleBoundMs: Math.max(d.scanIdleBound, d.syncInterval), activeWindowMs: d.scanActiveWindow },
    },
    webhook: { secretFile: d.webhookSecretFile },
    events:
      d.eventsUrls && d.eventsUrls.length > 0 && d.eventsSecretFile
        ? { urls: d.eventsUrls, secretFile: d.eventsSecretFile, queueSize: d.eventsQueueSize, maxAttempts: d.eventsMaxAttempts, timeoutMs: d.eventsTimeout }
        : undefined,
    purge: { enabled: d.purgeEnabled, protectPercent: d.purgeProtect },
    maintenance: { repackIntervalMs: d.repackInterval, fsckIntervalMs: d.fsckInterval },
    disk: { minFreeBytes: d.minFreeMb * 2 ** 20 },
    serve: {
      listen: d.listen,
      auth: d.auth,
      tokensFile: d.auth === "tokens" ? d.tokensFile : undefined,
      authCacheTtlMs: d.authCacheTtl,
      packCacheBytes: d.packCacheMb * 2 ** 20,
      packCacheScope: d.packCacheScope,
      uploadPacksPerClient: d.uploadPacksPerClient,
      minTransferBytesPerSec: d.minTransferRateKb * 1024,
      lowSpeedTimeMs: d.lowSpeedTime,
      maxTransferMs: d.maxTransferTime,
      bodyBudgetBytes: d.bodyBudgetMb * 2 ** 20,
      bodyTimeoutMs: d.bodyTimeout,
      onDemandWaitMs: d.onDemandWait,
      freshness: d.freshness,
      push: d.push,
    },
    lfs: { enabled: d.lfsEnabled, maxObjectBytes: d.lfsMaxObjectSizeMb * 2 ** 20, prefetch: d.lfsPrefetch },
    status: { delayedSyncToleranceMs: d.delayedSyncTolerance },
    drain: { timeoutMs: d.drainTimeout, quietPeriodMs: d.drainQuietPeriod },
    farm:
      d.farmPeersFile && d.farmTokenFile && d.farmServerName
        ? { peersFile: d.farmPeersFile, tokenFile: d.farmTokenFile, serverName: d.farmServerName, caFile: d.farmCaCertificatesFile, nodeId: d.farmNodeId }
        : undefined,
    metrics: { tlsCertificateFile: d.tlsCertificateFile },
    log: { level: d.logLevel },
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
        key: KEYS.catalogRepos.name,
        message: `${outside.map(repoKey).join(", ")} ${outside.length === 1 ? "is" : "are"} not in mirror.projects (${projects.join(", ")}) and will not be mirrored`,
        fix: "add the project to mirror.projects, or remove the repository from the list",
        line: entries.get(KEYS.catalogRepos.name)?.line,
      });
    }
  }
  const l = c.serve.listen;
  if (l.kind === "tcp" && (l.host === "0.0.0.0" || l.host === "::")) {
    out.push({
      key: KEYS.listen.name,
      message: `listens on all interfaces (${l.host}); clients would bypass nginx and TLS`,
      fix: `${KEYS.listen.name}=127.0.0.1:${l.port}` + "  (nginx proxies to it), or a unix: socket",
      line: entries.get(KEYS.listen.name)?.line,
    });
  }
  if (c.purge.enabled && c.purge.protectPercent === 0) {
    out.push({
      key: KEYS.purgeProtect.name,
      message: "is 0: any deletion at all will be refused, so no repository is ever purged",
      fix: `${KEYS.purgeProtect.name}=5, or ${KEYS.purgeEnabled.name}=false to say so explicitly`,
      line: entries.get(KEYS.purgeProtect.name)?.line,
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
  add(KEYS.keyFile.name, "privateKey");
  if (effective(entries, KEYS.catalog.name, home) === "rest") add(KEYS.tokenFile.name, "secret");
  add(KEYS.caFile.name, "caBundle");
  add(KEYS.webhookSecretFile.name, "secret");
  if ((entries.get(KEYS.eventsUrls.name)?.value.trim() ?? "") !== "") add(KEYS.eventsSecretFile.name, "secret");
  if (effective(entries, KEYS.auth.name, home) === "tokens") add(KEYS.tokensFile.name, "secret");
  if ((entries.get(KEYS.farmPeersFile.name)?.value.trim() ?? "") !== "") {
    add(KEYS.farmTokenFile.name, "secret");
    add(KEYS.farmCaCertificatesFile.name, "caBundle");
  }
  return out;
}

/**
 * Farm mode needs its credential and TLS name with the peers file (a table condition cannot say
 * "when set"); the other farm keys without a peers file are ignored, which is worth a word.
 */
function farmProblems(written: (k: string) => string | undefined, home: string): Problem[] {
  const set = (k: string) => (written(k)?.trim() ?? "") !== "";
  if (!set(KEYS.farmPeersFile.name)) return [];
  const out: Problem[] = [];
  const why = `is required when ${KEYS.farmPeersFile.name} is set (farm mode)`;
  if (!set(KEYS.farmTokenFile.name)) {
    out.push({ key: KEYS.farmTokenFile.name, value: undefined, message: why, fix: `create the farm's token once and give every node the same file: \`(umask 077; openssl rand -hex 32 > ${withHome("DIR/shared/secrets/farm-token", home)})\`, then add ${KEYS.farmTokenFile.name}=<that file>` });
  }
  const name = written(KEYS.farmServerName.name)?.trim() ?? "";
  if (name === "") out.push({ key: KEYS.farmServerName.name, value: undefined, message: why, fix: `add ${KEYS.farmServerName.name}=${KEYS.farmServerName.example} (the name on the nodes' certificate)` });
  else if (!/^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(name)) {
    out.push({ key: KEYS.farmServerName.name, value: name, message: "is not a DNS name", fix: `${KEYS.farmServerName.name}=${KEYS.farmServerName.example} (a host name, no scheme, port or path)` });
  }
  return out;
}

export function propertiesPath(home: string): string {
  return homePath(path.resolve(home), "properties");
}
