import * as fs from "node:fs";
import * as path from "node:path";
import { validateText } from "../../sync/config/load";
import { parseProperties } from "../../sync/config/properties";
import { freshPublicKey, makeHome, writeSecret } from "../../testbed/configHome";
import { mirrorPaths } from "../deploy/layout";
import { propertiesValues } from "../propertiesFromArgs";
import type { SmartMirrorArgs } from "../args";
import { MANAGED_KEYS, PropertiesValues, renderProperties } from "./properties";

// A fixed key, so the snapshot is stable (a throwaway; nobody holds its private half).
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMLSLrCXW0pcoxGUW/EJTuGUPZLoE6StPXIw8GBCqaZE";

function values(home: string, over: Partial<PropertiesValues> = {}): PropertiesValues {
  const p = mirrorPaths(home);
  return {
    displayName: "Sydney mirror",
    baseUrl: "https://mirror-syd.example.com",
    upstreamUrl: "https://bitbucket.example.com",
    sshUrl: "ssh://git@bitbucket.example.com:7999",
    hostKeys: [HOST_KEY],
    keyFile: p.keyFile,
    catalog: "rest",
    tokenFile: p.catalogTokenFile,
    projects: ["PROJ", "OPS"],
    syncInterval: "3m",
    concurrency: 8,
    webhookSecretFile: p.webhookSecretFile,
    auth: "primary",
    listen: `unix:${p.socket}`,
    logLevel: "info",
    ...over,
  };
}

describe("renderProperties", () => {
  test("snapshot of a typical mirror", () => {
    expect(renderProperties(values("/var/lib/smart-mirror"))).toMatchSnapshot();
  });

  test("the daemon's own loader reads it back with no problems and the same values", () => {
    const home = makeHome(); // real key file (ssh-keygen) and token file, 0600
    const p = mirrorPaths(home);
    writeSecret(p.webhookSecretFile, "0123456789abcdef0123456789abcdef\n");
    const text = renderProperties(values(home, { displayName: 'Sydney "mirror" #1 = ü 日本 \\ end', projects: ["PROJ", "OPS"] }));
    const r = validateText(text, home);
    if (!r.ok) throw new Error(JSON.stringify(r.problems, null, 2));
    expect(r.warnings).toEqual([]);
    expect(r.config.setup.displayName).toBe('Sydney "mirror" #1 = ü 日本 \\ end');
    expect(r.config.setup.baseUrl).toBe("https://mirror-syd.example.com");
    expect(r.config.upstream.url).toBe("https://bitbucket.example.com");
    expect(r.config.upstream.ssh.url).toBe("ssh://git@bitbucket.example.com:7999");
    expect(r.config.upstream.hostKeys.map((k) => `${k.type} ${k.base64}`)).toEqual([HOST_KEY]);
    expect(r.config.projects).toEqual(["PROJ", "OPS"]);
    expect(r.config.sync.reconcileIntervalMs).toBe(180_000);
    expect(r.config.webhook.secretFile).toBe(p.webhookSecretFile);
    expect(r.config.serve.listen).toEqual({ kind: "unix", path: p.socket });
    expect(r.config.catalog).toEqual({ kind: "rest" });
  });

  test("synced events: URLs and the secret's file render and read back; the daemon refuses URLs without the secret", () => {
    const home = makeHome();
    const p = mirrorPaths(home);
    writeSecret(p.eventsSecretFile, "evsec-0123456789abcdef\n");
    const urls = ["https://ci.example.com/hooks/mirror?token=abc", "http://127.0.0.1:9000/h"];
    const text = renderProperties(values(home, { webhookSecretFile: undefined, eventsUrls: urls, eventsSecretFile: p.eventsSecretFile, extra: { "mirror.events.queueSize": "50" } }));
    expect(text).toContain(`mirror.events.urls=${urls.join(", ")}\n`);
    expect(text).not.toContain("evsec-");
    const r = validateText(text, home);
    if (!r.ok) throw new Error(JSON.stringify(r.problems, null, 2));
    expect(r.config.events).toEqual({ urls, secretFile: p.eventsSecretFile, queueSize: 50, maxAttempts: 8, timeoutMs: 10_000 });
    const unsigned = validateText(renderProperties(values(home, { webhookSecretFile: undefined, eventsUrls: urls })), home);
    if (unsigned.ok) throw new Error("URLs without a secret were accepted");
    expect(JSON.stringify(unsigned.problems)).toMatch(/mirror\.events\.secretFile.*required when mirror\.events\.urls is set/);
  });

  test("static catalog, token auth, CA file and extra keys read back too", () => {
    const home = makeHome({ tokenFile: false });
    const p = mirrorPaths(home);
    writeSecret(p.cloneTokensFile, "tok-1\ntok-2\n");
    fs.mkdirSync(p.caDir, { recursive: true });
    fs.writeFileSync(p.primaryCaFile, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    const text = renderProperties(
      values(home, {
        catalog: "static",
        catalogRepos: ["PROJ/app", "OPS/tools"],
        projects: "ALL",
        webhookSecretFile: undefined,
        auth: "tokens",
        tokensFile: p.cloneTokensFile,
        caFile: p.primaryCaFile,
        hostKeys: [HOST_KEY, freshPublicKey("ecdsa")],
        extra: { "mirror.purge.protect": "10", "mirror.sync.excludeRefs": "" },
      }),
    );
    const r = validateText(text, home);
    if (!r.ok) throw new Error(JSON.stringify(r.problems, null, 2));
    expect(r.config.catalog).toEqual({ kind: "static", repos: [{ project: "PROJ", slug: "app" }, { project: "OPS", slug: "tools" }] });
    expect(r.config.serve.auth).toBe("tokens");
    expect(r.config.serve.tokensFile).toBe(p.cloneTokensFile);
    expect(r.config.upstream.hostKeys).toHaveLength(2);
    expect(r.config.purge.protectPercent).toBe(10);
    expect(r.config.sync.excludeRefs).toEqual([]);
    expect(r.config.upstream.caFile).toBe(p.primaryCaFile);
  });

  test("keys follow the daemon's key table order, one per line", () => {
    const text = renderProperties(values("/h"));
    const keys = [...parseProperties(text).entries.keys()];
    expect(keys.slice(0, 4)).toEqual(["setup.displayName", "setup.baseUrl", "plugin.mirroring.upstream.url", "plugin.mirroring.synchronization.interval"]);
    expect(text.split("\n").filter((l) => l && !l.startsWith("#"))).toHaveLength(keys.length);
  });

  test("special characters are escaped, not interpreted", () => {
    const text = renderProperties(values("/h", { displayName: " leading space\nnew line" }));
    expect(parseProperties(text).entries.get("setup.displayName")?.value).toBe(" leading space\nnew line");
    expect(text).toContain("setup.displayName=\\ leading space\\nnew line");
  });

  test("an extra key may not override a managed one", () => {
    expect(() => renderProperties(values("/h", { extra: { "setup.baseUrl": "https://evil.example.com" } }))).toThrow(/setup.baseUrl/);
    expect(MANAGED_KEYS).toContain("mirror.upstream.hostKeys");
  });

  test("propertiesValues derives file paths and the https base URL from the component args", () => {
    const args = {
      displayName: "x",
      domainName: "mirror-syd.example.com",
      primary: { url: "https://bitbucket.example.com/", sshUrl: "ssh://git@bb:7999", hostKeys: [HOST_KEY], repos: ["P/r"], caCertificatesPem: "pem" },
      host: { kind: "existing", address: "h", privateKey: "k", hostKey: HOST_KEY },
      tls: { kind: "acme" },
      mirror: { auth: "tokens", cloneTokens: ["t"] },
    } as SmartMirrorArgs;
    const v = propertiesValues(args, "x", "/srv/mirror");
    expect(v.baseUrl).toBe("https://mirror-syd.example.com");
    expect(v.upstreamUrl).toBe("https://bitbucket.example.com");
    expect(v.catalog).toBe("static");
    expect(v.catalogRepos).toEqual(["P/r"]);
    expect(v.caFile).toBe(path.posix.join("/srv/mirror", "shared", "ca", "primary-ca.pem"));
    expect(v.tokensFile).toBe("/srv/mirror/shared/secrets/clone-tokens");
    expect(v.webhookSecretFile).toBeUndefined();
    expect(v.listen).toBe("unix:/srv/mirror/run/smart-mirror.sock");
  });
});
