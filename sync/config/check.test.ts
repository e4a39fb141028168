import * as fs from "node:fs";
import * as path from "node:path";
import { formatProblems, runCheck } from "./check";
import { applySetup, setupRecordPath } from "./setupRecord";
import { loadConfig } from "./load";
import { freshPublicKey, makeHome, minimalProperties, snapshotTree, writeProperties, writeSecret } from "../../testbed/configHome";

let hostKey: string;
beforeAll(() => {
  hostKey = freshPublicKey();
});

describe("formatProblems", () => {
  test("key, line, message, value as written, and the fix on its own line", () => {
    expect(
      formatProblems([
        { key: "plugin.mirroring.upstream.url", value: "http://bb", message: "must start with https://", fix: "plugin.mirroring.upstream.url=https://bb", line: 3 },
        { key: "setup.displayName", message: "is required but not set", fix: "add setup.displayName=X" },
        { key: "bitbucket.properties", message: "not found: /h/shared/bitbucket.properties", fix: "create it:\n  a=b" },
        { key: "setup.displayName", value: " padded ", message: "m", fix: "f" },
      ]),
    ).toBe(
      "plugin.mirroring.upstream.url (line 3): must start with https:// (value: http://bb)\n  fix: plugin.mirroring.upstream.url=https://bb\n" +
        "setup.displayName: is required but not set (not set)\n  fix: add setup.displayName=X\n" +
        "bitbucket.properties: not found: /h/shared/bitbucket.properties\n  fix: create it:\n    a=b\n" +
        'setup.displayName: m (value: " padded ")\n  fix: f\n',
    );
  });
});

describe("runCheck", () => {
  test("valid: exit 0, a summary of the effective config, secrets elided", () => {
    const home = makeHome({ properties: minimalProperties(hostKey) + "mirror.webhook.secretFile=shared/secrets/webhook\n" });
    writeSecret(path.join(home, "shared", "secrets", "webhook"), "0123456789abcdef0123456789abcdef\n");
    const r = runCheck(home);
    expect(r.exitCode).toBe(0);
    expect(r.text).toContain(`${path.join(home, "shared", "bitbucket.properties")}: OK`);
    expect(r.text).toMatch(/mirror: +Sydney mirror — https:\/\/mirror-syd\.example\.com/);
    expect(r.text).toMatch(/host keys: +1 pinned key: ssh-ed25519 SHA256:/);
    expect(r.text).toMatch(/sync: +reconcile every 3m, 8 at a time/);
    expect(r.text).toMatch(/webhook: +enabled \(secret file .*webhook\)/);
    expect(r.text).toMatch(/setup record: +none yet/);
    // No secret content: neither the token, nor the webhook secret, nor the private key.
    expect(r.text).not.toContain("0123456789abcdef");
    expect(r.text).not.toContain("not-a-real-token");
    expect(r.text).not.toContain("PRIVATE KEY");
  });

  test("invalid: exit 1, every problem as `key: message (value: ...)` + `fix:`, then warnings", () => {
    const home = makeHome({
      properties: minimalProperties(hostKey, { "plugin.mirroring.upstream.url": "http://bitbucket.example.com" }) + "mirror.sync.concurency=4\nmirror.catalog=static\n",
    });
    fs.chmodSync(path.join(home, "shared", "ssh", "id_ed25519"), 0o644);
    const r = runCheck(home);
    expect(r.exitCode).toBe(1);
    const lines = r.text.split("\n");
    expect(lines[0]).toBe(`${path.join(home, "shared", "bitbucket.properties")}: 3 problems`);
    expect(r.text).toContain("plugin.mirroring.upstream.url (line 3): must start with https://");
    expect(r.text).toContain("(value: http://bitbucket.example.com)\n  fix: plugin.mirroring.upstream.url=https://bitbucket.example.com\n");
    expect(r.text).toContain("mirror.catalog.repos: is required when mirror.catalog=static (not set)\n  fix: add mirror.catalog.repos=");
    expect(r.text).toContain(`\n  fix: chmod 600 ${path.join(home, "shared", "ssh", "id_ed25519")}\n`);
    // Warnings come after the problems.
    expect(r.text.indexOf("1 warning:")).toBeGreaterThan(r.text.indexOf("chmod 600"));
    expect(r.text).toContain("mirror.sync.concurency (line 6): is not a known key; did you mean mirror.sync.concurrency?");
  });

  test("a base URL changed since setup fails the check (run would refuse)", () => {
    const home = makeHome({ properties: minimalProperties(hostKey) });
    const r0 = loadConfig(home);
    if (!r0.ok) throw new Error("invalid");
    applySetup(r0.config);
    writeProperties(home, minimalProperties(hostKey, { "setup.baseUrl": "https://moved.example.com" }));
    const r = runCheck(home);
    expect(r.exitCode).toBe(1);
    expect(r.text).toContain("setup.baseUrl: changed since setup");
    expect(r.text).toContain("fix: revert the property: setup.baseUrl=https://mirror-syd.example.com");
    expect(r.text).toContain(`delete ${setupRecordPath(home)}`);
  });

  test.each([
    ["valid, no setup record yet", (hk: string) => minimalProperties(hk), 0],
    ["invalid", (hk: string) => minimalProperties(hk, { "setup.baseUrl": "http://x" }) + "bad.key=1\nx=\\u12\n", 1],
    ["display name changed since setup", (hk: string) => minimalProperties(hk, { "setup.displayName": "Renamed" }), 0],
  ])("writes nothing: %s", (_name, props, exitCode) => {
    const home = makeHome({ properties: minimalProperties(hostKey) });
    if (_name.startsWith("display")) {
      const r0 = loadConfig(home);
      if (!r0.ok) throw new Error("invalid");
      applySetup(r0.config);
    }
    writeProperties(home, props(hostKey));
    const before = snapshotTree(home);
    const r = runCheck(home);
    expect(r.exitCode).toBe(exitCode);
    expect(snapshotTree(home)).toEqual(before);
  });

  test("missing file: exit 1 with the minimal example", () => {
    const home = makeHome();
    const r = runCheck(home);
    expect(r.exitCode).toBe(1);
    expect(r.text).toContain("bitbucket.properties: not found:");
    expect(r.text).toContain("      mirror.upstream.sshUrl=ssh://git@bitbucket.example.com:7999\n");
  });
});
