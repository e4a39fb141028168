import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { createCa } from "../../testbed/tls";
import { loadConfig, LoadResult } from "./load";
import { summarize } from "./check";
import { Problem } from "./problems";
import { freshPublicKey, makeHome, minimalProperties, writeProperties, writeSecret } from "../../testbed/configHome";

let hostKey: string;
beforeAll(() => {
  hostKey = freshPublicKey("ed25519");
});

function problemsOf(r: LoadResult): Problem[] {
  if (r.ok) throw new Error(`expected problems, got a valid config (warnings: ${JSON.stringify(r.warnings)})`);
  return r.problems;
}

function load(changes: Record<string, string | undefined>, extra = ""): LoadResult {
  const home = makeHome({ properties: minimalProperties(hostKey, changes) + extra });
  return loadConfig(home);
}

describe("a valid minimal file", () => {
  test("yields the typed config with every default applied", () => {
    const home = makeHome({ properties: minimalProperties(hostKey) });
    const r = loadConfig(home);
    if (!r.ok) throw new Error(JSON.stringify(r.problems, null, 2));
    expect(r.warnings).toEqual([]);
    const [type, base64] = hostKey.split(" ");
    expect(r.config).toEqual({
      home,
      propertiesFile: path.join(home, "shared", "bitbucket.properties"),
      setup: { displayName: "Sydney mirror", baseUrl: "https://mirror-syd.example.com" },
      upstream: {
        url: "https://bitbucket.example.com",
        ssh: { user: "git", host: "bitbucket.example.com", port: 7999, url: "ssh://git@bitbucket.example.com:7999" },
        hostKeys: [{ type, base64, fingerprint: expect.stringMatching(/^SHA256:/) }],
        keyFile: path.join(home, "shared", "ssh", "id_ed25519"),
        caFile: undefined,
        tokenFile: path.join(home, "shared", "secrets", "upstream-token"),
      },
      catalog: { kind: "rest" },
      projects: "ALL",
      sync: { reconcileIntervalMs: 180_000, concurrency: 8, timeoutMs: 600_000, retryMaxMs: 600_000, firstCloneStepBytes: 64 * 1024 * 1024, excludeRefs: ["refs/pull-requests/*"], scan: { maxPerSecond: 12, idleBoundMs: 6 * 3_600_000, activeWindowMs: 24 * 3_600_000 } },
      webhook: { secretFile: undefined },
      purge: { enabled: true, protectPercent: 5 },
      maintenance: { repackIntervalMs: 86_400_000, fsckIntervalMs: 604_800_000 },
      disk: { minFreeBytes: 1024 * 2 ** 20 },
      serve: { listen: { kind: "unix", path: path.join(home, "run", "smart-mirror.sock") }, auth: "primary", tokensFile: undefined, authCacheTtlMs: 300_000, packCacheBytes: 2048 * 2 ** 20, packCacheScope: "clones",
        uploadPacksPerClient: 0, minTransferBytesPerSec: 16 * 1024, lowSpeedTimeMs: 60_000, maxTransferMs: 6 * 3600_000, bodyBudgetBytes: 64 * 2 ** 20, bodyTimeoutMs: 30_000, onDemandWaitMs: 5000, freshness: "always", push: "proxy" },
      lfs: { enabled: true, maxObjectBytes: 10240 * 2 ** 20, prefetch: false },
      status: { delayedSyncToleranceMs: 600_000 },
      drain: { timeoutMs: 300_000, quietPeriodMs: 0 },
      metrics: { tlsCertificateFile: undefined },
      log: { level: "info" },
    });
  });

  test("the fingerprint is OpenSSH's (ssh-keygen -lf)", () => {
    const home = makeHome({ properties: minimalProperties(hostKey) });
    const r = loadConfig(home);
    if (!r.ok) throw new Error("invalid");
    const pub = path.join(home, "hk.pub");
    fs.writeFileSync(pub, hostKey + "\n");
    const out = execFileSync("ssh-keygen", ["-lf", pub], { encoding: "utf8" });
    expect(out).toContain(r.config.upstream.hostKeys[0].fingerprint);
  });

  test("values are trimmed; relative paths are relative to the home; the values set are taken", () => {
    const home = makeHome({
      properties:
        minimalProperties(hostKey, { "setup.baseUrl": "https://mirror-syd.example.com/   " }) +
        "mirror.upstream.keyFile=keys/mirror\nmirror.sync.concurrency = 16\nplugin.mirroring.synchronization.interval: 90s\n" +
        "mirror.projects=PROJ,OPS\nmirror.sync.excludeRefs=\nmirror.maintenance.fsckInterval=0\nmirror.serve.listen=127.0.0.1:7990\nmirror.log.level=debug\n",
    });
    fs.mkdirSync(path.join(home, "keys"));
    fs.copyFileSync(path.join(home, "shared", "ssh", "id_ed25519"), path.join(home, "keys", "mirror"));
    fs.chmodSync(path.join(home, "keys", "mirror"), 0o600);
    const r = loadConfig(home);
    if (!r.ok) throw new Error(JSON.stringify(r.problems, null, 2));
    expect(r.config.setup.baseUrl).toBe("https://mirror-syd.example.com");
    expect(r.config.upstream.keyFile).toBe(path.join(home, "keys", "mirror"));
    expect(r.config.sync).toMatchObject({ concurrency: 16, reconcileIntervalMs: 90_000, excludeRefs: [] });
    expect(r.config.projects).toEqual(["PROJ", "OPS"]);
    expect(r.config.maintenance.fsckIntervalMs).toBe(0);
    expect(r.config.serve.listen).toEqual({ kind: "tcp", host: "127.0.0.1", port: 7990 });
    expect(r.config.log.level).toBe("debug");
  });
});

describe("every invalid value is reported with its key, the value as written and a fix", () => {
  test.each([
    ["setup.displayName", "", /is empty/, "setup.displayName=Sydney mirror"],
    ["setup.displayName", "Bell\\u0007", /control characters/, "setup.displayName="],
    ["setup.baseUrl", "http://mirror-syd.example.com", /must start with https:\/\//, "setup.baseUrl=https://mirror-syd.example.com"],
    ["plugin.mirroring.upstream.url", "http://bitbucket.example.com", /must start with https:\/\/ .*valid certificate/, "plugin.mirroring.upstream.url=https://bitbucket.example.com"],
    ["plugin.mirroring.upstream.url", "ssh://git@bitbucket.example.com:7999", /mirror\.upstream\.sshUrl/, "plugin.mirroring.upstream.url=https://bitbucket.example.com"],
    ["plugin.mirroring.synchronization.interval", "3", /too short .*3 = 3s/, "plugin.mirroring.synchronization.interval=3m"],
    ["plugin.mirroring.synchronization.interval", "5 minutes", /not a duration/, "=3m"],
    ["plugin.mirroring.synchronization.interval", "2d", /too long/, "=3m"],
    ["mirror.upstream.sshUrl", "https://bitbucket.example.com", /SSH only/, "mirror.upstream.sshUrl=ssh://git@bitbucket.example.com:7999"],
    ["mirror.upstream.sshUrl", "git@bitbucket.example.com:PROJ/repo.git", /scp-like/, "mirror.upstream.sshUrl=ssh://git@bitbucket.example.com:7999"],
    ["mirror.upstream.hostKeys", "ssh-ed25519 AAAAC3Nza", /not valid base64|damaged|wrong length/, "ssh-keyscan -p 7999 bitbucket.example.com"],
    ["mirror.upstream.keyFile", "", /is empty/, "delete the line to use the default"],
    ["mirror.catalog", "REST", /one of rest, static/, "mirror.catalog=rest"],
    ["mirror.projects", "My Project", /not a project key/, "mirror.projects="],
    ["mirror.sync.concurrency", "0", /from 1 to 64/, "mirror.sync.concurrency=1"],
    ["mirror.sync.concurrency", "100", /from 1 to 64/, "mirror.sync.concurrency=64"],
    ["mirror.sync.concurrency", "eight", /whole number/, "mirror.sync.concurrency=8"],
    ["mirror.sync.timeout", "0", /too short/, "mirror.sync.timeout=10m"],
    ["mirror.sync.excludeRefs", "heads/wip/*", /must start with refs\//, "mirror.sync.excludeRefs=refs/pull-requests/*"],
    ["mirror.sync.retryMax", "soon", /not a duration/, "mirror.sync.retryMax=10m"],
    ["mirror.purge.enabled", "yes", /true or false/, "mirror.purge.enabled=true"],
    ["mirror.purge.protect", "200", /at most 100/, "mirror.purge.protect=100"],
    ["mirror.maintenance.repackInterval", "10m", /too short.*or 0 to turn it off/, "mirror.maintenance.repackInterval=1d"],
    ["mirror.serve.listen", "7990", /unix:PATH or HOST:PORT/, "mirror.serve.listen=127.0.0.1:7990"],
    ["mirror.serve.auth", "none", /one of primary, anonymous, tokens/, "mirror.serve.auth=primary"],
    ["mirror.serve.authCacheTtl", "forever", /not a duration/, "mirror.serve.authCacheTtl=5m"],
    ["mirror.log.level", "verbose", /one of fatal, error/, "mirror.log.level=fatal"],
  ])("%s=%j", (key, value, message, fix) => {
    const isMinimal = minimalProperties(hostKey).includes(`${key}=`);
    const r = isMinimal ? load({ [key]: value }) : load({}, `${key}=${value}\n`);
    const problems = problemsOf(r);
    expect(problems).toHaveLength(1);
    const written = value.replace("\\u0007", "\u0007");
    expect(problems[0]).toMatchObject({ key, value: written, line: expect.any(Number) });
    expect(problems[0].message).toMatch(message);
    expect(problems[0].fix).toContain(fix);
  });

  test.each(["setup.displayName", "setup.baseUrl", "plugin.mirroring.upstream.url", "mirror.upstream.sshUrl", "mirror.upstream.hostKeys"])(
    "required %s missing: problem without a value, fix shows the line to add",
    (key) => {
      const problems = problemsOf(load({ [key]: undefined }));
      expect(problems).toEqual([expect.objectContaining({ key, value: undefined, message: "is required but not set", fix: expect.stringContaining(`add ${key}=`) })]);
    },
  );

  test("ALL problems at once, not just the first", () => {
    const home = makeHome({
      keyFile: false,
      properties: minimalProperties(hostKey, { "plugin.mirroring.upstream.url": "http://bb", "setup.displayName": undefined }) + "mirror.sync.concurrency=0\nmirror.catalog=static\n",
    });
    const keys = problemsOf(loadConfig(home)).map((p) => p.key).sort();
    expect(keys).toEqual(["mirror.catalog.repos", "mirror.sync.concurrency", "mirror.upstream.keyFile", "plugin.mirroring.upstream.url", "setup.displayName"]);
  });
});

describe("rules between keys", () => {
  test("static catalog requires mirror.catalog.repos", () => {
    const problems = problemsOf(load({}, "mirror.catalog=static\n"));
    expect(problems).toEqual([
      expect.objectContaining({ key: "mirror.catalog.repos", message: "is required when mirror.catalog=static", fix: expect.stringContaining("mirror.catalog.repos=PROJ/repo, PROJ/other") }),
    ]);
  });

  test("synced events: URLs need the secret file; plain http only to loopback; the secret file is checked like the others", () => {
    const unsigned = problemsOf(load({}, "mirror.events.urls=https://ci.example.com/h\n"));
    expect(unsigned).toEqual([expect.objectContaining({ key: "mirror.events.secretFile", message: "is required when mirror.events.urls is set (events are always signed)", fix: expect.stringContaining("openssl rand -hex 32") })]);
    const plain = problemsOf(load({}, "mirror.events.urls=http://ci.example.com/h\nmirror.events.secretFile=/nonexistent/s\n"));
    expect(plain).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ key: "mirror.events.urls", message: expect.stringContaining("plain http to another host"), fix: expect.stringContaining("mirror.events.urls=https://ci.example.com/h") }),
      ]),
    );
    expect(problemsOf(load({}, "mirror.events.urls=https://u:p@ci.example.com/h\n"))[0]).toMatchObject({ key: "mirror.events.urls", message: expect.stringContaining("user name or password") });
    const home = makeHome({ properties: minimalProperties(hostKey) + "mirror.events.urls=http://127.0.0.1:9000/h\nmirror.events.secretFile=DIR/shared/secrets/events-secret\n".replace("DIR", "/tmp/never") });
    expect(problemsOf(loadConfig(home))).toEqual([expect.objectContaining({ key: "mirror.events.secretFile", message: "file does not exist", fix: expect.stringContaining("give the event receivers the same secret") })]);
    const ok = makeHome({ properties: minimalProperties(hostKey) + "mirror.events.urls=http://127.0.0.1:9000/h\nmirror.events.secretFile=shared/secrets/events-secret\n" });
    writeSecret(path.join(ok, "shared", "secrets", "events-secret"), "short\n");
    const r = loadConfig(ok);
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    expect(r.warnings).toEqual([expect.objectContaining({ key: "mirror.events.secretFile", message: expect.stringContaining("shorter than 16 characters") })]);
    // A secret file without URLs sends nothing: said, not refused.
    const idle = loadConfig(makeHome({ properties: minimalProperties(hostKey) + "mirror.events.secretFile=/x\n" }));
    if (!idle.ok) throw new Error(JSON.stringify(idle.problems));
    expect(idle.warnings).toEqual([expect.objectContaining({ key: "mirror.events.secretFile", message: "is ignored because mirror.events.urls is not set" })]);
    expect(idle.config.events).toBeUndefined();
  });

  test("static catalog with an empty repos line: one problem, not two", () => {
    expect(problemsOf(load({}, "mirror.catalog=static\nmirror.catalog.repos=\n"))).toEqual([expect.objectContaining({ key: "mirror.catalog.repos", value: "", message: "is empty" })]);
  });

  test("static catalog with repos needs no upstream token file", () => {
    const home = makeHome({ tokenFile: false, properties: minimalProperties(hostKey) + "mirror.catalog=static\nmirror.catalog.repos=PROJ/a, OPS/b\n" });
    const r = loadConfig(home);
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    expect(r.config.catalog).toEqual({ kind: "static", repos: [{ project: "PROJ", slug: "a" }, { project: "OPS", slug: "b" }] });
    expect(r.config.upstream.tokenFile).toBeUndefined();
  });

  test("the REST catalog needs its token file", () => {
    const home = makeHome({ tokenFile: false, properties: minimalProperties(hostKey) });
    expect(problemsOf(loadConfig(home))).toEqual([
      expect.objectContaining({ key: "mirror.upstream.tokenFile", message: "file does not exist (the default path)", value: path.join(home, "shared", "secrets", "upstream-token"), fix: expect.stringContaining("HTTP access token") }),
    ]);
  });

  test("a key that only matters for another mode is warned about, not silently dropped", () => {
    const r = load({}, "mirror.catalog.repos=PROJ/a\nmirror.serve.tokensFile=x\n");
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    expect(r.warnings.map((w) => [w.key, w.message])).toEqual([
      ["mirror.catalog.repos", expect.stringContaining("ignored because mirror.catalog is rest")],
      ["mirror.serve.tokensFile", expect.stringContaining("ignored because mirror.serve.auth is primary")],
    ]);
  });

  test("serve.auth=tokens requires a tokens file that exists and is private", () => {
    expect(problemsOf(load({}, "mirror.serve.auth=tokens\n"))).toEqual([expect.objectContaining({ key: "mirror.serve.tokensFile", message: "is required when mirror.serve.auth=tokens" })]);
    const home = makeHome({ properties: minimalProperties(hostKey) + "mirror.serve.auth=tokens\nmirror.serve.tokensFile=shared/secrets/clone-tokens\n" });
    expect(problemsOf(loadConfig(home))).toEqual([expect.objectContaining({ key: "mirror.serve.tokensFile", message: expect.stringContaining("does not exist") })]);
    writeSecret(path.join(home, "shared", "secrets", "clone-tokens"), "t0ken\n");
    const r = loadConfig(home);
    expect(r.ok && r.config.serve).toMatchObject({ auth: "tokens", tokensFile: path.join(home, "shared", "secrets", "clone-tokens") });
  });

  test("drain: the quiet period must be shorter than the bound on the whole drain", () => {
    const [p] = problemsOf(load({}, "mirror.drain.quietPeriod=5m\n"));
    expect(p).toMatchObject({ key: "mirror.drain.quietPeriod", value: "5m", message: "(5m) must be shorter than mirror.drain.timeout (5m), which bounds the whole drain", fix: expect.stringContaining("raise mirror.drain.timeout") });
    const ok = load({}, "mirror.drain.quietPeriod=30s\nmirror.drain.timeout=10m\n");
    if (!ok.ok) throw new Error(JSON.stringify(ok.problems));
    expect(ok.config.drain).toEqual({ quietPeriodMs: 30_000, timeoutMs: 600_000 });
  });

  test("a static repository outside mirror.projects is warned about", () => {
    const r = load({}, "mirror.catalog=static\nmirror.catalog.repos=PROJ/a, OPS/b\nmirror.projects=PROJ\n");
    expect(r.ok && r.warnings).toEqual([expect.objectContaining({ key: "mirror.catalog.repos", message: expect.stringContaining("OPS/b is not in mirror.projects") })]);
  });

  test("webhook: without a secret file the endpoint is disabled; with one it must be a private, non-trivial secret", () => {
    const off = load({});
    expect(off.ok && off.config.webhook.secretFile).toBeUndefined();
    const home = makeHome({ properties: minimalProperties(hostKey) + "mirror.webhook.secretFile=shared/secrets/webhook\n" });
    writeSecret(path.join(home, "shared", "secrets", "webhook"), "short\n");
    const r = loadConfig(home);
    expect(r.ok && r.warnings).toEqual([expect.objectContaining({ key: "mirror.webhook.secretFile", message: expect.stringContaining("shorter than 16") })]);
    expect(JSON.stringify(r)).not.toContain("short\\n");
  });
});

describe("files the configuration points at", () => {
  test("a key file with mode 0644 is a problem whose fix is chmod 600", () => {
    const home = makeHome({ properties: minimalProperties(hostKey) });
    const key = path.join(home, "shared", "ssh", "id_ed25519");
    fs.chmodSync(key, 0o644);
    expect(problemsOf(loadConfig(home))).toEqual([
      expect.objectContaining({ key: "mirror.upstream.keyFile", message: expect.stringContaining("mode 0644"), fix: `chmod 600 ${key}` }),
    ]);
    fs.chmodSync(key, 0o640);
    expect(problemsOf(loadConfig(home))[0].message).toContain("mode 0640");
    fs.chmodSync(key, 0o400);
    expect(loadConfig(home).ok).toBe(true);
  });

  test("a missing key file: the fix says how to make one and grant it", () => {
    const home = makeHome({ keyFile: false, properties: minimalProperties(hostKey) });
    expect(problemsOf(loadConfig(home))).toEqual([expect.objectContaining({ key: "mirror.upstream.keyFile", fix: expect.stringContaining("ssh-keygen -t ed25519") })]);
  });

  test("pointing keyFile at the .pub is caught", () => {
    const home = makeHome({ properties: minimalProperties(hostKey) + "mirror.upstream.keyFile=shared/ssh/id_ed25519.pub\n" });
    fs.chmodSync(path.join(home, "shared", "ssh", "id_ed25519.pub"), 0o600);
    expect(problemsOf(loadConfig(home))).toEqual([
      expect.objectContaining({ key: "mirror.upstream.keyFile", value: "shared/ssh/id_ed25519.pub", message: expect.stringContaining("names a public key"), fix: `mirror.upstream.keyFile=${path.join(home, "shared", "ssh", "id_ed25519")}` }),
    ]);
  });

  test("a secret file's content never appears in problems, even when it is wrong", () => {
    const home = makeHome({ properties: minimalProperties(hostKey) });
    const token = path.join(home, "shared", "secrets", "upstream-token");
    writeSecret(token, "BBDC-super-secret-value\n", 0o644);
    const r = loadConfig(home);
    expect(problemsOf(r)).toEqual([expect.objectContaining({ key: "mirror.upstream.tokenFile", fix: `chmod 600 ${token}` })]);
    expect(JSON.stringify(r)).not.toContain("super-secret");
  });

  test("an empty token file is a problem", () => {
    const home = makeHome({ properties: minimalProperties(hostKey) });
    writeSecret(path.join(home, "shared", "secrets", "upstream-token"), "\n");
    expect(problemsOf(loadConfig(home))).toEqual([expect.objectContaining({ key: "mirror.upstream.tokenFile", message: expect.stringContaining("empty file") })]);
  });

  test("caFile must hold PEM certificates; a real CA certificate passes", async () => {
    const ca = await createCa();
    const ok = load({}, `mirror.upstream.caFile=${ca.certPath}\n`);
    expect(ok.ok && ok.config.upstream.caFile).toBe(ca.certPath);
    const bad = load({}, `mirror.upstream.caFile=${ca.keyPath}\n`);
    expect(problemsOf(bad)).toEqual([expect.objectContaining({ key: "mirror.upstream.caFile", message: expect.stringContaining("no PEM certificate") })]);
  });
});

describe("the file itself", () => {
  test("missing: the fix says where to put it and shows a minimal example that is valid", () => {
    const home = makeHome({});
    const problems = problemsOf(loadConfig(home));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ key: "bitbucket.properties", message: `not found: ${path.join(home, "shared", "bitbucket.properties")}` });
    const example = problems[0].fix
      .split("\n")
      .filter((l) => /^\s+[a-z.]+[A-Za-z.]*=/.test(l))
      .map((l) => l.trim());
    expect(example.map((l) => l.split("=")[0])).toEqual(["setup.displayName", "setup.baseUrl", "plugin.mirroring.upstream.url", "mirror.upstream.sshUrl", "mirror.upstream.hostKeys"]);
    writeProperties(home, example.join("\n") + "\n"); // following the fix works
    expect(loadConfig(home).ok).toBe(true);
  });

  test("missing home: said so", () => {
    expect(problemsOf(loadConfig("/nonexistent/smart-mirror-home"))[0].message).toContain("the mirror home /nonexistent/smart-mirror-home does not exist");
  });

  test("a malformed line is a problem with its line number, other keys still validated", () => {
    const problems = problemsOf(load({ "setup.baseUrl": "http://x.example.com" }, "setup.sysadmin.displayName=Caf\\u00zz\n"));
    expect(problems.map((p) => [p.key, p.line])).toEqual([
      ["setup.sysadmin.displayName", 6],
      ["setup.baseUrl", 2],
    ]);
  });

  test("not UTF-8: a problem naming the line", () => {
    const home = makeHome({});
    fs.writeFileSync(path.join(home, "shared", "bitbucket.properties"), Buffer.concat([Buffer.from(minimalProperties(hostKey)), Buffer.from([0x6e, 0x3d, 0xe9, 0x0a])]));
    expect(problemsOf(loadConfig(home))).toEqual([expect.objectContaining({ key: "bitbucket.properties", line: 6 })]);
  });

  test("unknown keys are warned with the closest known key; Bitbucket-only keys as ignored; the config stays valid", () => {
    const r = load({}, "mirror.sync.concurency=4\napplication.mode=mirror\nsome.random=1\n");
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    expect(r.config.sync.concurrency).toBe(8); // the typo did not take effect...
    expect(r.warnings).toEqual([
      // ...and says so, with the fix
      expect.objectContaining({ key: "mirror.sync.concurency", line: 6, message: "is not a known key; did you mean mirror.sync.concurrency?", fix: "rename it to mirror.sync.concurrency" }),
      expect.objectContaining({ key: "application.mode", line: 7, message: expect.stringContaining("Bitbucket setting smart-mirror does not use") }),
      expect.objectContaining({ key: "some.random", line: 8, message: "is not a known key; it is ignored" }),
    ]);
  });
});

describe("farm mode (mirror.farm.*)", () => {
  const farmLines = (o: { token?: boolean; serverName?: string; ca?: string } = {}) =>
    "mirror.farm.peersFile=/etc/smart-mirror/farm/peers\n" +
    (o.token === false ? "" : "mirror.farm.tokenFile=shared/secrets/farm-token\n") +
    (o.serverName === undefined ? "mirror.farm.serverName=mirror-syd.example.com\n" : o.serverName === "" ? "" : `mirror.farm.serverName=${o.serverName}\n`) +
    (o.ca ? `mirror.farm.caCertificatesFile=${o.ca}\n` : "");

  test("a peers file with its token and TLS name: farm settings, the node id left to the host name", () => {
    const home = makeHome({ properties: minimalProperties(hostKey) + farmLines() });
    writeSecret(path.join(home, "shared", "secrets", "farm-token"), "0123456789abcdef0123456789abcdef\n");
    const r = loadConfig(home);
    if (!r.ok) throw new Error(JSON.stringify(r.problems, null, 2));
    expect(r.config.farm).toEqual({ peersFile: "/etc/smart-mirror/farm/peers", tokenFile: path.join(home, "shared", "secrets", "farm-token"), serverName: "mirror-syd.example.com", caFile: undefined, nodeId: undefined });
    expect(summarize(r.config, "")).toContain(`farm:         node (host name), peers from /etc/smart-mirror/farm/peers, TLS name mirror-syd.example.com, token file ${path.join(home, "shared", "secrets", "farm-token")}`);
  });

  test("without a peers file there is no farm", () => {
    const r = load({});
    expect(r.ok && r.config.farm).toBeUndefined();
  });

  test("the token and the TLS name are required with a peers file; a URL is not a TLS name", () => {
    expect(problemsOf(load({}, farmLines({ token: false, serverName: "" })))).toEqual([
      expect.objectContaining({ key: "mirror.farm.tokenFile", message: "is required when mirror.farm.peersFile is set (farm mode)", fix: expect.stringContaining("openssl rand -hex 32") }),
      expect.objectContaining({ key: "mirror.farm.serverName", message: "is required when mirror.farm.peersFile is set (farm mode)" }),
    ]);
    const url = problemsOf(load({}, farmLines({ serverName: "https://mirror.example.com" })));
    expect(url).toEqual(expect.arrayContaining([expect.objectContaining({ key: "mirror.farm.serverName", message: "is not a DNS name" })]));
  });

  test("the token file is a secret: missing or loose is refused, naming the fix", () => {
    const home = makeHome({ properties: minimalProperties(hostKey) + farmLines() });
    expect(problemsOf(loadConfig(home))).toEqual([expect.objectContaining({ key: "mirror.farm.tokenFile", message: "file does not exist", fix: expect.stringContaining("the same file on every node") })]);
    writeSecret(path.join(home, "shared", "secrets", "farm-token"), "0123456789abcdef0123456789abcdef\n", 0o644);
    expect(problemsOf(loadConfig(home))).toEqual([expect.objectContaining({ key: "mirror.farm.tokenFile", message: expect.stringContaining("group/others can access") })]);
  });
});
