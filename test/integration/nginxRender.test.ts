/**
 * The rendered nginx site in a real nginx, in front of a stand-in daemon on a unix socket, with
 * a certificate from a real private CA. The site file is included inside an http {} that
 * carries Debian 12's own http-level settings (TLSv1/1.1 allowed, server cipher preference,
 * gzip on), as /etc/nginx/conf.d/*.conf would be, so every assertion also proves the site
 * holds its own against the distribution defaults.
 *
 * The streaming tests are deadlock detectors, not timings: the stand-in daemon holds back the
 * rest of a response until the client has seen the first bytes (and the client holds back the
 * rest of a request until the daemon has seen the first bytes). A buffering nginx would wait
 * for the end that never comes, and the test fails with a message that says so.
 */
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as net from "node:net";
import * as path from "node:path";
import * as tls from "node:tls";
import { renderNginxSite, NginxSiteInput, MOZILLA_INTERMEDIATE_CIPHERS } from "../../components/render/nginx";
import { nginxContext, nginxTest, NginxContext, NginxHandle, startNginx } from "../../testbed/nginx";
import { freePort, onCleanup, tempDir } from "../../testbed/resources";
import { createCa, ServerCert, TestCa } from "../../testbed/tls";

jest.setTimeout(120_000);

const SERVER_NAME = "mirror.test";
/** A deadlock shows up as this wait running out (generous: 2 shared cores, other suites running). */
const DEADLOCK_MS = 20_000;

interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
}
function deferred<T = void>(): Deferred<T> {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Resolve with the promise, or reject with `why` after ms (timer cleared either way). */
async function within<T>(p: Promise<T>, ms: number, why: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(why)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

const sha256 = () => createHash("sha256");

// ---- the stand-in daemon ------------------------------------------------------------------

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  /** Which upstream connection carried it (keepalive check). */
  connection: number;
}

interface StreamResult {
  bytes: number;
  sha256: string;
  /** True if the client never signalled its first bytes and the daemon went on regardless. */
  gateTimedOut: boolean;
}

interface Upstream {
  socketPath: string;
  seen: Seen[];
  /** Resolved by the test when the client has the first bytes of the /scm/ stream. */
  streamGate: Deferred<void>;
  /** Resolved by the daemon with what it sent on the /scm/ stream. */
  streamSent: Deferred<StreamResult>;
  /** Resolved by the daemon when the first bytes of a POSTed /scm/ body arrive. */
  bodyStarted: Deferred<void>;
}

const STREAM_PATH = "/scm/PROJ/big.git/stream";
const STREAM_FIRST = Buffer.from("0008NAK\n".repeat(64));
const STREAM_REST_BLOCKS = 512; // x 64 KiB = 32 MiB

async function startUpstream(): Promise<Upstream> {
  const dir = tempDir("nginx-upstream");
  const socketPath = path.join(dir, "daemon.sock");
  const up: Upstream = { socketPath, seen: [], streamGate: deferred(), streamSent: deferred(), bodyStarted: deferred() };
  const connections = new WeakMap<net.Socket, number>();
  let nextConnection = 0;

  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
    res.end(text);
  };
  /** Write with backpressure; false if the client went away. */
  const write = (res: http.ServerResponse, chunk: Buffer) =>
    new Promise<boolean>((resolve) => {
      if (res.write(chunk)) return resolve(true);
      const done = (ok: boolean) => () => {
        res.off("drain", onDrain);
        res.off("close", onClose);
        resolve(ok);
      };
      const onDrain = done(true);
      const onClose = done(false);
      res.once("drain", onDrain);
      res.once("close", onClose);
    });

  async function stream(res: http.ServerResponse): Promise<void> {
    const hash = sha256();
    let bytes = 0;
    res.writeHead(200, { "Content-Type": "application/x-git-upload-pack-result", "Cache-Control": "no-cache" });
    hash.update(STREAM_FIRST);
    bytes += STREAM_FIRST.length;
    await write(res, STREAM_FIRST);
    // Hold the rest back until the client proves the first bytes reached it.
    let gateTimedOut = false;
    await within(up.streamGate.promise, DEADLOCK_MS, "gate").catch(() => (gateTimedOut = true));
    for (let i = 0; i < STREAM_REST_BLOCKS; i++) {
      const block = randomBytes(64 * 1024);
      hash.update(block);
      bytes += block.length;
      if (!(await write(res, block))) break;
    }
    res.end();
    up.streamSent.resolve({ bytes, sha256: hash.digest("hex"), gateTimedOut });
  }

  function receive(req: http.IncomingMessage, res: http.ServerResponse): void {
    const hash = sha256();
    let bytes = 0;
    req.on("data", (b: Buffer) => {
      if (bytes === 0) up.bodyStarted.resolve();
      bytes += b.length;
      hash.update(b);
    });
    req.on("end", () => json(res, 200, { bytes, sha256: hash.digest("hex"), gitProtocol: req.headers["git-protocol"] ?? null, transferEncoding: req.headers["transfer-encoding"] ?? null }));
  }

  const server = http.createServer((req, res) => {
    up.seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, connection: connections.get(req.socket) ?? -1 });
    const url = req.url ?? "/";
    if (url === STREAM_PATH) return void stream(res);
    if (req.method === "POST" && (url.startsWith("/scm/") || url === "/webhook")) return receive(req, res);
    if (url === "/status") return json(res, 200, { state: "SYNCHRONIZED", seenHeaders: req.headers });
    // Anything else answers 200 and says who answered: a path nginx should have refused
    // (404/403/429) shows up as a 200 from here.
    res.writeHead(200, { "Content-Type": "text/plain" });
    res.end(`upstream answered ${req.method} ${url}\n`);
  });
  server.on("connection", (s: net.Socket) => connections.set(s, ++nextConnection));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, resolve);
  });
  onCleanup(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return up;
}

// ---- nginx with the rendered site -------------------------------------------------------

interface Site {
  nginx: NginxHandle;
  httpsPort: number;
  httpPort: number;
  sitePath: string;
}

/** Debian 12's nginx.conf, confined to the bench prefix, with the site where conf.d/*.conf would be. */
function debianLikeConf(ctx: NginxContext, sitePath: string): string {
  return [
    ctx.mainDirectives,
    "events {",
    "    worker_connections 512;",
    "}",
    "http {",
    ctx.httpDirectives,
    "# Debian 12 /etc/nginx/nginx.conf http-level settings the site must override.",
    "sendfile on;",
    "tcp_nopush on;",
    "ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;",
    "ssl_prefer_server_ciphers on;",
    "gzip on;",
    `include ${sitePath};`,
    "}",
    "",
  ].join("\n");
}

describe("rendered nginx site in a real nginx", () => {
  let ca: TestCa;
  let cert: ServerCert;
  let upstream: Upstream;
  let site: Site;

  async function startSite(overrides: Partial<NginxSiteInput> = {}, mutate: (text: string) => string = (t) => t): Promise<Site> {
    const httpsPort = await freePort();
    const httpPort = await freePort();
    let sitePath = "";
    const nginx = await startNginx(
      (ctx) => {
        const text = renderNginxSite({
          serverName: SERVER_NAME,
          listenAddresses: ["127.0.0.1"],
          listenHttps: httpsPort,
          listenHttp: httpPort,
          certPath: cert.chainPath,
          keyPath: cert.keyPath,
          upstreamSocket: upstream.socketPath,
          accessLog: path.join(ctx.logsDir, "site.access.log"),
          errorLog: path.join(ctx.logsDir, "site.error.log"),
          tmpDir: ctx.tempDir,
          ...overrides,
        });
        sitePath = path.join(ctx.prefix, "conf.d", "smart-mirror.conf");
        fs.mkdirSync(path.dirname(sitePath), { recursive: true });
        fs.writeFileSync(sitePath, mutate(text));
        return debianLikeConf(ctx, sitePath);
      },
      {
        fullConfig: true,
        waitFor: [
          { host: "127.0.0.1", port: httpsPort },
          { host: "127.0.0.1", port: httpPort },
        ],
      },
    );
    return { nginx, httpsPort, httpPort, sitePath };
  }

  interface Answer {
    status: number;
    headers: http.IncomingHttpHeaders;
    body: Buffer;
  }

  /** One request on a fresh connection; HTTPS verified against the bench CA as mirror.test. */
  function request(s: Site, target: string, opts: { method?: string; headers?: http.OutgoingHttpHeaders; body?: Buffer; plainHttp?: boolean; ca?: string | null } = {}): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const common = { host: "127.0.0.1", path: target, method: opts.method ?? "GET", headers: { Host: SERVER_NAME, ...opts.headers }, agent: false as const };
      const onResponse = (res: http.IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      };
      const req = opts.plainHttp
        ? http.request({ ...common, port: s.httpPort }, onResponse)
        : https.request({ ...common, port: s.httpsPort, servername: SERVER_NAME, ...(opts.ca === null ? {} : { ca: opts.ca ?? ca.certPem }) }, onResponse);
      req.on("error", reject);
      req.end(opts.body);
    });
  }

  /** A bare TLS handshake; the negotiated protocol and cipher, or the error code. */
  function handshake(s: Site, opts: tls.ConnectionOptions): Promise<{ protocol?: string | null; cipher?: string; error?: string }> {
    return new Promise((resolve) => {
      const sock = tls.connect({ host: "127.0.0.1", port: s.httpsPort, servername: SERVER_NAME, ca: ca.certPem, ...opts });
      sock.once("secureConnect", () => {
        resolve({ protocol: sock.getProtocol(), cipher: sock.getCipher().name });
        sock.end();
      });
      sock.once("error", (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    });
  }

  const seenSince = (mark: number) => upstream.seen.slice(mark);

  beforeAll(async () => {
    ca = await createCa();
    cert = await ca.issueServerCert([SERVER_NAME, "127.0.0.1"]);
    upstream = await startUpstream();
    site = await startSite();
  });

  test("nginx -t accepts the site inside Debian's http {}", async () => {
    const r = await nginxTest(site.nginx.confPath, { prefix: site.nginx.prefix });
    expect(r).toEqual({ ok: true, output: "" });
    // The running config really is the rendered file (not an accident of the bench).
    expect(fs.readFileSync(site.nginx.confPath, "utf8")).toContain(`include ${site.sitePath};`);
    expect(fs.readFileSync(site.sitePath, "utf8")).toContain(`server unix:${upstream.socketPath};`);
  });

  test("nginx -t accepts the production defaults (0.0.0.0 and [::] on 80/443), two sites side by side", async () => {
    const dir = tempDir("nginx-prod-defaults");
    const ctx = nginxContext(dir);
    fs.mkdirSync(ctx.logsDir, { recursive: true });
    fs.mkdirSync(ctx.tempDir, { recursive: true });
    const includes = ["smart_mirror", "second"].map((name, i) => {
      const sitePath = path.join(dir, `${name}.conf`);
      const text = renderNginxSite({
        name,
        serverName: i === 0 ? "mirror.eu-west-1.example.com" : "mirror.us-east-1.example.com",
        certPath: cert.chainPath,
        keyPath: cert.keyPath,
        upstreamSocket: `/run/smart-mirror/${name}.sock`,
        // The default /var/log/nginx paths would be opened by nginx -t; everything else is default.
        accessLog: path.join(ctx.logsDir, `${name}.access.log`),
        errorLog: path.join(ctx.logsDir, `${name}.error.log`),
      });
      expect(text).toContain("listen [::]:443 ssl;");
      fs.writeFileSync(sitePath, text);
      return sitePath;
    });
    const confPath = path.join(dir, "nginx.conf");
    fs.writeFileSync(confPath, debianLikeConf(ctx, includes[0]).replace(`include ${includes[0]};`, includes.map((p) => `include ${p};`).join("\n")));
    expect(await nginxTest(confPath, { prefix: dir })).toEqual({ ok: true, output: "" });
  });

  test("GET /status over verified TLS reaches the daemon with the forwarding headers; HSTS; no version token", async () => {
    const mark = upstream.seen.length;
    const r = await request(site, "/status", { headers: { "X-Forwarded-For": "203.0.113.66", "X-Real-IP": "203.0.113.66" } });
    expect(r.status).toBe(200);
    expect(r.headers["strict-transport-security"]).toBe("max-age=63072000");
    expect(r.headers.server).toBe("nginx");
    const doc = JSON.parse(r.body.toString()) as { state: string; seenHeaders: http.IncomingHttpHeaders };
    expect(doc.state).toBe("SYNCHRONIZED");
    expect(doc.seenHeaders).toMatchObject({
      host: SERVER_NAME,
      "x-forwarded-proto": "https",
      "x-forwarded-host": SERVER_NAME,
      "x-forwarded-port": String(site.httpsPort),
      // The client's own forwarding headers are replaced, not trusted.
      "x-forwarded-for": "127.0.0.1",
      "x-real-ip": "127.0.0.1",
    });
    expect(doc.seenHeaders["x-request-id"]).toMatch(/^[0-9a-f]{32}$/);
    expect(seenSince(mark).map((s) => s.url)).toEqual(["/status"]);

    // Verification is real: without the bench CA the same request is refused by the client.
    await expect(request(site, "/status", { ca: null })).rejects.toMatchObject({ code: "SELF_SIGNED_CERT_IN_CHAIN" });
  });

  test("the HTTP port answers 301 to https, keeping host, path and query, never proxying", async () => {
    const mark = upstream.seen.length;
    const target = "/scm/PROJ/repo.git/info/refs?service=git-upload-pack";
    const r = await request(site, target, { plainHttp: true });
    expect(r.status).toBe(301);
    expect(r.headers.location).toBe(`https://${SERVER_NAME}:${site.httpsPort}${target}`);
    // A Host that is not ours is sent to our name, not to whatever the client claimed.
    const foreign = await request(site, "/status", { plainHttp: true, headers: { Host: "evil.example" } });
    expect(foreign.status).toBe(301);
    expect(foreign.headers.location).toBe(`https://${SERVER_NAME}:${site.httpsPort}/status`);
    expect(seenSince(mark)).toEqual([]);
  });

  test("TLS 1.2 and 1.3 work with Mozilla ciphers; a TLS 1.1 client is refused by the site's TLS lines", async () => {
    const v12 = await handshake(site, { maxVersion: "TLSv1.2" });
    expect(v12.protocol).toBe("TLSv1.2");
    expect(MOZILLA_INTERMEDIATE_CIPHERS).toContain(v12.cipher);
    expect((await handshake(site, {})).protocol).toBe("TLSv1.3");

    // OpenSSL 3 clients refuse TLS 1.1 themselves below security level 0; lower it, so a
    // refusal can only come from the server (alert 70, protocol_version).
    const tls11: tls.ConnectionOptions = { minVersion: "TLSv1.1", maxVersion: "TLSv1.1", ciphers: "DEFAULT:@SECLEVEL=0" };
    expect(await handshake(site, tls11)).toEqual({ error: "ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION" });

    // Control: the same file with its two TLS lines loosened lets that very client in, so the
    // refusal above comes from the rendered lines, not from the bench or Debian's defaults.
    const protocolsLine = "ssl_protocols TLSv1.2 TLSv1.3;";
    const ciphersLine = `ssl_ciphers ${MOZILLA_INTERMEDIATE_CIPHERS.join(":")};`;
    const loosened = await startSite({}, (text) => {
      expect(text).toContain(protocolsLine);
      expect(text).toContain(ciphersLine);
      return text.replace(protocolsLine, "ssl_protocols TLSv1.1 TLSv1.2 TLSv1.3;").replace(ciphersLine, "ssl_ciphers DEFAULT:@SECLEVEL=0;");
    });
    expect((await handshake(loosened, tls11)).protocol).toBe("TLSv1.1");
    await loosened.nginx.stop();
  });

  test("/scm/ streams the response: the client has the first bytes before the daemon has finished; 32 MiB arrive intact", async () => {
    upstream.streamGate = deferred();
    upstream.streamSent = deferred();
    const firstBytes = deferred<void>();
    const received = new Promise<{ status: number; bytes: number; sha256: string; encoding?: string }>((resolve, reject) => {
      const req = https.request({ host: "127.0.0.1", port: site.httpsPort, path: STREAM_PATH, servername: SERVER_NAME, ca: ca.certPem, agent: false, headers: { Host: SERVER_NAME, "Accept-Encoding": "gzip" } }, (res) => {
        const hash = sha256();
        let bytes = 0;
        res.on("data", (c: Buffer) => {
          if (bytes === 0) firstBytes.resolve();
          bytes += c.length;
          hash.update(c);
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, bytes, sha256: hash.digest("hex"), encoding: res.headers["content-encoding"] }));
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end();
    });
    await within(firstBytes.promise, DEADLOCK_MS, "the first bytes of /scm/ did not reach the client while the daemon held back the rest: nginx is buffering the response");
    upstream.streamGate.resolve();
    const [got, sent] = await Promise.all([received, upstream.streamSent.promise]);
    expect(sent.gateTimedOut).toBe(false);
    expect(got.status).toBe(200);
    expect(got.encoding).toBeUndefined(); // gzip off, despite Debian's `gzip on`
    expect(got.bytes).toBe(STREAM_FIRST.length + STREAM_REST_BLOCKS * 64 * 1024);
    expect(got).toMatchObject({ bytes: sent.bytes, sha256: sent.sha256 });
  });

  test("/scm/ streams the request: the daemon has the first part of a chunked POST before the client sends the rest; Git-Protocol passes", async () => {
    upstream.bodyStarted = deferred();
    const first = randomBytes(16 * 1024);
    const rest = randomBytes(4 * 1024 * 1024);
    let answer: (a: Answer) => void = () => {};
    let failed: (e: Error) => void = () => {};
    const done = new Promise<Answer>((resolve, reject) => ((answer = resolve), (failed = reject)));
    const req = https.request(
      {
        host: "127.0.0.1",
        port: site.httpsPort,
        method: "POST",
        path: "/scm/PROJ/repo.git/git-upload-pack",
        servername: SERVER_NAME,
        ca: ca.certPem,
        agent: false,
        headers: { Host: SERVER_NAME, "Content-Type": "application/x-git-upload-pack-request", "Git-Protocol": "version=2", "Transfer-Encoding": "chunked" },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => answer({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      },
    );
    req.on("error", failed);
    req.write(first);
    try {
      await within(upstream.bodyStarted.promise, DEADLOCK_MS, "the daemon did not get the first part of the body while the client held back the rest: nginx is buffering the request");
    } catch (e) {
      req.destroy();
      throw e;
    }
    req.end(rest);
    const r = await done;
    expect(r.status).toBe(200);
    const seen = JSON.parse(r.body.toString()) as { bytes: number; sha256: string; gitProtocol: string; transferEncoding: string };
    expect(seen).toEqual({ bytes: first.length + rest.length, sha256: sha256().update(first).update(rest).digest("hex"), gitProtocol: "version=2", transferEncoding: "chunked" });
  });

  test("HTTP/1.1 keepalive to the daemon: sequential requests share one upstream connection", async () => {
    const mark = upstream.seen.length;
    for (let i = 0; i < 5; i++) expect((await request(site, "/healthz")).status).toBe(200);
    const used = new Set(seenSince(mark).map((s) => s.connection));
    expect(seenSince(mark)).toHaveLength(5);
    expect(used.size).toBe(1);
  });

  test("unknown paths get nginx's JSON 404 (with HSTS) and never reach the daemon; /metrics answers loopback", async () => {
    const mark = upstream.seen.length;
    for (const target of ["/admin", "/assets", "/assets/other.js", "/statusx", "/metrics/", "/rest/api/1.0/projects", "/.git/config", "/status/../etc/passwd"]) {
      const r = await request(site, target);
      expect({ target, status: r.status }).toEqual({ target, status: 404 });
      expect(r.headers["content-type"]).toBe("application/json");
      expect(r.headers["strict-transport-security"]).toBe("max-age=63072000");
      expect(JSON.parse(r.body.toString())).toMatchObject({ error: "not_found", requestId: expect.stringMatching(/^[0-9a-f]{32}$/) });
    }
    expect(seenSince(mark)).toEqual([]);
    // Loopback is in the default internal allow-list.
    expect((await request(site, "/metrics")).body.toString()).toBe("upstream answered GET /metrics\n");
    expect((await request(site, "/status/repos?limit=5")).body.toString()).toBe("upstream answered GET /status/repos?limit=5\n");
  });

  test("the status page and its assets reach the daemon, open like /status, with HSTS", async () => {
    for (const target of ["/", "/assets/status-page.js", "/assets/status-page.css"]) {
      const r = await request(site, target);
      expect({ target, status: r.status, body: r.body.toString() }).toEqual({ target, status: 200, body: `upstream answered GET ${target}\n` });
      expect(r.headers["strict-transport-security"]).toBe("max-age=63072000");
    }
  });

  test("webhook bodies over 1 MiB are refused by nginx; smaller ones reach the daemon", async () => {
    const mark = upstream.seen.length;
    const big = await request(site, "/webhook", { method: "POST", headers: { "Content-Type": "application/json" }, body: Buffer.alloc(1024 * 1024 + 1, 0x20) });
    expect(big.status).toBe(413);
    expect(seenSince(mark)).toEqual([]);
    const small = await request(site, "/webhook", { method: "POST", headers: { "Content-Type": "application/json" }, body: Buffer.from('{"eventKey":"repo:refs_changed"}') });
    expect(small.status).toBe(200);
    expect(JSON.parse(small.body.toString())).toMatchObject({ bytes: 32 });
  });

  test("a tight rate limit answers 429 on /scm/ beyond the burst, leaving other paths alone; a narrow allow-list shuts /metrics", async () => {
    const tight = await startSite({ rateLimit: { perMinute: 1, burst: 2 }, internalAllow: ["192.0.2.0/24"] });
    const mark = upstream.seen.length;
    const target = "/scm/PROJ/repo.git/info/refs?service=git-upload-pack";
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await request(tight, target, { headers: { "Git-Protocol": "version=2" } })).status);
    // One at the rate plus a burst of two; a minute must pass before the next.
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect(seenSince(mark).filter((s) => s.url === target)).toHaveLength(3);
    expect(seenSince(mark)[0].headers["git-protocol"]).toBe("version=2");

    for (let i = 0; i < 5; i++) expect((await request(tight, "/healthz")).status).toBe(200);
    const metricsMark = upstream.seen.length;
    expect((await request(tight, "/metrics")).status).toBe(403);
    expect((await request(tight, "/status/delayed")).status).toBe(403);
    expect(seenSince(metricsMark)).toEqual([]);
    expect(fs.readFileSync(path.join(tight.nginx.prefix, "logs", "site.error.log"), "utf8")).toMatch(/\[warn\].*limiting requests/);
    await tight.nginx.stop();
  });
});
