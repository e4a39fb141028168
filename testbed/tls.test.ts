/**
 * The bench CA and the bench nginx, proven with real clients: node, curl (OpenSSL), git
 * (libcurl-gnutls) and openssl s_client all trust an nginx serving a CA-issued chain when,
 * and only when, they are given the CA.
 */
import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import * as fs from "node:fs";
import * as https from "node:https";
import * as net from "node:net";
import * as path from "node:path";
import * as tls from "node:tls";
import { listenAddresses, nginxContext, NginxConfigError, NginxHandle, nginxTest, renderNginxConf, startNginx } from "./nginx";
import { benchRoot, freePort, tempDir } from "./resources";
import { createCa, subjectAltNames, TestCa } from "./tls";

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function runCmd(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, input?: string): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { env, encoding: "utf8", timeout: 30000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    child.stdin?.on("error", () => undefined); // EPIPE when the command exits before reading: its exit code tells
    child.stdin?.end(input ?? "");
  });
}

function httpsGet(port: number, urlPath: string, opts: https.RequestOptions = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: "127.0.0.1", servername: "localhost", port, path: urlPath, agent: false, ...opts }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
  });
}

function tlsHandshake(port: number, opts: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: "127.0.0.1", port, servername: "localhost", ...opts }, () => {
      const v = s.getProtocol() ?? "?";
      s.end();
      resolve(v);
    });
    s.on("error", reject);
  });
}

/** A bare repo servable over git's dumb HTTP protocol (static files), so nginx alone can serve it. */
async function dumbHttpRepo(dir: string): Promise<string> {
  const git = (...args: string[]) => runCmd("git", ["-c", "user.name=bench", "-c", "user.email=bench@example.invalid", ...args]);
  const src = path.join(dir, "src");
  for (const args of [["init", "-q", "-b", "main", src], ["-C", src, "commit", "-q", "--allow-empty", "-m", "init"], ["clone", "-q", "--bare", src, path.join(dir, "repo.git")], ["-C", path.join(dir, "repo.git"), "update-server-info"]]) {
    const r = await git(...args);
    if (r.code !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr}`);
  }
  return (await git("-C", src, "rev-parse", "HEAD")).stdout.trim();
}

jest.setTimeout(60000);

describe("createCa", () => {
  let ca: TestCa;
  beforeAll(async () => {
    ca = await createCa("Bench Root / test");
  });

  test("CA is a CA: basicConstraints CA:TRUE, keyUsage keyCertSign, self-signed, key 0600, under the bench root", async () => {
    const cert = new X509Certificate(ca.certPem);
    expect(cert.ca).toBe(true);
    expect(cert.checkIssued(cert)).toBe(true);
    const ext = await runCmd("openssl", ["x509", "-in", ca.certPath, "-noout", "-ext", "basicConstraints,keyUsage"]);
    expect(ext.stdout).toMatch(/Basic Constraints: critical\s+CA:TRUE/);
    expect(ext.stdout).toMatch(/Key Usage: critical\s+Certificate Sign/);
    expect(fs.statSync(ca.keyPath).mode & 0o777).toBe(0o600);
    expect(ca.certPath.startsWith(benchRoot() + "/")).toBe(true);
  });

  test("server cert: SANs, serverAuth, CA:FALSE, signed by the CA, short validity, chain = leaf + CA", async () => {
    const leaf = await ca.issueServerCert(["localhost", "mirror.bench.test", "127.0.0.1"], ["::1"]);
    const cert = new X509Certificate(fs.readFileSync(leaf.certPath));
    const caCert = new X509Certificate(ca.certPem);
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.subjectAltName?.split(", ").sort()).toEqual(["DNS:localhost", "DNS:mirror.bench.test", "IP Address:0:0:0:0:0:0:0:1", "IP Address:127.0.0.1"].sort());
    expect(cert.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1"]); // node names the EKU "keyUsage": serverAuth
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    const days = (Date.parse(cert.validTo) - Date.now()) / 86400000;
    expect(days).toBeGreaterThan(1);
    expect(days).toBeLessThan(8);
    expect(fs.statSync(leaf.keyPath).mode & 0o777).toBe(0o600);
    const chain = fs.readFileSync(leaf.chainPath, "utf8");
    expect(chain).toBe(fs.readFileSync(leaf.certPath, "utf8") + ca.certPem);
    const verify = await runCmd("openssl", ["verify", "-CAfile", ca.certPath, "-purpose", "sslserver", leaf.certPath]);
    expect(verify.stdout).toContain(": OK");
    // A second CA must not vouch for this one's leaves.
    const other = await createCa("other");
    const cross = await runCmd("openssl", ["verify", "-CAfile", other.certPath, leaf.certPath]);
    expect(cross.code).not.toBe(0);
  });

  test("SAN rules: IP literals become IP SANs; junk and empty are refused", () => {
    expect(subjectAltNames(["a.test", "10.0.0.1"], ["::1"])).toEqual({ dns: ["a.test"], ip: ["::1", "10.0.0.1"] });
    expect(() => subjectAltNames([])).toThrow(/at least one name/);
    expect(() => subjectAltNames(["bad name"])).toThrow(/not a DNS name/);
    expect(() => subjectAltNames(["a.test"], ["999.1.1.1"])).toThrow(/not an IP/);
  });

  test("clientEnv points git, curl, node and OpenSSL at the CA", () => {
    expect(ca.clientEnv()).toEqual({ GIT_SSL_CAINFO: ca.certPath, CURL_CA_BUNDLE: ca.certPath, NODE_EXTRA_CA_CERTS: ca.certPath, SSL_CERT_FILE: ca.certPath });
  });
});

describe("nginx serving a CA-issued chain", () => {
  let ca: TestCa;
  let nginx: NginxHandle;
  let port: number;
  let head: string;
  let home: string;

  beforeAll(async () => {
    ca = await createCa();
    const leaf = await ca.issueServerCert(["localhost", "127.0.0.1"]);
    const repos = tempDir("repos");
    head = await dumbHttpRepo(repos);
    home = tempDir("home");
    port = await freePort();
    nginx = await startNginx(`
      server {
        listen 127.0.0.1:${port} ssl;
        server_name localhost;
        ssl_certificate ${leaf.chainPath};
        ssl_certificate_key ${leaf.keyPath};
        ssl_protocols TLSv1.2 TLSv1.3;
        location = /hello { return 200 "hello over tls\\n"; }
        location /scm/ { alias ${repos}/; }
      }`);
  });

  // A clean git/curl environment: no user or system config, no prompts.
  const baseEnv = () => ({ ...process.env, HOME: home, GIT_CONFIG_NOSYSTEM: "1", GIT_TERMINAL_PROMPT: "0" });

  test("node https verifies with the CA, and fails without it (self-signed in chain) or for a name not in the SANs", async () => {
    await expect(httpsGet(port, "/hello", { ca: ca.certPem })).resolves.toEqual({ status: 200, body: "hello over tls\n" });
    await expect(httpsGet(port, "/hello")).rejects.toMatchObject({ code: "SELF_SIGNED_CERT_IN_CHAIN" });
    await expect(httpsGet(port, "/hello", { ca: ca.certPem, servername: "elsewhere.test", headers: { host: "elsewhere.test" } })).rejects.toMatchObject({ code: "ERR_TLS_CERT_ALTNAME_INVALID" });
  });

  test("curl --cacert succeeds; curl with the system roots fails with exit 60", async () => {
    const url = `https://localhost:${port}/hello`;
    const ok = await runCmd("curl", ["-sS", "--cacert", ca.certPath, url], baseEnv());
    expect(ok).toMatchObject({ code: 0, stdout: "hello over tls\n" });
    const viaEnv = await runCmd("curl", ["-sS", url], { ...baseEnv(), ...ca.clientEnv() });
    expect(viaEnv.stdout).toBe("hello over tls\n");
    const bad = await runCmd("curl", ["-sS", url], baseEnv());
    expect(bad.code).toBe(60);
    expect(bad.stderr).toMatch(/self-signed certificate in certificate chain/);
  });

  test("git ls-remote over https trusts the server with clientEnv() and refuses it without", async () => {
    const url = `https://localhost:${port}/scm/repo.git`;
    const ok = await runCmd("git", ["ls-remote", url], { ...baseEnv(), ...ca.clientEnv() });
    expect(ok.stderr).toBe("");
    expect(ok.stdout).toContain(`${head}\trefs/heads/main`);
    const bad = await runCmd("git", ["ls-remote", url], baseEnv());
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/certificate/i);
    expect(bad.stdout).toBe("");
  });

  test("openssl s_client -verify_return_error: verify 0 with the CA, error 19 without", async () => {
    const args = ["s_client", "-connect", `127.0.0.1:${port}`, "-servername", "localhost", "-verify_hostname", "localhost", "-verify_return_error", "-brief"];
    const ok = await runCmd("openssl", [...args, "-CAfile", ca.certPath], baseEnv(), "");
    expect(ok.code).toBe(0);
    expect(ok.stderr).toMatch(/Verification: OK/);
    const bad = await runCmd("openssl", args, baseEnv(), "");
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/self-signed certificate in certificate chain|verify error:num=19/);
  });

  test("a TLS 1.1-only client is refused by a 1.2+ server; the same client works where 1.1 is allowed", async () => {
    const v11 = { ca: ca.certPem, minVersion: "TLSv1.1", maxVersion: "TLSv1.1", ciphers: "DEFAULT@SECLEVEL=0" } as const;
    await expect(tlsHandshake(port, { ca: ca.certPem, maxVersion: "TLSv1.2" })).resolves.toBe("TLSv1.2");
    await expect(tlsHandshake(port, v11)).rejects.toThrow(/protocol version|unsupported protocol|no protocols available/i);
    // Positive control: the refusal comes from the server's ssl_protocols, not from the client.
    const leaf = await ca.issueServerCert(["localhost"]);
    const legacyPort = await freePort();
    await startNginx(`
      server {
        listen 127.0.0.1:${legacyPort} ssl;
        ssl_certificate ${leaf.chainPath};
        ssl_certificate_key ${leaf.keyPath};
        ssl_protocols TLSv1.1 TLSv1.2;
        ssl_ciphers DEFAULT@SECLEVEL=0;
        return 204;
      }`);
    await expect(tlsHandshake(legacyPort, v11)).resolves.toBe("TLSv1.1");
  });

  test("access log is inside the prefix and records the requests", () => {
    expect(nginx.logs().access).toMatch(/"GET \/hello HTTP\/1\.1" 200/);
    expect(nginx.confPath.startsWith(nginx.prefix + "/")).toBe(true);
  });
});

describe("startNginx", () => {
  test("a bad config is refused before starting, with nginx's own message", async () => {
    const port = await freePort();
    const err = await startNginx(`server { listen 127.0.0.1:${port}; bogus_directive on; }`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NginxConfigError);
    expect((err as Error).message).toMatch(/unknown directive "bogus_directive" in \/.*nginx\.conf(\.next)?:\d+/);
    // Nothing was left listening.
    await expect(httpsGet(port, "/")).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });

  test("a missing certificate is reported clearly", async () => {
    const port = await freePort();
    const err = await startNginx(`server { listen 127.0.0.1:${port} ssl; ssl_certificate /nonexistent/c.pem; ssl_certificate_key /nonexistent/k.pem; }`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NginxConfigError);
    expect((err as Error).message).toMatch(/cannot load certificate "\/nonexistent\/c\.pem"/);
  });

  test("a failure `nginx -t` cannot see (port taken) rejects with nginx's own log", async () => {
    const taken = net.createServer().listen(0, "127.0.0.1");
    await new Promise((r) => taken.once("listening", r));
    try {
      const port = (taken.address() as net.AddressInfo).port;
      const err = await startNginx(`server { listen 127.0.0.1:${port}; return 204; }`).catch((e: unknown) => e);
      expect((err as Error).message).toMatch(/exited during startup[\s\S]*bind\(\) to 127\.0\.0\.1:\d+ failed \(98: Address already in use\)/);
    } finally {
      taken.close();
    }
  });

  test("nginxTest validates a rendered config file", async () => {
    const dir = tempDir("nginx-render");
    const ctx = nginxContext(dir);
    fs.mkdirSync(ctx.logsDir);
    fs.mkdirSync(ctx.tempDir);
    const good = path.join(dir, "good.conf");
    const bad = path.join(dir, "bad.conf");
    fs.writeFileSync(good, renderNginxConf(ctx, `server { listen 127.0.0.1:1; location / { return 204; } }`));
    fs.writeFileSync(bad, renderNginxConf(ctx, `server { listen 127.0.0.1:1; location / { return 204; }`));
    await expect(nginxTest(good)).resolves.toEqual({ ok: true, output: "" });
    const r = await nginxTest(bad);
    expect(r.ok).toBe(false);
    expect(r.output).toMatch(/unexpected end of file, expecting "}"/);
  });

  test("the rendered config keeps every nginx path inside the prefix", () => {
    const ctx = nginxContext("/p", {}, true);
    const conf = renderNginxConf(ctx, "server { listen 8080; }");
    for (const d of ["pid", "error_log", "access_log", "client_body_temp_path", "proxy_temp_path", "fastcgi_temp_path", "uwsgi_temp_path", "scgi_temp_path"]) {
      expect(conf).toMatch(new RegExp(`^\\s*${d} /p/`, "m"));
    }
    expect(conf).toMatch(/^daemon off;$/m);
    expect(conf).toMatch(/^user root root;$/m);
    expect(renderNginxConf(nginxContext("/p", {}, false), "")).not.toMatch(/^user /m);
  });

  test("listen directives are found for the readiness wait", () => {
    expect(listenAddresses("listen 8080;\n# listen 9;\nserver{listen 127.0.0.1:8443 ssl http2; listen [::1]:9443; listen unix:/run/x.sock; listen *:81;}")).toEqual([
      { host: "127.0.0.1", port: 8080 },
      { host: "127.0.0.1", port: 8443 },
      { host: "::1", port: 9443 },
      { unix: "/run/x.sock" },
      { host: "127.0.0.1", port: 81 },
    ]);
  });

  test("reload swaps the config in place; a bad reload is refused and the old config keeps serving", async () => {
    const port = await freePort();
    const body = (text: string) => `server { listen 127.0.0.1:${port}; location / { return 200 "${text}"; } }`;
    const nginx = await startNginx(body("one"));
    const fetchText = () => fetch(`http://127.0.0.1:${port}/`).then((r) => r.text());
    expect(await fetchText()).toBe("one");
    await nginx.reload(body("two"));
    expect(await fetchText()).toBe("two");
    await expect(nginx.reload("server { nonsense; }")).rejects.toBeInstanceOf(NginxConfigError);
    expect(await fetchText()).toBe("two");
    expect(fs.readFileSync(nginx.confPath, "utf8")).toContain('"two"');
    await nginx.stop();
    expect(nginx.process.child.exitCode !== null || nginx.process.child.signalCode !== null).toBe(true);
    await expect(fetchText()).rejects.toThrow();
  });

  (process.geteuid?.() === 0 ? test : test.skip)("workers run as the configured user (nobody) and still serve", async () => {
    const port = await freePort();
    const nginx = await startNginx(`server { listen 127.0.0.1:${port}; location / { return 200 "ok"; } }`, { user: "nobody nogroup" });
    expect(await fetch(`http://127.0.0.1:${port}/`).then((r) => r.text())).toBe("ok");
    const workers = fs
      .readdirSync("/proc")
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          return /^PPid:\s+(\d+)$/m.exec(fs.readFileSync(`/proc/${p}/status`, "utf8"))?.[1] === String(nginx.pid);
        } catch {
          return false;
        }
      });
    expect(workers.length).toBeGreaterThan(0);
    for (const w of workers) expect(fs.readFileSync(`/proc/${w}/status`, "utf8")).toMatch(/^Uid:\s+65534\s/m);
  });
});
