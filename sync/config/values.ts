/**
 * Parsers for the kinds of values bitbucket.properties holds. Pure: each takes the (trimmed)
 * text and returns the typed value or an Invalid saying what is wrong and what to write
 * instead. The schema (schema.ts) picks one per key.
 */
import { createHash } from "node:crypto";
import * as path from "node:path";
import { parseRepoKey, RepoId } from "../types";
import { homePath } from "../homeLayout";
import { isValidRepoId, projectKeyProblem } from "../repoName";
import { formatListenAddress, ListenAddress, MAX_UNIX_PATH, parseListenAddress } from "../listenAddress";
import { DURATION_GRAMMAR, formatDuration, parseDuration } from "./duration";
import { Invalid } from "./problems";

// ---------------------------------------------------------------- URLs

export interface HttpsUrlRules {
  /** Why HTTPS is required, shown in the message. */
  why: string;
  /** Extra hint when the value uses another scheme (e.g. an ssh:// URL in the HTTPS key). */
  otherScheme: string;
}

/** An https:// base URL, normalised: lower-case host, no trailing slash, no credentials/query. */
export function parseHttpsUrl(value: string, key: string, rules: HttpsUrlRules): string | Invalid {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    const guess = /^[\w.-]+(:\d+)?(\/.*)?$/.test(value) ? `https://${value}` : "https://bitbucket.example.com";
    return new Invalid("is not a URL", `${key}=${guess}`);
  }
  if (url.protocol === "http:") {
    return new Invalid(`must start with https:// (${rules.why})`, `${key}=${value.replace(/^http:/i, "https:")}`);
  }
  if (url.protocol !== "https:") {
    return new Invalid(`must be an https:// URL, not ${url.protocol}// (${rules.otherScheme})`, `${key}=https://${url.host || "bitbucket.example.com"}`);
  }
  if (url.username || url.password) {
    url.username = "";
    url.password = "";
    return new Invalid(
      "must not contain a user name or password (the URL is logged and shown in /status)",
      `${key}=${stripSlash(url.href)}  (put credentials in a file: mirror.upstream.tokenFile)`,
    );
  }
  if (url.search || url.hash) {
    return new Invalid("must not have a query (?...) or fragment (#...)", `${key}=${stripSlash(url.origin + url.pathname)}`);
  }
  return stripSlash(url.origin + url.pathname);
}

function stripSlash(s: string): string {
  return s.replace(/\/+$/, "");
}

// ---------------------------------------------------------------- SSH URL of the primary

export interface SshBase {
  user: string;
  host: string;
  port: number;
  /** Normalised `ssh://user@host[:port]`; repositories are fetched from `<url>/<PROJECT>/<slug>.git`. */
  url: string;
}

const SSH_FIX_HINT = "(Bitbucket serves SSH on port 7999 by default; copy user, host and port from any repository's SSH clone URL)";

export function parseSshBase(value: string, key: string): SshBase | Invalid {
  if (/^https?:\/\//i.test(value)) {
    const host = safeHost(value) ?? "bitbucket.example.com";
    return new Invalid(
      "must be an ssh:// URL: mirrors sync from the primary over SSH only, never HTTP(S)",
      `${key}=ssh://git@${host}:7999  ${SSH_FIX_HINT}`,
    );
  }
  // scp-like "git@host:PROJ/repo.git": no port and a relative path, so it cannot name a base.
  const scp = /^(?:([^@\s/]+)@)?([^:\s/]+):(?!\/\/)/.exec(value);
  if (scp && !value.includes("://")) {
    return new Invalid(
      "scp-like syntax (user@host:path) is not accepted; write an ssh:// URL of the server, without a repository path",
      `${key}=ssh://${scp[1] ?? "git"}@${scp[2]}:7999  ${SSH_FIX_HINT}`,
    );
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return new Invalid("is not a URL", `${key}=ssh://git@bitbucket.example.com:7999  ${SSH_FIX_HINT}`);
  }
  if (url.protocol !== "ssh:") {
    return new Invalid(`must be an ssh:// URL, not ${url.protocol}//`, `${key}=ssh://git@${url.hostname || "bitbucket.example.com"}:7999`);
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  if (!host) return new Invalid("has no host name", `${key}=ssh://git@bitbucket.example.com:7999`);
  const port = url.port === "" ? 22 : Number(url.port);
  const hostPort = `${url.hostname}${url.port ? `:${url.port}` : ""}`;
  if (!url.username) {
    return new Invalid("must name the SSH user (Bitbucket's is \"git\")", `${key}=ssh://git@${hostPort}`);
  }
  if (url.password) {
    return new Invalid("must not contain a password; the mirror authenticates with its key (mirror.upstream.keyFile)", `${key}=ssh://${url.username}@${hostPort}`);
  }
  const user = decodeURIComponent(url.username);
  const base = `ssh://${url.username}@${hostPort}`;
  if (url.pathname !== "" && url.pathname !== "/") {
    const what = /\.git\/?$/.test(url.pathname) ? "is a repository URL; give the server's base URL" : "must not have a path";
    return new Invalid(`${what}: repositories are fetched from <base>/<PROJECT>/<slug>.git`, `${key}=${base}`);
  }
  if (url.search || url.hash) return new Invalid("must not have a query or fragment", `${key}=${base}`);
  return { user, host, port, url: base };
}

function safeHost(value: string): string | undefined {
  try {
    return new URL(value).hostname || undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- pinned host keys

export interface HostKey {
  type: string;
  /** The key blob (SSH wire format) in base64, as in known_hosts and .pub files. */
  base64: string;
  /** OpenSSH's fingerprint, "SHA256:...", for logs and `check` output. */
  fingerprint: string;
}

export const HOST_KEY_TYPES = [
  "ssh-ed25519",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "ssh-rsa",
  "sk-ssh-ed25519@openssh.com",
  "sk-ecdsa-sha2-nistp256@openssh.com",
];
const KNOWN_TYPES = new Set(HOST_KEY_TYPES);
const STRICT_BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** How to obtain and verify the keys; used in every host-key fix. */
export function hostKeyFix(key: string, where?: { host: string; port: number }): string {
  const host = where?.host ?? "HOST";
  const port = where?.port ?? "PORT";
  return (
    `run \`ssh-keyscan -p ${port} ${host}\` from a trusted network, check each key's fingerprint ` +
    `(\`ssh-keygen -lf <file>\`) against the one the primary's administrator reads on the server, ` +
    `then set ${key}=ssh-ed25519 AAAA... (several keys: separate with commas)`
  );
}

/**
 * Pinned keys: entries separated by commas or newlines, each "type base64 [comment]" or a
 * known_hosts line "host type base64" (what ssh-keyscan prints). Every entry is checked: the
 * type must be known and the blob must be valid base64 that starts with its own type name.
 */
export function parseHostKeys(value: string, key: string, where?: { host: string; port: number }): HostKey[] | Invalid {
  const keys: HostKey[] = [];
  const errors: string[] = [];
  const entries = value.split(/[,\n]/).map((e) => e.trim()).filter((e) => e !== "" && !e.startsWith("#"));
  entries.forEach((entry, i) => {
    const parsed = parseOneHostKey(entry);
    if (typeof parsed === "string") errors.push(`entry ${i + 1} (${preview(entry)}): ${parsed}`);
    else if (!keys.some((k) => k.base64 === parsed.base64)) keys.push(parsed);
  });
  if (errors.length > 0) return new Invalid(errors.join("; "), hostKeyFix(key, where));
  if (keys.length === 0) return new Invalid("lists no host keys", hostKeyFix(key, where));
  return keys;
}

function parseOneHostKey(entry: string): HostKey | string {
  const parts = entry.split(/\s+/);
  if (parts.includes("ssh-dss")) return "ssh-dss (DSA) keys are disabled in OpenSSH and not accepted; pin the server's ed25519, ECDSA or RSA key";
  // "type blob [comment]" or known_hosts "host type blob [comment]".
  const at = KNOWN_TYPES.has(parts[0]) ? 0 : KNOWN_TYPES.has(parts[1] ?? "") ? 1 : -1;
  if (at < 0) return `not an SSH public key; expected "<type> <base64>" with type one of ${HOST_KEY_TYPES.join(", ")}`;
  const type = parts[at];
  const b64 = parts[at + 1];
  if (!b64) return `the ${type} key has no base64 blob after its type`;
  if (!STRICT_BASE64.test(b64) || b64.length % 4 !== 0) return "the key blob is not valid base64 (truncated or damaged when copied?)";
  const blob = Buffer.from(b64, "base64");
  const nameLen = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
  const embedded = nameLen > 0 && 4 + nameLen <= blob.length ? blob.subarray(4, 4 + nameLen).toString("latin1") : undefined;
  if (embedded !== type) {
    return embedded ? `the blob is a ${embedded} key but is labelled ${type}` : "the key blob is damaged (it does not start with its type name)";
  }
  // An ed25519 blob is exactly: string "ssh-ed25519" + string of the 32-byte key.
  if (type === "ssh-ed25519" && blob.length !== 4 + 11 + 4 + 32) return "the ssh-ed25519 blob has the wrong length (truncated?)";
  return { type, base64: b64, fingerprint: sshFingerprint(blob) };
}

export function sshFingerprint(blob: Buffer): string {
  return "SHA256:" + createHash("sha256").update(blob).digest("base64").replace(/=+$/, "");
}

function preview(s: string): string {
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 37)}...` : s);
}

// ---------------------------------------------------------------- listen address

export type { ListenAddress };

/** The shared grammar (sync/listenAddress.ts) plus the config's policy: a real port, socket paths from the home. */
export function parseListen(value: string, key: string, home: string): ListenAddress | Invalid {
  const socket = `${key}=unix:${homePath(home, "socket")}`;
  const fix = `${key}=127.0.0.1:7990  (or ${socket})`;
  const a = parseListenAddress(value);
  if ("problem" in a) return new Invalid(a.problem, a.problem === "names no socket path" ? socket : fix);
  if (a.kind === "unix") {
    const full = resolvePath(a.path, home);
    if (Buffer.byteLength(full) > MAX_UNIX_PATH) return new Invalid(`socket path ${full} is longer than ${MAX_UNIX_PATH} bytes`, `${key}=unix:/run/smart-mirror/http.sock`);
    return { kind: "unix", path: full };
  }
  if (a.port === 0) return new Invalid("port 0 is out of range 1..65535", fix);
  return a;
}

export const formatListen = formatListenAddress;

// ---------------------------------------------------------------- projects, repositories, refs

// Project keys (incl. "~user" personal projects): the rule the catalog, webhooks and the store
// use too (sync/repoName.ts).
const isProjectKey = (k: string) => projectKeyProblem(k) === undefined;

/**
 * Comma-separated (newlines count as commas). Whitespace does not separate: "My Project" stays
 * one (invalid) entry instead of silently becoming two valid-looking keys.
 */
export function splitList(value: string): string[] {
  return value
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

export function parseProjects(value: string, key: string): "ALL" | string[] | Invalid {
  if (value === "ALL") return "ALL";
  const items = splitList(value);
  if (items.length === 0) return new Invalid("is empty", `${key}=ALL  (or a list of project keys: ${key}=PROJ, OPS)`);
  if (items.some((p) => p.toUpperCase() === "ALL")) {
    return new Invalid("ALL mirrors every project and cannot be combined with project keys", `${key}=ALL  or  ${key}=${items.filter((p) => p.toUpperCase() !== "ALL").join(", ") || "PROJ"}`);
  }
  const bad = items.filter((p) => !isProjectKey(p));
  if (bad.length > 0) {
    return new Invalid(
      `${bad.map((b) => JSON.stringify(b)).join(", ")} ${bad.length === 1 ? "is not a project key" : "are not project keys"} (letters, digits, _ and -; e.g. PROJ)`,
      `${key}=${(items.some((p) => isProjectKey(p)) ? [...new Set(items.filter((p) => isProjectKey(p)))] : ["PROJ"]).join(", ")}  (use the key shown in the primary's project URL /projects/KEY, not the project name)`,
    );
  }
  return [...new Set(items)];
}

export function parseRepoList(value: string, key: string): RepoId[] | Invalid {
  const items = splitList(value);
  if (items.length === 0) return new Invalid("lists no repositories", `${key}=PROJ/repo, PROJ/other`);
  const repos: RepoId[] = [];
  // A Set, not a scan of `repos`: a static catalog of 100,000 names took 55 s to dedupe that way.
  const seen = new Set<string>();
  const bad: string[] = [];
  const fixed: string[] = [];
  for (const item of items) {
    let id: RepoId | undefined;
    try {
      id = parseRepoKey(item.replace(/\.git$/, ""));
    } catch {
      id = undefined;
    }
    if (!id || !isValidRepoId(id) || item.endsWith(".git")) {
      bad.push(item);
      if (id && isValidRepoId(id)) fixed.push(`${id.project}/${id.slug}`);
      continue;
    }
    fixed.push(item);
    const k = `${id.project}/${id.slug}`;
    if (!seen.has(k)) {
      seen.add(k);
      repos.push(id);
    }
  }
  if (bad.length > 0) {
    return new Invalid(
      `${bad.map((b) => JSON.stringify(b)).join(", ")}: each entry must be PROJECT/slug (no .git suffix, no leading or extra slashes)`,
      `${key}=${(fixed.length > 0 ? fixed : ["PROJ/repo"]).join(", ")}`,
    );
  }
  return repos;
}

/**
 * Ref patterns as git refspecs take them (they become negative refspecs `^pattern` in the
 * fetch): a full ref name under refs/, optionally with one `*`.
 */
export function parseRefPatterns(value: string, key: string): string[] | Invalid {
  const items = splitList(value);
  const bad = items.filter((p) => refPatternError(p) !== undefined);
  if (bad.length > 0) {
    return new Invalid(
      bad.map((b) => `${JSON.stringify(b)} ${refPatternError(b)}`).join("; "),
      `${key}=refs/pull-requests/*  (full ref names under refs/, at most one *, separated by commas; empty to mirror every ref)`,
    );
  }
  return [...new Set(items)];
}

function refPatternError(p: string): string | undefined {
  if (!p.startsWith("refs/")) return "must start with refs/";
  if ((p.match(/\*/g) ?? []).length > 1) return "may contain at most one *";
  // eslint-disable-next-line no-control-regex -- control characters are exactly what git refuses
  if (/[\s~^:?[\\\x00-\x1f\x7f]/.test(p)) return "contains a character git does not allow in ref names";
  if (p.includes("..") || p.includes("//") || p.includes("@{") || p.endsWith("/") || p.endsWith(".") || p.endsWith(".lock")) {
    return "is not a valid ref name";
  }
  return undefined;
}

/**
 * Receivers of the synced event (mirror.events.urls): https URLs, separated by commas or
 * newlines. Plain http only to a loopback address (a receiver on the mirror host itself): the
 * events name repositories and commits, and a signature proves origin, not secrecy. No user
 * name or password (credentials in a URL end up in logs; put a token in the path or query).
 */
export function parseEventUrls(value: string, key: string, max: number): string[] | Invalid {
  const items = [...new Set(splitList(value))];
  if (items.length > max) return new Invalid(`lists ${items.length} URLs; at most ${max}`, `${key}=https://ci.example.com/hooks/mirror  (fan out on the receiver's side)`);
  for (const item of items) {
    let url: URL;
    try {
      url = new URL(item);
    } catch {
      return new Invalid(`${JSON.stringify(item)} is not a URL`, `${key}=https://ci.example.com/hooks/mirror`);
    }
    if (url.protocol === "http:" && !isLoopbackHost(url.hostname)) {
      return new Invalid(`${JSON.stringify(item)} is plain http to another host (events would cross the network unencrypted)`, `${key}=${item.replace(/^http:/i, "https:")}  (plain http only to 127.0.0.1, ::1 or localhost)`);
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") return new Invalid(`${JSON.stringify(item)} must be an https:// URL`, `${key}=https://${url.host || "ci.example.com"}/hooks/mirror`);
    if (url.username || url.password) return new Invalid(`${JSON.stringify(item)} must not contain a user name or password`, `${key}=${url.protocol}//${url.host}${url.pathname}  (the receiver checks the X-Hub-Signature instead)`);
    if (url.hash) return new Invalid(`${JSON.stringify(item)} must not have a #fragment`, `${key}=${item.split("#")[0]}`);
  }
  return items;
}

function isLoopbackHost(host: string): boolean {
  return host === "localhost" || host === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

// ---------------------------------------------------------------- scalars

export function parseIntIn(value: string, key: string, min: number, max: number, example: number): number | Invalid {
  if (!/^\d+$/.test(value)) return new Invalid(`must be a whole number from ${min} to ${max}`, `${key}=${example}`);
  const n = Number(value);
  if (n < min || n > max) return new Invalid(`must be from ${min} to ${max}`, `${key}=${Math.min(max, Math.max(min, n))}`);
  return n;
}

export function parsePercent(value: string, key: string): number | Invalid {
  const m = /^(\d+(?:\.\d+)?)\s*%?$/.exec(value);
  if (!m) return new Invalid("must be a percentage from 0 to 100, e.g. 5 or 5%", `${key}=5`);
  const n = Number(m[1]);
  if (n > 100) return new Invalid("must be at most 100 (percent)", `${key}=100  (100 turns the protection off)`);
  return n;
}

export function parseBool(value: string, key: string): boolean | Invalid {
  const v = value.toLowerCase();
  if (v === "true") return true;
  if (v === "false") return false;
  return new Invalid("must be true or false", `${key}=true`);
}

export function parseEnum<T extends string>(value: string, key: string, allowed: readonly T[]): T | Invalid {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  const ci = allowed.find((a) => a.toLowerCase() === value.toLowerCase());
  return new Invalid(`must be one of ${allowed.join(", ")}`, `${key}=${ci ?? allowed[0]}`);
}

export interface DurationRules {
  minMs: number;
  maxMs: number;
  /** 0 is allowed and means "off". */
  zeroMeansOff?: boolean;
  example: string;
}

export function parseDurationIn(value: string, key: string, rules: DurationRules): number | Invalid {
  const ms = parseDuration(value);
  if (ms === undefined) return new Invalid(`is not a duration; write ${DURATION_GRAMMAR}`, `${key}=${rules.example}`);
  if (ms === 0 && rules.zeroMeansOff) return 0;
  const bare = /^\d+(\.\d+)?$/.test(value) ? ` (a bare number is seconds: ${value} = ${formatDuration(ms)})` : "";
  if (ms < rules.minMs) {
    return new Invalid(`is too short${bare}; the minimum is ${formatDuration(rules.minMs)}${rules.zeroMeansOff ? " (or 0 to turn it off)" : ""}`, `${key}=${rules.example}`);
  }
  if (ms > rules.maxMs) return new Invalid(`is too long${bare}; the maximum is ${formatDuration(rules.maxMs)}`, `${key}=${rules.example}`);
  return ms;
}

/** Relative paths are relative to the mirror home (DIR), so a home can be moved as a whole. */
export function resolvePath(p: string, home: string): string {
  return path.resolve(home, p);
}

/** One line of text (a display name): no control characters, bounded length. */
export function parseText(value: string, key: string, maxLength: number, example: string): string | Invalid {
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(value)) return new Invalid("must not contain control characters", `${key}=${example}`);
  if (value.length > maxLength) return new Invalid(`is longer than ${maxLength} characters`, `${key}=${value.slice(0, 60)}`);
  return value;
}
