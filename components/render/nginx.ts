/**
 * The nginx site in front of the sync daemon: TLS termination, the HTTP->HTTPS redirect and a
 * reverse proxy to the daemon's unix socket. A pure function of plain values, so the Pulumi
 * deploy (which puts the file on the host) and `npm start`'s local launcher render the same
 * text, and the tests run that text in a real nginx (test/integration/nginxRender.test.ts).
 *
 * Output: ONE file meant to be included inside `http {}` — Debian/Ubuntu's nginx.conf includes
 * /etc/nginx/conf.d/*.conf there, so the http-context pieces (log_format, map, geo,
 * limit_req_zone, upstream) sit at the top and the server blocks follow. Every http-context
 * name starts with `input.name` (default "smart_mirror"), so two sites never collide.
 *
 * Decisions (and why):
 * - TLS: Mozilla Server Side TLS "intermediate" (guideline 6.0,
 *   https://ssl-config.mozilla.org/guidelines/6.0.json): TLS 1.2 + 1.3, ECDHE AEAD ciphers for
 *   1.2 (6.0 dropped the DHE suites of 5.7, so no dhparam file), client cipher preference,
 *   1-day shared session cache, session tickets off (ticket keys would never rotate with
 *   nginx's per-restart keys), HSTS max-age=63072000. TLS 1.3 suites and key-exchange groups
 *   stay at OpenSSL's defaults: they equal Mozilla's list on OpenSSL 3.0, and a host with
 *   OpenSSL >= 3.5 keeps the post-quantum X25519MLKEM768 that 6.0 lists first — a name
 *   OpenSSL 3.0 (Debian 12) would reject in an explicit `ssl_ecdh_curve`. No OCSP stapling:
 *   private CAs have no responder and Let's Encrypt ended OCSP in 2025.
 * - HTTP/1.1 only (no http2): git runs its requests one after another on a connection, so
 *   multiplexing buys nothing, and HTTP/1.1 is the path git's large transfers are proven on.
 * - Only the daemon's routes are proxied (/scm/, /status, /status/ready, /status/*, /metrics, /healthz,
 *   /webhook); anything else is a JSON 404 from nginx. Scanner noise never reaches the
 *   daemon, and a route the daemon may add for local use is not exposed by accident.
 * - /scm/ (clones and fetches): request and response buffering off, so packs stream in both
 *   directions and are never spooled to disk; idle timeouts of an hour (the daemon may queue
 *   an upload-pack, and a huge repository can take long to start); gzip off (packs are
 *   already zlib-compressed); request bodies up to 512m — see DEFAULT_GIT_MAX_BODY.
 * - Rate and connection limits per client address on /scm/ (DEFAULT_RATE_LIMIT and
 *   DEFAULT_CONNECTIONS_PER_CLIENT say how the numbers are sized for a CI fleet behind one NAT
 *   address), a rate limit on /webhook; 429 when exceeded. Slow clients are cut: headers and
 *   bodies idle 30 s, packs unread for 10 minutes (timeouts below).
 * - /metrics and the per-repo status pages (/status/repos, /status/delayed) name the primary's
 *   repositories, so they answer only an allow-list (default loopback + private ranges);
 *   /status, /healthz and the HMAC-signed /webhook are open. So is the long-poll
 *   /status/repos/PROJECT/repo/wait (CI runners anywhere wait on it): the daemon applies the
 *   clones' access rules to it (401 without credentials, 404 for a repository the caller may
 *   not read), nginx waits past its longest hold and limits connections per address as /scm/.
 * - X-Forwarded-For is set to $remote_addr, not appended to: nginx is the edge, and a
 *   client-supplied header must not reach the daemon's logs as truth.
 */
import * as net from "node:net";
import { STATUS_PAGE_CSS_PATH, STATUS_PAGE_SCRIPT_PATH } from "../../sync/serve/statusPage/assets";
import { WAIT_MAX_SECONDS } from "../../sync/serve/waitRequest";

/**
 * The status API's long-poll (GET /status/repos/PROJECT/repo/wait?commit=SHA) holds a request
 * up to the daemon's WAIT_MAX_SECONDS; nginx waits that long plus a margin before giving up.
 */
export const WAIT_READ_TIMEOUT_SECONDS = WAIT_MAX_SECONDS + 30;

/** Mozilla intermediate TLS 1.2 ciphers, in Mozilla's order (guideline 6.0). */
export const MOZILLA_INTERMEDIATE_CIPHERS = [
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-CHACHA20-POLY1305",
] as const;

export const HSTS_MAX_AGE_SECONDS = 63072000;

/**
 * Request body limit on /scm/. Upload-pack requests carry want/have lines (~50 bytes each);
 * stateless HTTP negotiation re-sends earlier haves each round, and a fetch of a repository
 * with a million refs wants ~50 MB — which git gzips before sending, and nginx counts the
 * bytes on the wire. 512m is far above any real negotiation yet still ends an endless upload.
 * With request buffering off the body is streamed, so the size costs no disk.
 */
export const DEFAULT_GIT_MAX_BODY = "512m";

/**
 * Request body limit on pushes (POST .../git-receive-pack), which the daemon streams on to the
 * primary (mirror.push=proxy) without holding them: none, like Bitbucket, whose pushes are
 * bounded by the primary's own settings and hooks; the mirror adds no limit of its own. With
 * request buffering off a push costs nginx no disk either.
 */
export const DEFAULT_PUSH_MAX_BODY = "0";

/** Matches the daemon's own webhook limit (sync/serve/webhookHandler.ts, 1 MiB). */
export const WEBHOOK_MAX_BODY = "1m";
/** A farm announcement's largest body (sync/farm/announce.ts ANNOUNCE_MAX_BODY is 256 KiB). */
export const FARM_ANNOUNCE_MAX_BODY = "256k";

/** Idle (not total) timeouts for /scm/: between two reads/writes, never for a whole clone. */
export const DEFAULT_GIT_TIMEOUT_SECONDS = 3600;

/**
 * Per-client-address limit on /scm/ requests. A protocol-v2 fetch is 3 requests (info/refs,
 * ls-refs, fetch), so burst 3000 lets 1000 CI runners behind one NAT address all fetch at
 * once, and 50/s sustained is 1000 fetches a minute per address. It stops a runaway loop,
 * not a fleet; exempt the fleet's addresses (rateLimit.exempt) if it is bigger than that.
 */
export const DEFAULT_RATE_LIMIT = { perSecond: 50, burst: 3000 } as const;

/**
 * Concurrent connections per client address on /scm/ (limit_conn), on by default: git uses one
 * connection at a time per clone, so this is about 256 clones at once from one address (a CI
 * fleet behind one NAT); the daemon's per-client share of upload-pack slots keeps one address
 * from taking them all. Exempt the fleet (rateLimit.exempt) to lift both.
 */
export const DEFAULT_CONNECTIONS_PER_CLIENT = 256;

/**
 * Slow clients: headers and request bodies that send nothing for 30 s are cut (the daemon's
 * mirror.serve.bodyTimeout matches), and a client that reads nothing of its pack for 10 minutes
 * (the daemon's idle timeout) too. Timed-out connections are reset, so their buffers go at once.
 */
export const CLIENT_HEADER_TIMEOUT_SECONDS = 30;
export const CLIENT_BODY_TIMEOUT_SECONDS = 30;
export const GIT_SEND_TIMEOUT_SECONDS = 600;

/** Webhook deliveries per address: Bitbucket sends one per push; 10/s with a burst of 100 is plenty. */
export const WEBHOOK_RATE_LIMIT = { perSecond: 10, burst: 100 } as const;

/** Who may read /metrics and the per-repo status pages unless told otherwise. */
export const DEFAULT_INTERNAL_ALLOW = ["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"] as const;

/**
 * The daemon is a node http.Server, whose keepAliveTimeout is 5 s. nginx must drop an idle
 * upstream connection before the daemon does, or it may send a request on a socket the daemon
 * is closing — and a POST (upload-pack) with an unbuffered body cannot be retried.
 */
export const UPSTREAM_KEEPALIVE_TIMEOUT_SECONDS = 4;

export interface RateLimit {
  /** Sustained requests per second per client address (integer). Give this or perMinute. */
  perSecond?: number;
  /** Sustained requests per minute per client address (integer), for limits below 1/s. */
  perMinute?: number;
  /** Requests above the rate answered at once before 429s start. */
  burst: number;
  /** Addresses/CIDRs never limited (e.g. the CI fleet's NAT address). */
  exempt?: string[];
}

export interface NginxSiteInput {
  /** DNS name the certificate is issued for; used in the redirect. */
  serverName: string;
  /** More names served by the same site (e.g. a latency-routed global name); the cert must cover them. */
  serverAliases?: string[];
  /** Default 443. */
  listenHttps?: number;
  /** Port of the HTTP->HTTPS redirect; default 80; false for none. */
  listenHttp?: number | false;
  /** Addresses to listen on; default ["0.0.0.0", "[::]"]. IPv6 literals may be given with or without brackets. */
  listenAddresses?: string[];
  /** PEM: the leaf followed by its intermediates. */
  certPath: string;
  keyPath: string;
  /** The daemon: an absolute unix socket path (the nginx worker user must be able to connect) or host/port. */
  upstreamSocket: string | { host: string; port: number };
  /** Request body limit on /scm/ in nginx size syntax ("512m", "0" = no limit); default DEFAULT_GIT_MAX_BODY. */
  clientMaxBodySize?: string;
  /** Request body limit on pushes (git-receive-pack), nginx size syntax; default DEFAULT_PUSH_MAX_BODY ("0" = none). */
  pushMaxBodySize?: string;
  /** Idle timeouts on /scm/ in seconds; default DEFAULT_GIT_TIMEOUT_SECONDS. */
  gitTimeoutSeconds?: number;
  /** Per-client rate limit on /scm/; default DEFAULT_RATE_LIMIT; false for none. */
  rateLimit?: RateLimit | false;
  /** Concurrent connections per client address on /scm/; default DEFAULT_CONNECTIONS_PER_CLIENT; false for none. */
  connectionsPerClient?: number | false;
  /** CIDRs (or "all") allowed to read /metrics, /status/repos, /status/delayed; default DEFAULT_INTERNAL_ALLOW. */
  internalAllow?: string[];
  /** CIDRs (or "all") allowed to POST /webhook; default ["all"] (the daemon checks the HMAC signature). */
  webhookAllow?: string[];
  /** Strict-Transport-Security on every HTTPS answer; default true. */
  hsts?: boolean;
  /** Default /var/log/nginx/<name>.access.log; false for none. */
  accessLog?: string | false;
  /** Default /var/log/nginx/<name>.error.log. */
  errorLog?: string;
  /** Directory for nginx's client-body and proxy temp files of this site; default nginx's own. */
  tmpDir?: string;
  /** Prefix of every http-context name (upstream, zones, log format, variables); default "smart_mirror". */
  name?: string;
}

/** The input with every default applied and every value checked. */
export interface NginxSite {
  name: string;
  serverNames: string[];
  listenHttps: number;
  listenHttp: number | false;
  listenAddresses: string[];
  certPath: string;
  keyPath: string;
  /** nginx `server` argument: "unix:/path" or "host:port". */
  upstreamServer: string;
  clientMaxBodySize: string;
  pushMaxBodySize: string;
  gitTimeoutSeconds: number;
  rateLimit: { rate: string; burst: number; exempt: string[] } | false;
  connectionsPerClient: number | false;
  internalAllow: string[];
  webhookAllow: string[];
  hsts: boolean;
  accessLog: string | false;
  errorLog: string;
  tmpDir?: string;
}

export interface NginxSiteProblem {
  field: string;
  message: string;
  fix: string;
}

export class NginxSiteInputError extends Error {
  constructor(readonly problems: NginxSiteProblem[]) {
    super(`invalid nginx site input:\n${problems.map((p) => `  ${p.field}: ${p.message} — ${p.fix}`).join("\n")}`);
    this.name = "NginxSiteInputError";
  }
}

// ---- validation (pure) -----------------------------------------------------------------

/**
 * Anything that could end a directive, open a block, start a comment or a variable, or split
 * a token. Values are emitted unquoted, so refusing these is what keeps input from injecting
 * configuration.
 */
const UNSAFE_CHARS = /[\s;{}'"\\#$`]/;
const hasControlChar = (v: string) => [...v].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);
const NAME = /^[a-z][a-z0-9_]{0,31}$/;
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const SIZE = /^(0|[1-9][0-9]{0,9}[kmg]?)$/i;
/** sun_path is 108 bytes including the terminating NUL. */
const MAX_SOCKET_PATH_BYTES = 107;

type Check = (problem: NginxSiteProblem) => void;

function describe(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}

/** A DNS host name (lowercased), or a problem. */
function checkDnsName(field: string, v: unknown, report: Check): string | undefined {
  if (typeof v !== "string" || v.length === 0) {
    report({ field, message: `must be a DNS name, got ${describe(v)}`, fix: "set it to the host name the certificate is issued for, e.g. mirror.example.com" });
    return undefined;
  }
  const name = v.toLowerCase().replace(/\.$/, "");
  const labels = name.split(".");
  if (name.length > 253 || !labels.every((l) => DNS_LABEL.test(l)) || net.isIP(name) !== 0) {
    report({
      field,
      message: `${describe(v)} is not a DNS host name`,
      fix: "use letters, digits, '-' and '.' only (labels of 1-63 characters, no leading/trailing '-'), e.g. mirror.example.com; no wildcards, ports or IP addresses",
    });
    return undefined;
  }
  return name;
}

function checkPort(field: string, v: unknown, report: Check): number | undefined {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > 65535) {
    report({ field, message: `must be a TCP port, got ${describe(v)}`, fix: "use an integer from 1 to 65535 (443 for HTTPS, 80 for the redirect)" });
    return undefined;
  }
  return v;
}

function checkPositiveInt(field: string, v: unknown, report: Check, what: string, min = 1): number | undefined {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min) {
    report({ field, message: `must be an integer >= ${min}, got ${describe(v)}`, fix: what });
    return undefined;
  }
  return v;
}

function checkAbsolutePath(field: string, v: unknown, report: Check): string | undefined {
  if (typeof v !== "string" || !v.startsWith("/")) {
    report({ field, message: `must be an absolute path, got ${describe(v)}`, fix: "give the full path starting with '/', e.g. /etc/smart-mirror/tls/fullchain.pem" });
    return undefined;
  }
  if (UNSAFE_CHARS.test(v) || hasControlChar(v)) {
    report({
      field,
      message: `${describe(v)} contains a character nginx would read as syntax (whitespace, ; { } quotes \\ # $ or a control character)`,
      fix: "move the file to a path made of letters, digits and / . _ -",
    });
    return undefined;
  }
  if (v.split("/").includes("..")) {
    report({ field, message: `${describe(v)} contains '..'`, fix: "give the path without '..' segments" });
    return undefined;
  }
  return v;
}

/** "10.0.0.0/8", "::1", "all" -> the allow argument; pure. */
function checkCidr(field: string, v: unknown, report: Check): string | undefined {
  if (v === "all") return v;
  const fix = 'use an IPv4/IPv6 address or CIDR such as 10.0.0.0/8 or fd00::/8, or "all"';
  if (typeof v !== "string") {
    report({ field, message: `must be an address or CIDR, got ${describe(v)}`, fix });
    return undefined;
  }
  const [addr, bits, extra] = v.split("/");
  const family = net.isIP(addr ?? "");
  const max = family === 6 ? 128 : 32;
  const bitsOk = bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= max);
  if (family === 0 || !bitsOk || extra !== undefined) {
    report({ field, message: `${describe(v)} is not an address or CIDR`, fix });
    return undefined;
  }
  return v;
}

function checkCidrList(field: string, v: unknown, report: Check): string[] {
  if (!Array.isArray(v) || v.length === 0) {
    report({ field, message: `must be a non-empty list, got ${describe(v)}`, fix: 'list the CIDRs to allow, e.g. ["10.0.0.0/8"]; ["all"] allows everyone' });
    return [];
  }
  return v.map((c, i) => checkCidr(`${field}[${i}]`, c, report)).filter((c): c is string => c !== undefined);
}

/** A listen address as nginx wants it: "0.0.0.0", "[::]", "*". */
function checkListenAddress(field: string, v: unknown, report: Check): string | undefined {
  if (v === "*") return v;
  if (typeof v === "string") {
    const bare = v.startsWith("[") && v.endsWith("]") ? v.slice(1, -1) : v;
    const family = net.isIP(bare);
    if (family === 4 && bare === v) return v;
    if (family === 6) return `[${bare}]`;
  }
  report({ field, message: `${describe(v)} is not an IP address to listen on`, fix: 'use an IPv4 or IPv6 literal such as 0.0.0.0, 127.0.0.1, [::] or "*"' });
  return undefined;
}

function checkUpstream(v: unknown, report: Check): string | undefined {
  const field = "upstreamSocket";
  if (typeof v === "string") {
    const p = checkAbsolutePath(field, v, report);
    if (p === undefined) return undefined;
    if (Buffer.byteLength(p) > MAX_SOCKET_PATH_BYTES) {
      report({ field, message: `the socket path is ${Buffer.byteLength(p)} bytes; a unix socket path has at most ${MAX_SOCKET_PATH_BYTES}`, fix: "put the socket in a shorter directory, e.g. /run/smart-mirror/http.sock" });
      return undefined;
    }
    return `unix:${p}`;
  }
  if (typeof v === "object" && v !== null) {
    const { host, port } = v as { host?: unknown; port?: unknown };
    const p = checkPort(`${field}.port`, port, report);
    let h: string | undefined;
    if (typeof host === "string" && net.isIP(host) === 4) h = host;
    else if (typeof host === "string" && net.isIP(host) === 6) h = `[${host}]`;
    else h = checkDnsName(`${field}.host`, host, report);
    return h !== undefined && p !== undefined ? `${h}:${p}` : undefined;
  }
  report({ field, message: `must be a unix socket path or { host, port }, got ${describe(v)}`, fix: "give the daemon's socket, e.g. /run/smart-mirror/http.sock" });
  return undefined;
}

/** nginx wants an integer rate per second or per minute. */
function checkRateLimit(v: unknown, report: Check): NginxSite["rateLimit"] {
  if (v === false) return false;
  if (typeof v !== "object" || v === null) {
    report({ field: "rateLimit", message: `must be { perSecond | perMinute, burst } or false, got ${describe(v)}`, fix: "e.g. { perSecond: 50, burst: 3000 }, or false to turn limiting off" });
    return false;
  }
  const r = v as RateLimit;
  const oneOf = (r.perSecond === undefined) !== (r.perMinute === undefined);
  if (!oneOf) report({ field: "rateLimit", message: "give exactly one of perSecond and perMinute", fix: "e.g. { perSecond: 50, burst: 3000 } or { perMinute: 30, burst: 10 }" });
  const perSecond = r.perSecond !== undefined ? checkPositiveInt("rateLimit.perSecond", r.perSecond, report, "use a whole number of requests per second (perMinute for slower rates)") : undefined;
  const perMinute = r.perMinute !== undefined ? checkPositiveInt("rateLimit.perMinute", r.perMinute, report, "use a whole number of requests per minute") : undefined;
  const burst = checkPositiveInt("rateLimit.burst", r.burst, report, "use the number of requests a client may send at once above the rate, e.g. 3000", 0);
  const exempt = r.exempt === undefined ? [] : checkCidrList("rateLimit.exempt", r.exempt, report);
  if (!oneOf || burst === undefined || (perSecond ?? perMinute) === undefined) return false;
  return { rate: perSecond !== undefined ? `${perSecond}r/s` : `${perMinute}r/m`, burst, exempt };
}

/** Every problem of the input (empty when it is fine); pure. */
export function nginxSiteProblems(input: NginxSiteInput): NginxSiteProblem[] {
  const problems: NginxSiteProblem[] = [];
  resolve(input, (p) => problems.push(p));
  return problems;
}

/** The input with defaults applied; throws NginxSiteInputError listing every problem. */
export function resolveNginxSite(input: NginxSiteInput): NginxSite {
  const problems: NginxSiteProblem[] = [];
  const site = resolve(input, (p) => problems.push(p));
  if (problems.length > 0) throw new NginxSiteInputError(problems);
  return site;
}

function resolve(input: NginxSiteInput, report: Check): NginxSite {
  const name = input.name ?? "smart_mirror";
  if (!NAME.test(name)) report({ field: "name", message: `${describe(name)} cannot prefix nginx names`, fix: "use 1-32 characters: a lowercase letter, then lowercase letters, digits or '_'" });

  const primary = checkDnsName("serverName", input.serverName, report);
  const aliases = (input.serverAliases ?? []).map((a, i) => checkDnsName(`serverAliases[${i}]`, a, report));
  const serverNames = [...new Set([primary, ...aliases].filter((n): n is string => n !== undefined))];

  const listenHttps = checkPort("listenHttps", input.listenHttps ?? 443, report) ?? 443;
  const listenHttp = input.listenHttp === false ? false : (checkPort("listenHttp", input.listenHttp ?? 80, report) ?? 80);
  if (listenHttp === listenHttps) report({ field: "listenHttp", message: `is the same port as listenHttps (${listenHttps})`, fix: "use another port for the redirect (80), or false for none" });

  const addresses = input.listenAddresses ?? ["0.0.0.0", "[::]"];
  if (!Array.isArray(addresses) || addresses.length === 0) report({ field: "listenAddresses", message: "must be a non-empty list", fix: 'e.g. ["0.0.0.0", "[::]"]' });
  const listenAddresses = (Array.isArray(addresses) ? addresses : []).map((a, i) => checkListenAddress(`listenAddresses[${i}]`, a, report)).filter((a): a is string => a !== undefined);

  const clientMaxBodySize = input.clientMaxBodySize ?? DEFAULT_GIT_MAX_BODY;
  const pushMaxBodySize = input.pushMaxBodySize ?? DEFAULT_PUSH_MAX_BODY;
  if (typeof pushMaxBodySize !== "string" || !SIZE.test(pushMaxBodySize))
    report({ field: "pushMaxBodySize", message: `${describe(pushMaxBodySize)} is not an nginx size`, fix: 'use a number with an optional k/m/g suffix, e.g. "2g" ("0" means no limit)' });
  if (typeof clientMaxBodySize !== "string" || !SIZE.test(clientMaxBodySize))
    report({ field: "clientMaxBodySize", message: `${describe(clientMaxBodySize)} is not an nginx size`, fix: 'use a number with an optional k/m/g suffix, e.g. "512m" ("0" means no limit)' });

  const accessLog = input.accessLog === false ? false : (checkAbsolutePath("accessLog", input.accessLog ?? `/var/log/nginx/${name}.access.log`, report) ?? false);

  return {
    name,
    serverNames,
    listenHttps,
    listenHttp,
    listenAddresses,
    certPath: checkAbsolutePath("certPath", input.certPath, report) ?? "",
    keyPath: checkAbsolutePath("keyPath", input.keyPath, report) ?? "",
    upstreamServer: checkUpstream(input.upstreamSocket, report) ?? "",
    clientMaxBodySize: String(clientMaxBodySize).toLowerCase(),
    pushMaxBodySize: String(pushMaxBodySize).toLowerCase(),
    gitTimeoutSeconds: checkPositiveInt("gitTimeoutSeconds", input.gitTimeoutSeconds ?? DEFAULT_GIT_TIMEOUT_SECONDS, report, "give the idle timeout in seconds, e.g. 3600") ?? DEFAULT_GIT_TIMEOUT_SECONDS,
    rateLimit: checkRateLimit(input.rateLimit ?? DEFAULT_RATE_LIMIT, report),
    connectionsPerClient:
      input.connectionsPerClient === false
        ? false
        : (checkPositiveInt("connectionsPerClient", input.connectionsPerClient ?? DEFAULT_CONNECTIONS_PER_CLIENT, report, "give the number of concurrent connections one address may hold, or false") ?? false),
    internalAllow: checkCidrList("internalAllow", input.internalAllow ?? [...DEFAULT_INTERNAL_ALLOW], report),
    webhookAllow: checkCidrList("webhookAllow", input.webhookAllow ?? ["all"], report),
    hsts: input.hsts ?? true,
    accessLog,
    errorLog: checkAbsolutePath("errorLog", input.errorLog ?? `/var/log/nginx/${name}.error.log`, report) ?? "",
    tmpDir: input.tmpDir === undefined ? undefined : checkAbsolutePath("tmpDir", input.tmpDir, report),
  };
}

// ---- rendering (pure) ------------------------------------------------------------------

function block(head: string, lines: string[]): string[] {
  return [`${head} {`, ...lines.map((l) => (l ? `    ${l}` : l)), "}"];
}

/** allow/deny lines; "all" alone needs no deny. */
function access(allow: string[]): string[] {
  if (allow.includes("all")) return [];
  return [...allow.map((a) => `allow ${a};`), "deny all;"];
}

function httpContext(s: NginxSite): string[] {
  const out: string[] = [];
  if (s.accessLog !== false) {
    // Combined format plus what answers "why was this clone slow / refused": timings, the
    // request id the daemon also logs, the TLS version and git's protocol version.
    out.push(
      `log_format ${s.name}_log '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '`,
      `    '"$http_referer" "$http_user_agent" rt=$request_time urt=$upstream_response_time '`,
      `    'rid=$request_id tls=$ssl_protocol git_protocol="$http_git_protocol"';`,
      "",
    );
  }
  if (s.listenHttp !== false) {
    // The redirect keeps the name the client used when it is one of ours, and never sends a
    // client to a host we do not serve (e.g. a forged Host header on the catch-all port).
    // "default", "hostnames", "include" and "volatile" are map keywords; "\\" makes them plain names.
    const source = (n: string) => (["default", "hostnames", "include", "volatile"].includes(n) ? `\\${n}` : n);
    out.push(...block(`map $host $${s.name}_https_host`, [`default ${s.serverNames[0]};`, ...s.serverNames.map((n) => `${source(n)} ${n};`)]), "");
  }
  let key = "$binary_remote_addr";
  if (s.rateLimit !== false && s.rateLimit.exempt.length > 0) {
    // An empty key is counted neither by limit_req nor by limit_conn.
    key = `$${s.name}_limit_key`;
    out.push(...block(`geo $${s.name}_rate_exempt`, ["default 0;", ...s.rateLimit.exempt.map((c) => `${c} 1;`)]));
    out.push(...block(`map $${s.name}_rate_exempt ${key}`, ["0 $binary_remote_addr;", '1 "";']), "");
  }
  // 10 MB keeps ~80k client addresses; the least recently seen are dropped when full.
  if (s.rateLimit !== false) out.push(`limit_req_zone ${key} zone=${s.name}_git:10m rate=${s.rateLimit.rate};`);
  if (s.connectionsPerClient !== false) out.push(`limit_conn_zone ${key} zone=${s.name}_git_conn:10m;`);
  out.push(`limit_req_zone $binary_remote_addr zone=${s.name}_webhook:1m rate=${WEBHOOK_RATE_LIMIT.perSecond}r/s;`, "");
  out.push(
    ...block(`upstream ${s.name}_daemon`, [
      `server ${s.upstreamServer};`,
      "# Idle HTTP/1.1 connections kept per worker: no connect per git request.",
      "keepalive 32;",
      `# Below the daemon's 5 s keepAliveTimeout, so nginx never reuses a connection the daemon is closing.`,
      `keepalive_timeout ${UPSTREAM_KEEPALIVE_TIMEOUT_SECONDS}s;`,
    ]),
  );
  return out;
}

function redirectServer(s: NginxSite): string[] {
  if (s.listenHttp === false) return [];
  const port = s.listenHttps === 443 ? "" : `:${s.listenHttps}`;
  return [
    "",
    "# Plain HTTP only redirects: nothing is served without TLS. (Certificates come from DNS-01,",
    "# so no /.well-known/acme-challenge/ is kept open here.)",
    ...block("server", [
      ...s.listenAddresses.map((a) => `listen ${a}:${s.listenHttp};`),
      `server_name ${s.serverNames.join(" ")};`,
      "server_tokens off;",
      ...(s.accessLog !== false ? [`access_log ${s.accessLog} ${s.name}_log;`] : ["access_log off;"]),
      `error_log ${s.errorLog} warn;`,
      `return 301 https://$${s.name}_https_host${port}$request_uri;`,
    ]),
  ];
}

function httpsServer(s: NginxSite): string[] {
  const daemon = `proxy_pass http://${s.name}_daemon;`;
  // An empty types map: the JSON 404 is application/json whatever the path's extension (with
  // the http-level map, /x.js would be sent as application/javascript, /x.html as text/html).
  const notFound = ["types { }", "default_type application/json;", `return 404 '{"error":"not_found","message":"no such resource","requestId":"$request_id"}\\n';`];
  const git = (maxBody: string): string[] => [
    "# Packs stream both ways: never held in memory or spooled to disk by nginx.",
    "proxy_request_buffering off;",
    "proxy_buffering off;",
    "# Unbuffered answers are relayed through this one buffer: 64k means fewer, fuller TLS records than the 4k default.",
    "proxy_buffer_size 64k;",
    "# Unused while unbuffered, but nginx checks its busy-buffer size (2 x 64k) against them.",
    "proxy_buffers 4 64k;",
    `client_max_body_size ${maxBody};`,
    `proxy_read_timeout ${s.gitTimeoutSeconds}s;`,
    `proxy_send_timeout ${s.gitTimeoutSeconds}s;`,
    "# A client that reads nothing of its pack for this long is dropped (the daemon's idle timeout).",
    `send_timeout ${Math.min(s.gitTimeoutSeconds, GIT_SEND_TIMEOUT_SECONDS)}s;`,
    "# Packs are zlib-compressed already.",
    "gzip off;",
    ...(s.rateLimit !== false ? [`limit_req zone=${s.name}_git burst=${s.rateLimit.burst} nodelay;`] : []),
    ...(s.connectionsPerClient !== false ? [`limit_conn ${s.name}_git_conn ${s.connectionsPerClient};`] : []),
    daemon,
  ];

  const tls = [
    `ssl_certificate ${s.certPath};`,
    `ssl_certificate_key ${s.keyPath};`,
    "# Mozilla intermediate (https://ssl-config.mozilla.org/guidelines/6.0.json).",
    "ssl_protocols TLSv1.2 TLSv1.3;",
    `ssl_ciphers ${MOZILLA_INTERMEDIATE_CIPHERS.join(":")};`,
    "ssl_prefer_server_ciphers off;",
    "ssl_session_timeout 1d;",
    `ssl_session_cache shared:${s.name}_tls:10m;`,
    "ssl_session_tickets off;",
  ];

  return [
    "",
    ...block("server", [
      ...s.listenAddresses.map((a) => `listen ${a}:${s.listenHttps} ssl;`),
      `server_name ${s.serverNames.join(" ")};`,
      "server_tokens off;",
      "",
      ...tls,
      ...(s.hsts
        ? ["", "# Sent on every answer, errors included. No add_header below this level: it would drop this one.", `add_header Strict-Transport-Security "max-age=${HSTS_MAX_AGE_SECONDS}" always;`]
        : []),
      "",
      ...(s.accessLog !== false ? [`access_log ${s.accessLog} ${s.name}_log;`] : ["access_log off;"]),
      `error_log ${s.errorLog} warn;`,
      ...(s.tmpDir !== undefined ? [`client_body_temp_path ${s.tmpDir}/client_body;`, `proxy_temp_path ${s.tmpDir}/proxy;`] : []),
      "client_max_body_size 1m;",
      "# Slow clients (slowloris, stalled bodies): cut, and their buffers freed at once.",
      `client_header_timeout ${CLIENT_HEADER_TIMEOUT_SECONDS}s;`,
      `client_body_timeout ${CLIENT_BODY_TIMEOUT_SECONDS}s;`,
      "reset_timedout_connection on;",
      // Refusals are routine, not errors; the error_log above is at warn so they are still seen.
      ...(s.rateLimit !== false ? ["limit_req_status 429;", "limit_req_log_level warn;"] : []),
      ...(s.connectionsPerClient !== false ? ["limit_conn_status 429;", "limit_conn_log_level warn;"] : []),
      ...(s.rateLimit === false ? ["limit_req_status 429;", "limit_req_log_level warn;"] : []),
      "",
      "# To the daemon: HTTP/1.1 with keepalive. Headers are set here only: a proxy_set_header",
      "# inside a location would drop all of these for it. Other request headers (Git-Protocol,",
      "# Content-Encoding, ...) pass through as sent.",
      "proxy_http_version 1.1;",
      'proxy_set_header Connection "";',
      "proxy_set_header Host $host;",
      "proxy_set_header X-Real-IP $remote_addr;",
      "proxy_set_header X-Forwarded-For $remote_addr;",
      "proxy_set_header X-Forwarded-Proto https;",
      "proxy_set_header X-Forwarded-Host $host;",
      "proxy_set_header X-Forwarded-Port $server_port;",
      "proxy_set_header X-Request-Id $request_id;",
      "",
      "# Clones and fetches: /scm/PROJECT/repo.git/...",
      ...block("location /scm/", git(s.clientMaxBodySize)),
      "",
      "# Pushes (mirror.push=proxy): the daemon streams them on to the primary, so their size is the",
      "# primary's business. A regex location wins over the /scm/ prefix.",
      ...block("location ~ ^/scm/.+/git-receive-pack$", git(s.pushMaxBodySize)),
      "",
      "# Git LFS (batch API, objects, locks): as /scm/, but uploads are objects of any size, streamed",
      "# to the primary (which applies its own limit) and never spooled here; downloads stream unbuffered.",
      ...block("location ~ ^/scm/[^/]+/[^/]+/info/lfs/", [...git(s.clientMaxBodySize).filter((l) => !l.startsWith("client_max_body_size")), "client_max_body_size 0;"]),
      "",
      "# Readiness, like a Bitbucket mirror's /status: open (JSON; the page for a browser that asks for HTML).",
      ...block("location = /status", [daemon]),
      "",
      "# The load balancers' health check: 200 when ready and not draining, else 503. Open like /status;",
      "# not logged (probed every few seconds by every balancer node).",
      ...block("location = /status/ready", ["access_log off;", daemon]),
      "",
      "# The status page for people and its script and stylesheet: open, the public /status's",
      "# content only. The daemon sends their Content-Security-Policy.",
      ...block("location = /", [daemon]),
      ...[STATUS_PAGE_SCRIPT_PATH, STATUS_PAGE_CSS_PATH].flatMap((p) => block(`location = ${p}`, [daemon])),
      "",
      "# The daemon's detailed status (errors quoting the primary's address) is for the host alone:",
      "# read it on the daemon's socket (curl --unix-socket ... http://mirror/status/detail).",
      ...block("location = /status/detail", notFound),
      "",
      "# The long-poll for CI (answers when the repository holds a commit): open; the daemon applies",
      "# the clones' access rules. A regex location wins over the /status/ prefix below.",
      ...block("location ~ ^/status/repos/[^/]+/[^/]+/wait$", [
        `proxy_read_timeout ${WAIT_READ_TIMEOUT_SECONDS}s;`,
        ...(s.connectionsPerClient !== false ? [`limit_conn ${s.name}_git_conn ${s.connectionsPerClient};`] : []),
        daemon,
      ]),
      "",
      "# Per-repo status pages name the primary's repositories.",
      ...block("location /status/", [...access(s.internalAllow), daemon]),
      "",
      ...block("location = /metrics", [...access(s.internalAllow), daemon]),
      "",
      ...block("location = /healthz", ["access_log off;", daemon]),
      "",
      "# Bitbucket's repo:refs_changed; the daemon checks the HMAC signature and the method.",
      ...block("location = /webhook", [
        ...access(s.webhookAllow),
        `client_max_body_size ${WEBHOOK_MAX_BODY};`,
        `limit_req zone=${s.name}_webhook burst=${WEBHOOK_RATE_LIMIT.burst} nodelay;`,
        daemon,
      ]),
      "",
      "# Mirror farm: a peer's announcement of refs it is about to serve (and who-are-you). The",
      "# daemon refuses anything without the farm token (401); bodies are a few KB.",
      ...block("location = /farm/announce", [`client_max_body_size ${FARM_ANNOUNCE_MAX_BODY};`, daemon]),
      "",
      "# Nothing else is the daemon's: answer in the daemon's error shape without asking it.",
      ...block("location /", notFound),
    ]),
  ];
}

/**
 * The site file for /etc/nginx/conf.d/ (included inside `http {}`); pure. Throws
 * NginxSiteInputError naming every bad field and its fix.
 */
export function renderNginxSite(input: NginxSiteInput): string {
  const s = resolveNginxSite(input);
  const header = [
    `# smart-mirror site for ${s.serverNames[0]}. Rendered by components/render/nginx.ts; do not edit,`,
    "# changes are overwritten on the next deploy. Include inside http {} (e.g. /etc/nginx/conf.d/).",
    "",
  ];
  return [...header, ...httpContext(s), ...redirectServer(s), ...httpsServer(s), ""].join("\n");
}
