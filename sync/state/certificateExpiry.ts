/**
 * smart_mirror_tls_certificate_expiry_timestamp_seconds: when the certificate nginx serves
 * for the mirror stops being valid (its leaf's notAfter, Unix seconds), so Prometheus can alert
 * weeks before an ACME renewal that silently failed turns into clients refusing the mirror.
 *
 * Read at scrape time from the file nginx uses (mirror.metrics.tlsCertificateFile): a renewed
 * file is seen on the next scrape, no restart and no watcher. Parsed by node's X509Certificate;
 * the first certificate of the chain is the leaf (nginx requires that order). A missing or
 * unreadable file leaves the gauge empty (absent), logged once per distinct problem, so a
 * scrape never fails for it.
 */
import * as fs from "node:fs";
import { X509Certificate } from "node:crypto";
import { Gauge, Registry } from "prom-client";

export const CERT_EXPIRY_METRIC = "smart_mirror_tls_certificate_expiry_timestamp_seconds";

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/;

/** The leaf's notAfter in Unix seconds, from a PEM chain (pure). Throws naming what is wrong. */
export function leafNotAfterSeconds(pem: string): number {
  const block = PEM_BLOCK.exec(pem);
  if (!block) throw new Error("holds no PEM certificate");
  const t = Date.parse(new X509Certificate(block[0]).validTo);
  if (Number.isNaN(t)) throw new Error("has a certificate without a readable expiry date");
  return Math.floor(t / 1000);
}

export function registerCertificateExpiry(registry: Registry, file: string, log: { warn(obj: object, msg?: string): void }, read: (f: string) => string = (f) => fs.readFileSync(f, "utf8")): Gauge {
  let lastProblem: string | undefined;
  return new Gauge({
    name: CERT_EXPIRY_METRIC,
    help: "Expiry (notAfter, Unix time) of the TLS certificate nginx serves for the mirror (mirror.metrics.tlsCertificateFile); absent when unreadable.",
    registers: [registry],
    collect() {
      // reset() alone would leave 0 (see setOrAbsent in metrics.ts): remove() makes it absent.
      this.reset();
      this.remove();
      try {
        this.set(leafNotAfterSeconds(read(file)));
        lastProblem = undefined;
      } catch (e) {
        const problem = `${file} ${(e as Error).message}`;
        if (problem !== lastProblem) log.warn({ file, error: (e as Error).message }, "cannot read the served TLS certificate; its expiry metric is absent");
        lastProblem = problem;
      }
    },
  });
}
