/**
 * The nginx site renderer as text: snapshots of the whole file for the deploy's and the local
 * launcher's shapes, targeted assertions for the security-relevant lines, and a table of bad
 * inputs (each must be refused with the field and a fix). The same text runs in a real nginx
 * in test/integration/nginxRender.test.ts.
 */
import { WAIT_MAX_SECONDS } from "../../sync/serve/waitRequest";
import { WAIT_READ_TIMEOUT_SECONDS, DEFAULT_INTERNAL_ALLOW, MOZILLA_INTERMEDIATE_CIPHERS, NginxSiteInput, NginxSiteInputError, nginxSiteProblems, renderNginxSite, resolveNginxSite } from "./nginx";

/** What the Pulumi deploy renders: defaults everywhere. */
const production: NginxSiteInput = {
  serverName: "mirror.eu-west-1.example.com",
  certPath: "/etc/smart-mirror/tls/fullchain.pem",
  keyPath: "/etc/smart-mirror/tls/privkey.pem",
  upstreamSocket: "/run/smart-mirror/http.sock",
};

/** Everything switched the other way: TCP upstream, no redirect, no HSTS, no limits, an alias. */
const variant: NginxSiteInput = {
  serverName: "Mirror.Local.Test",
  serverAliases: ["git.example.com"],
  listenHttps: 8443,
  listenHttp: false,
  listenAddresses: ["127.0.0.1", "::1"],
  certPath: "/home/dev/tls/chain.pem",
  keyPath: "/home/dev/tls/key.pem",
  upstreamSocket: { host: "127.0.0.1", port: 7990 },
  clientMaxBodySize: "0",
  gitTimeoutSeconds: 600,
  rateLimit: false,
  connectionsPerClient: false,
  internalAllow: ["all"],
  webhookAllow: ["198.51.100.7", "2001:db8::/32"],
  hsts: false,
  accessLog: false,
  errorLog: "/home/dev/logs/error.log",
  tmpDir: "/home/dev/tmp",
  name: "dev_mirror",
};

/** The lines of one block, found by its head (e.g. "location /scm/"); nested blocks are not expected. */
function blockOf(conf: string, head: string): string[] {
  const lines = conf.split("\n");
  const start = lines.findIndex((l) => l.trim() === `${head} {`);
  if (start < 0) throw new Error(`no block "${head}" in:\n${conf}`);
  const end = lines.findIndex((l, i) => i > start && l.trim() === "}");
  return lines.slice(start + 1, end).map((l) => l.trim());
}

/** Directive lines (comments and blanks dropped). */
const directives = (conf: string) =>
  conf
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));

describe("renderNginxSite snapshots", () => {
  test("production defaults (unix socket, redirect, HSTS, rate limit, internal allow-list)", () => {
    expect(renderNginxSite(production)).toMatchSnapshot();
  });

  test("variant: TCP upstream, aliases, no redirect/HSTS/limits/access log", () => {
    expect(renderNginxSite(variant)).toMatchSnapshot();
  });

  test("rate limit with exempt addresses and a connection limit", () => {
    expect(renderNginxSite({ ...production, rateLimit: { perMinute: 30, burst: 5, exempt: ["203.0.113.0/24"] }, connectionsPerClient: 64 })).toMatchSnapshot();
  });
});

describe("renderNginxSite: what the product asks for", () => {
  const conf = renderNginxSite(production);
  const lines = directives(conf);

  test("TLS 1.2 and 1.3 only, Mozilla intermediate ciphers, client preference, no tickets", () => {
    expect(lines).toContain("ssl_protocols TLSv1.2 TLSv1.3;");
    expect(conf).not.toMatch(/TLSv1(\.1)?[ ;]/);
    expect(conf).not.toMatch(/SSLv/);
    expect(lines).toContain(`ssl_ciphers ${MOZILLA_INTERMEDIATE_CIPHERS.join(":")};`);
    // Forward secrecy (ECDHE only, no finite-field DHE) and AEAD only (no CBC/SHA1 suites).
    const ciphers = (lines.find((l) => l.startsWith("ssl_ciphers ")) ?? "").replace(/^ssl_ciphers |;$/g, "").split(":");
    expect(ciphers).toHaveLength(6);
    for (const c of ciphers) expect(c).toMatch(/^ECDHE-(ECDSA|RSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/);
    expect(lines).toContain("ssl_prefer_server_ciphers off;");
    expect(lines).toContain("ssl_session_tickets off;");
    expect(lines).toContain("ssl_session_timeout 1d;");
  });

  test("HSTS for two years on every answer, set once at server level", () => {
    expect(lines.filter((l) => l.startsWith("add_header"))).toEqual(['add_header Strict-Transport-Security "max-age=63072000" always;']);
    expect(renderNginxSite({ ...production, hsts: false })).not.toMatch(/Strict-Transport-Security/);
  });

  test("HTTP redirects with 301 to https, keeping path and query; extra port appended when not 443", () => {
    const redirect = blockOf(conf, "server");
    expect(redirect).toContain("listen 0.0.0.0:80;");
    expect(redirect).toContain("listen [::]:80;");
    expect(redirect).toContain("return 301 https://$smart_mirror_https_host$request_uri;");
    expect(renderNginxSite({ ...production, listenHttps: 8443 })).toContain("return 301 https://$smart_mirror_https_host:8443$request_uri;");
    expect(blockOf(conf, "map $host $smart_mirror_https_host")).toEqual(["default mirror.eu-west-1.example.com;", "mirror.eu-west-1.example.com mirror.eu-west-1.example.com;"]);
    expect(renderNginxSite({ ...production, listenHttp: false })).not.toMatch(/return 301/);
  });

  test("/scm/ streams unbuffered both ways, with long idle timeouts, no gzip, rate and connection limits and a big body limit", () => {
    const scm = blockOf(conf, "location /scm/");
    for (const l of [
      "proxy_request_buffering off;",
      "proxy_buffering off;",
      "client_max_body_size 512m;",
      "proxy_read_timeout 3600s;",
      "proxy_send_timeout 3600s;",
      "send_timeout 600s;",
      "gzip off;",
      "limit_req zone=smart_mirror_git burst=3000 nodelay;",
      "limit_conn smart_mirror_git_conn 256;",
      "proxy_pass http://smart_mirror_daemon;",
    ])
      expect(scm).toContain(l);
    expect(lines).toContain("limit_req_zone $binary_remote_addr zone=smart_mirror_git:10m rate=50r/s;");
    expect(lines).toContain("limit_req_status 429;");
    expect(lines).toContain("limit_conn_zone $binary_remote_addr zone=smart_mirror_git_conn:10m;");
    expect(lines).toContain("limit_conn_status 429;");
  });

  test("pushes (git-receive-pack) stream unbuffered to the daemon with no body limit of the mirror's own; the rest of /scm/ keeps 512m", () => {
    const push = blockOf(conf, "location ~ ^/scm/.+/git-receive-pack$");
    for (const l of ["proxy_request_buffering off;", "proxy_buffering off;", "client_max_body_size 0;", "proxy_read_timeout 3600s;", "limit_conn smart_mirror_git_conn 256;", "proxy_pass http://smart_mirror_daemon;"]) expect(push).toContain(l);
    expect(blockOf(renderNginxSite({ ...production, pushMaxBodySize: "2g" }), "location ~ ^/scm/.+/git-receive-pack$")).toContain("client_max_body_size 2g;");
    expect(() => renderNginxSite({ ...production, pushMaxBodySize: "2gb" })).toThrow(/pushMaxBodySize/);
  });

  test("slow clients are cut by default: idle headers and bodies after 30 s, unread packs after 10 minutes, buffers reset", () => {
    for (const l of ["client_header_timeout 30s;", "client_body_timeout 30s;", "reset_timedout_connection on;"]) expect(lines).toContain(l);
    expect(blockOf(conf, "location /scm/")).toContain("send_timeout 600s;");
    expect(renderNginxSite({ ...production, connectionsPerClient: false })).not.toMatch(/limit_conn/);
  });

  test("HTTP/1.1 keepalive to the daemon's unix socket; forwarding headers set once at server level", () => {
    expect(blockOf(conf, "upstream smart_mirror_daemon")).toEqual(expect.arrayContaining(["server unix:/run/smart-mirror/http.sock;", "keepalive 32;", "keepalive_timeout 4s;"]));
    for (const l of [
      "proxy_http_version 1.1;",
      'proxy_set_header Connection "";',
      "proxy_set_header Host $host;",
      "proxy_set_header X-Real-IP $remote_addr;",
      "proxy_set_header X-Forwarded-For $remote_addr;",
      "proxy_set_header X-Forwarded-Proto https;",
      "proxy_set_header X-Forwarded-Host $host;",
    ])
      expect(lines).toContain(l);
    // One set of proxy_set_header lines: any inside a location would silently drop the others there.
    expect(lines.filter((l) => l === "proxy_set_header Host $host;")).toHaveLength(1);
  });

  test("only the daemon's routes are proxied; the rest is a JSON 404 from nginx", () => {
    const proxied = conf
      .split("\n")
      .map((l) => /^\s*location (.+) \{$/.exec(l)?.[1])
      .filter((l): l is string => l !== undefined);
    expect(proxied).toEqual(["/scm/", "~ ^/scm/.+/git-receive-pack$", "~ ^/scm/[^/]+/[^/]+/info/lfs/", "= /status", "= /status/ready", "= /", "= /assets/status-page.js", "= /assets/status-page.css", "= /status/detail", "~ ^/status/repos/[^/]+/[^/]+/wait$", "/status/", "= /metrics", "= /healthz", "= /webhook", "= /farm/announce", "/"]);
    // The daemon's detailed status is never proxied, to anyone.
    expect(blockOf(conf, "location = /status/detail")).toEqual(blockOf(conf, "location /"));
    expect(blockOf(conf, "location /")).toEqual(["types { }", "default_type application/json;", `return 404 '{"error":"not_found","message":"no such resource","requestId":"$request_id"}\\n';`]);
  });

  test("the long-poll is open (the daemon applies clone access), waits past the daemon's longest hold, connections limited per address", () => {
    const wait = blockOf(conf, "location ~ ^/status/repos/[^/]+/[^/]+/wait$");
    expect(wait).toEqual([`proxy_read_timeout ${WAIT_READ_TIMEOUT_SECONDS}s;`, "limit_conn smart_mirror_git_conn 256;", "proxy_pass http://smart_mirror_daemon;"]);
    expect(WAIT_READ_TIMEOUT_SECONDS).toBeGreaterThan(WAIT_MAX_SECONDS);
    expect(wait.some((l) => l.startsWith("allow ") || l.startsWith("deny "))).toBe(false);
  });

  test("/metrics and per-repo status answer the internal allow-list only; /status and /healthz are open; webhook body 1m", () => {
    const allow = [...DEFAULT_INTERNAL_ALLOW.map((c) => `allow ${c};`), "deny all;"];
    expect(blockOf(conf, "location = /metrics")).toEqual([...allow, "proxy_pass http://smart_mirror_daemon;"]);
    expect(blockOf(conf, "location /status/")).toEqual([...allow, "proxy_pass http://smart_mirror_daemon;"]);
    expect(blockOf(conf, "location = /status")).toEqual(["proxy_pass http://smart_mirror_daemon;"]);
    // The load balancers' readiness check: open like /status (an exact match, not the allow-listed /status/ prefix).
    expect(blockOf(conf, "location = /status/ready")).toEqual(["access_log off;", "proxy_pass http://smart_mirror_daemon;"]);
    // The status page and its assets: open, like /status.
    expect(blockOf(conf, "location = /")).toEqual(["proxy_pass http://smart_mirror_daemon;"]);
    expect(blockOf(conf, "location = /assets/status-page.js")).toEqual(["proxy_pass http://smart_mirror_daemon;"]);
    expect(blockOf(conf, "location = /assets/status-page.css")).toEqual(["proxy_pass http://smart_mirror_daemon;"]);
    expect(blockOf(conf, "location = /healthz")).not.toContain("deny all;");
    expect(blockOf(conf, "location = /webhook")).toEqual(["client_max_body_size 1m;", "limit_req zone=smart_mirror_webhook burst=100 nodelay;", "proxy_pass http://smart_mirror_daemon;"]);
    const custom = renderNginxSite({ ...production, internalAllow: ["192.0.2.10"] });
    expect(blockOf(custom, "location = /metrics")).toEqual(["allow 192.0.2.10;", "deny all;", "proxy_pass http://smart_mirror_daemon;"]);
  });

  test("no version tokens, no files served, no directory listing", () => {
    expect(lines.filter((l) => l === "server_tokens off;")).toHaveLength(2);
    expect(conf).not.toMatch(/^\s*(root|alias|autoindex on|index)\b/m);
  });

  test("rate limit units and exemptions", () => {
    const perMinute = renderNginxSite({ ...production, rateLimit: { perMinute: 1, burst: 2 } });
    expect(perMinute).toContain("rate=1r/m;");
    expect(perMinute).toContain("limit_req zone=smart_mirror_git burst=2 nodelay;");
    const exempt = renderNginxSite({ ...production, rateLimit: { perSecond: 5, burst: 10, exempt: ["10.0.0.0/8"] } });
    expect(exempt).toContain("limit_req_zone $smart_mirror_limit_key zone=smart_mirror_git:10m rate=5r/s;");
    expect(exempt).toContain("limit_conn_zone $smart_mirror_limit_key zone=smart_mirror_git_conn:10m;");
    expect(blockOf(exempt, "geo $smart_mirror_rate_exempt")).toEqual(["default 0;", "10.0.0.0/8 1;"]);
    const none = renderNginxSite({ ...production, rateLimit: false });
    expect(none).not.toMatch(/zone=smart_mirror_git[^_]/);
    expect(blockOf(none, "location /scm/").join("\n")).not.toMatch(/limit_req/);
  });

  test("names are prefixed, so two sites can live in one nginx", () => {
    const other = renderNginxSite({ ...production, name: "second" });
    expect(other).toContain("upstream second_daemon {");
    expect(other).toContain("zone=second_git:10m");
    expect(other).toContain("shared:second_tls:10m");
    expect(other).not.toMatch(/smart_mirror/);
  });

  test("a server name is lowercased and a trailing dot dropped; IPv6 listen addresses get brackets", () => {
    const s = resolveNginxSite({ ...production, serverName: "Mirror.Example.COM.", listenAddresses: ["::", "[::1]", "*"] });
    expect(s.serverNames).toEqual(["mirror.example.com"]);
    expect(s.listenAddresses).toEqual(["[::]", "[::1]", "*"]);
  });
});

describe("renderNginxSite refuses bad input, naming the field and the fix", () => {
  const cases: Array<[string, Partial<NginxSiteInput> & Record<string, unknown>, string, RegExp]> = [
    ["server name with a space", { serverName: "mirror example.com" }, "serverName", /DNS host name/],
    ["server name with ';'", { serverName: "a.com;include /etc/passwd" }, "serverName", /DNS host name/],
    ["server name with '{'", { serverName: "a{.com" }, "serverName", /DNS host name/],
    ["server name with a newline", { serverName: "a.com\nlisten 1" }, "serverName", /DNS host name/],
    ["server name that is an IP", { serverName: "10.0.0.1" }, "serverName", /DNS host name/],
    ["wildcard server name", { serverName: "*.example.com" }, "serverName", /DNS host name/],
    ["empty server name", { serverName: "" }, "serverName", /must be a DNS name/],
    ["label too long", { serverName: `${"a".repeat(64)}.com` }, "serverName", /DNS host name/],
    ["alias with a quote", { serverAliases: ["ok.com", 'b".com'] }, "serverAliases[1]", /DNS host name/],
    ["relative cert path", { certPath: "tls/cert.pem" }, "certPath", /absolute path/],
    ["cert path with ';'", { certPath: "/etc/a.pem; return 200" }, "certPath", /read as syntax/],
    ["key path with '}'", { keyPath: "/etc/a}.key" }, "keyPath", /read as syntax/],
    ["key path with a variable", { keyPath: "/etc/$host.key" }, "keyPath", /read as syntax/],
    ["path with a newline", { errorLog: "/var/log/a\nb.log" }, "errorLog", /read as syntax/],
    ["path with a control character", { certPath: "/etc/a\u0007.pem" }, "certPath", /read as syntax/],
    ["path with a quote", { accessLog: "/var/log/a'.log" }, "accessLog", /read as syntax/],
    ["path with '..'", { tmpDir: "/var/../etc" }, "tmpDir", /'\.\.'/],
    ["port 0", { listenHttps: 0 }, "listenHttps", /TCP port/],
    ["port too high", { listenHttp: 70000 }, "listenHttp", /TCP port/],
    ["fractional port", { listenHttps: 443.5 }, "listenHttps", /TCP port/],
    ["same port twice", { listenHttps: 8080, listenHttp: 8080 }, "listenHttp", /same port/],
    ["socket path too long", { upstreamSocket: `/run/${"s".repeat(120)}.sock` }, "upstreamSocket", /at most 107/],
    ["relative socket", { upstreamSocket: "run/http.sock" }, "upstreamSocket", /absolute path/],
    ["upstream host with ';'", { upstreamSocket: { host: "a;b", port: 80 } }, "upstreamSocket.host", /DNS host name/],
    ["upstream port out of range", { upstreamSocket: { host: "127.0.0.1", port: 0 } }, "upstreamSocket.port", /TCP port/],
    ["body size with a unit typo", { clientMaxBodySize: "512mb" }, "clientMaxBodySize", /nginx size/],
    ["body size injection", { clientMaxBodySize: "1m; return 200" }, "clientMaxBodySize", /nginx size/],
    ["rate with both units", { rateLimit: { perSecond: 1, perMinute: 60, burst: 1 } }, "rateLimit", /exactly one/],
    ["fractional rate", { rateLimit: { perSecond: 0.5, burst: 1 } }, "rateLimit.perSecond", /integer/],
    ["negative burst", { rateLimit: { perSecond: 5, burst: -1 } }, "rateLimit.burst", /integer >= 0/],
    ["bad exempt CIDR", { rateLimit: { perSecond: 5, burst: 1, exempt: ["10.0.0.0/33"] } }, "rateLimit.exempt[0]", /not an address or CIDR/],
    ["allow-list entry that is a name", { internalAllow: ["prometheus.internal"] }, "internalAllow[0]", /not an address or CIDR/],
    ["allow-list injection", { internalAllow: ["10.0.0.0/8; allow all"] }, "internalAllow[0]", /not an address or CIDR/],
    ["empty allow-list", { webhookAllow: [] }, "webhookAllow", /non-empty list/],
    ["listen on a host name", { listenAddresses: ["localhost"] }, "listenAddresses[0]", /IP address to listen on/],
    ["bad name prefix", { name: "Smart-Mirror" }, "name", /cannot prefix/],
    ["zero timeout", { gitTimeoutSeconds: 0 }, "gitTimeoutSeconds", /integer >= 1/],
    ["zero connection limit", { connectionsPerClient: 0 }, "connectionsPerClient", /integer >= 1/],
  ];

  test.each(cases)("%s", (_label, patch, field, message) => {
    const input = { ...production, ...patch } as NginxSiteInput;
    const problems = nginxSiteProblems(input);
    const p = problems.find((x) => x.field === field);
    expect(p).toBeDefined();
    expect(p?.message).toMatch(message);
    expect(p?.fix.length).toBeGreaterThan(10);
    expect(() => renderNginxSite(input)).toThrow(NginxSiteInputError);
  });

  test("every problem is reported at once, each with its fix", () => {
    let err: unknown;
    try {
      renderNginxSite({ ...production, serverName: "bad name", certPath: "rel.pem", listenHttps: 0 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NginxSiteInputError);
    const e = err as NginxSiteInputError;
    expect(e.problems.map((p) => p.field)).toEqual(["serverName", "listenHttps", "certPath"]);
    expect(e.message).toMatch(/serverName: .* — use letters, digits/);
    expect(e.message).toMatch(/certPath: .* — give the full path/);
  });

  test("valid input has no problems", () => {
    expect(nginxSiteProblems(production)).toEqual([]);
    expect(nginxSiteProblems(variant)).toEqual([]);
  });
});
