/**
 * A private certificate authority for the testbed, made with the real `openssl` CLI, so
 * every TLS test runs against certificates real clients (git/GnuTLS, curl/OpenSSL, node)
 * verify the way they would in production. Nothing is cached: a CA and a leaf each cost one
 * `openssl req` run (EC P-256, a few tens of milliseconds).
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { promisify } from "node:util";
import { tempDir } from "./resources";

const run = promisify(execFile);

/** Short-lived on purpose: a bench certificate should never be useful outside the run. */
const VALIDITY_DAYS = 3;

export interface ServerCert {
  certPath: string;
  keyPath: string;
  /** Leaf followed by the CA certificate: what a server sends (nginx `ssl_certificate`). */
  chainPath: string;
}

export interface TestCa {
  dir: string;
  certPath: string;
  keyPath: string;
  certPem: string;
  /**
   * A serverAuth leaf signed by this CA. Entries of `hostnames` that are IP literals go into
   * IP SANs too, so `issueServerCert(["localhost", "127.0.0.1"])` does what it says.
   */
  issueServerCert(hostnames: string[], ips?: string[]): Promise<ServerCert>;
  /** Environment that makes git, curl, node and OpenSSL-default clients trust this CA (merge into a child's env). */
  clientEnv(): Record<string, string>;
}

/** Split names into DNS and IP SANs; pure, so the SAN rules are easy to see and test. */
export function subjectAltNames(hostnames: string[], ips: string[] = []): { dns: string[]; ip: string[] } {
  const dns: string[] = [];
  const ip: string[] = [...ips];
  for (const h of hostnames) (net.isIP(h) ? ip : dns).push(h);
  for (const a of ip) if (!net.isIP(a)) throw new Error(`not an IP address: ${a}`);
  for (const d of dns) if (!/^(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/.test(d)) throw new Error(`not a DNS name: ${d}`);
  if (dns.length + ip.length === 0) throw new Error("a server certificate needs at least one name");
  return { dns: [...new Set(dns)], ip: [...new Set(ip)] };
}

/**
 * Our own openssl config, so the result never depends on /etc/ssl/openssl.cnf defaults.
 * CA: basicConstraints CA:TRUE (critical), keyUsage keyCertSign (+cRLSign).
 * Leaf: CA:FALSE, digitalSignature (right for ECDSA), EKU serverAuth, the SANs.
 */
export function renderOpensslConfig(san?: { dns: string[]; ip: string[] }): string {
  const lines = [
    "[req]",
    "distinguished_name = dn",
    "prompt = no",
    "[dn]",
    "CN = unused",
    "[v3_ca]",
    "basicConstraints = critical,CA:TRUE",
    "keyUsage = critical,keyCertSign,cRLSign",
    "subjectKeyIdentifier = hash",
  ];
  if (san) {
    const alt = [...san.dns.map((d) => `DNS:${d}`), ...san.ip.map((i) => `IP:${i}`)].join(",");
    lines.push(
      "[v3_server]",
      "basicConstraints = critical,CA:FALSE",
      "keyUsage = critical,digitalSignature",
      "extendedKeyUsage = serverAuth",
      `subjectAltName = ${alt}`,
      "subjectKeyIdentifier = hash",
      "authorityKeyIdentifier = keyid",
    );
  }
  return lines.join("\n") + "\n";
}

/** openssl -subj syntax: '/' and '=' inside a value would start a new attribute. */
function subj(cn: string): string {
  return `/CN=${cn.replace(/[/=\\]/g, "-")}`;
}

const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-noenc"];

async function openssl(args: string[]): Promise<void> {
  try {
    await run("openssl", args);
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`openssl ${args[0]} failed: ${err.stderr?.trim() || err.message}`);
  }
}

export async function createCa(name = "smart-mirror bench CA"): Promise<TestCa> {
  const dir = tempDir("ca");
  const certPath = path.join(dir, "ca.crt");
  const keyPath = path.join(dir, "ca.key");
  const caConf = path.join(dir, "ca.cnf");
  fs.writeFileSync(caConf, renderOpensslConfig());
  await openssl(["req", "-x509", "-config", caConf, "-extensions", "v3_ca", ...EC_KEY, "-keyout", keyPath, "-out", certPath, "-days", String(VALIDITY_DAYS), "-subj", subj(name)]);
  // openssl already creates private keys 0600; make it a guarantee rather than a habit.
  fs.chmodSync(keyPath, 0o600);
  const certPem = fs.readFileSync(certPath, "utf8");
  let leaves = 0;

  async function issueServerCert(hostnames: string[], ips?: string[]): Promise<ServerCert> {
    const san = subjectAltNames(hostnames, ips);
    const base = path.join(dir, `server-${++leaves}`);
    const conf = `${base}.cnf`;
    const out = { certPath: `${base}.crt`, keyPath: `${base}.key`, chainPath: `${base}.chain.crt` };
    fs.writeFileSync(conf, renderOpensslConfig(san));
    // `req -x509 -CA` (OpenSSL 3) makes key and signed leaf in one process: no CSR round trip.
    await openssl(["req", "-x509", "-config", conf, "-extensions", "v3_server", "-CA", certPath, "-CAkey", keyPath, ...EC_KEY, "-keyout", out.keyPath, "-out", out.certPath, "-days", String(VALIDITY_DAYS), "-subj", subj(san.dns[0] ?? san.ip[0])]);
    fs.chmodSync(out.keyPath, 0o600);
    fs.writeFileSync(out.chainPath, fs.readFileSync(out.certPath, "utf8") + certPem);
    return out;
  }

  return {
    dir,
    certPath,
    keyPath,
    certPem,
    issueServerCert,
    clientEnv: () => ({
      // git's https transport (libcurl-gnutls on Debian) and curl (OpenSSL) respectively.
      GIT_SSL_CAINFO: certPath,
      CURL_CA_BUNDLE: certPath,
      // Added to node's bundled roots rather than replacing them.
      NODE_EXTRA_CA_CERTS: certPath,
      // OpenSSL's default verify file (openssl s_client, python, ...). Replaces the system
      // roots for that child, which costs nothing on an offline bench.
      SSL_CERT_FILE: certPath,
    }),
  };
}
