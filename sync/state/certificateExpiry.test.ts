import * as fs from "node:fs";
import * as path from "node:path";
import { Registry } from "prom-client";
import { tempDir } from "../../testbed/resources";
import { createCa } from "../../testbed/tls";
import { CERT_EXPIRY_METRIC, leafNotAfterSeconds, registerCertificateExpiry } from "./certificateExpiry";
import { X509Certificate } from "node:crypto";

async function valueOf(registry: Registry): Promise<number | undefined> {
  const m = await registry.getSingleMetric(CERT_EXPIRY_METRIC)!.get();
  return m.values[0]?.value;
}

describe("the served certificate's expiry", () => {
  test("the leaf's notAfter of a real chain (leaf first), read at each scrape; absent and logged once when unreadable", async () => {
    const ca = await createCa();
    const cert = await ca.issueServerCert(["mirror.test"]);
    const chain = fs.readFileSync(cert.chainPath, "utf8");
    const leaf = new X509Certificate(chain.slice(0, chain.indexOf("-----END CERTIFICATE-----") + 25));
    const expected = Math.floor(Date.parse(leaf.validTo) / 1000);
    expect(leafNotAfterSeconds(chain)).toBe(expected);

    const file = path.join(tempDir("cert"), "fullchain.pem");
    const warnings: object[] = [];
    const registry = new Registry();
    registerCertificateExpiry(registry, file, { warn: (o) => void warnings.push(o) });
    expect(await valueOf(registry)).toBeUndefined();
    expect(await valueOf(registry)).toBeUndefined();
    expect(warnings).toHaveLength(1);
    fs.writeFileSync(file, chain);
    expect(await valueOf(registry)).toBe(expected);
    fs.writeFileSync(file, "not a certificate\n");
    expect(await valueOf(registry)).toBeUndefined();
    expect(warnings).toHaveLength(2);
    expect(() => leafNotAfterSeconds("x")).toThrow("holds no PEM certificate");
  });
});
