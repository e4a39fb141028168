/**
 * The farm harness's pure parts: HAProxy's config (checked by the real `haproxy -c`), its
 * `show stat` parser, the drain time read from a daemon log, the peers file.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { runCommand } from "../netnsHost";
import { cleanupAll, tempDir } from "../resources";
import { createCa } from "../tls";
import { drainMs } from "./drainLog";
import { renderPeersFile } from "./farm";
import { addServerCommand, HaproxyConfigInput, parseShowStat, renderHaproxyConfig } from "./haproxyConfig";
import { sample, sampleSum } from "./metricsText";
import { buildNodePlan } from "./nodePlan";
import { HAPROXY_BIN } from "./haproxy";

afterAll(() => cleanupAll());

const input = (over: Partial<HaproxyConfigInput> = {}): HaproxyConfigInput => ({
  bind: { host: "127.0.0.1", port: 18443 },
  nodes: [
    { name: "node1", address: "10.213.7.2", port: 443 },
    { name: "node2", address: "10.213.7.3", port: 443 },
  ],
  serverName: "farm.test",
  caFile: "/tmp/ca.pem",
  checkPath: "/status/ready",
  checkIntervalMs: 200,
  fall: 2,
  rise: 2,
  statsSocket: "/tmp/admin.sock",
  ...over,
});

describe("renderHaproxyConfig", () => {
  test("TCP round-robin, verified HTTPS readiness checks on every node", () => {
    const cfg = renderHaproxyConfig(input());
    expect(cfg).toMatch(/^\s+mode tcp$/m);
    expect(cfg).toMatch(/^\s+balance roundrobin$/m);
    expect(cfg).toMatch(/^\s+http-check send meth GET uri \/status\/ready ver HTTP\/1.1 hdr Host farm.test$/m);
    expect(cfg).toMatch(/^\s+http-check expect status 200$/m);
    expect(cfg).toMatch(/default-server check check-ssl check-sni farm.test verify required ca-file \/tmp\/ca.pem verifyhost farm.test inter 200ms fall 2 rise 2$/m);
    expect(cfg).toMatch(/^\s+server node1 10.213.7.2:443$/m);
    expect(cfg).toMatch(/^\s+server node2 10.213.7.3:443$/m);
    expect(cfg).toMatch(/^\s+bind 127.0.0.1:18443$/m);
  });

  test("the real haproxy accepts the rendered config", async () => {
    const dir = tempDir("haproxy-cfg");
    const ca = await createCa();
    const file = path.join(dir, "haproxy.cfg");
    fs.writeFileSync(file, renderHaproxyConfig(input({ caFile: ca.certPath, statsSocket: path.join(dir, "admin.sock") })));
    const r = await runCommand(HAPROXY_BIN, ["-c", "-f", file]);
    expect({ code: r.code, out: r.stdout + r.stderr }).toEqual({ code: 0, out: expect.stringContaining("Configuration file is valid") });
  });

  test("bad input is refused with the field named", () => {
    expect(() => renderHaproxyConfig(input({ nodes: [] }))).toThrow(/at least one node/);
    expect(() => renderHaproxyConfig(input({ nodes: [{ name: "a b", address: "10.0.0.1", port: 443 }] }))).toThrow(/server name/);
    expect(() => renderHaproxyConfig(input({ nodes: [input().nodes[0], input().nodes[0]] }))).toThrow(/used twice/);
    expect(() => renderHaproxyConfig(input({ checkPath: "status" }))).toThrow(/checkPath/);
    expect(() => renderHaproxyConfig(input({ fall: 0 }))).toThrow(/fall/);
    expect(() => renderHaproxyConfig(input({ serverName: "farm test" }))).toThrow(/serverName/);
  });
});

test("parseShowStat reads the backend's servers", () => {
  const csv = [
    "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,status",
    "farm,FRONTEND,,,0,3,4096,12,0,0,OPEN",
    "nodes,node1,0,0,1,2,,7,0,0,UP",
    "nodes,node2,0,0,0,0,,0,0,0,DOWN 1/2",
    "nodes,BACKEND,0,0,1,2,,7,0,0,UP",
    "",
  ].join("\n");
  expect(parseShowStat(csv)).toEqual([
    { name: "node1", status: "UP", sessionsTotal: 7, sessionsNow: 1 },
    { name: "node2", status: "DOWN 1/2", sessionsTotal: 0, sessionsNow: 0 },
  ]);
  expect(() => parseShowStat("Unknown command\n")).toThrow(/not HAProxy show stat/);
});

describe("drainMs", () => {
  const line = (time: string, msg: string) => JSON.stringify({ level: 30, time, msg });
  test("from the first drain/stop line to the following stopped line", () => {
    const log = [line("2026-12-03T07:00:00.000Z", "serving"), line("2026-12-03T07:00:01.000Z", "draining: readiness is 503"), line("2026-12-03T07:00:02.000Z", "stopping: draining running syncs"), line("2026-12-03T07:00:03.250Z", "stopped"), "not json"].join("\n");
    expect(drainMs(log)).toBe(2250);
  });
  test("undefined without a start or an end", () => {
    expect(drainMs(line("2026-12-03T07:00:00.000Z", "stopped"))).toBeUndefined();
    expect(drainMs(line("2026-12-03T07:00:00.000Z", "stopping: draining running syncs"))).toBeUndefined();
  });
});

test("renderPeersFile lists every node's base URL", () => {
  expect(renderPeersFile(["10.213.7.2", "10.213.7.3"])).toBe("https://10.213.7.2\nhttps://10.213.7.3\n");
});

test("sample reads one series of an exposition by exact labels", () => {
  const text = ['# TYPE x counter', 'x{source="peer"} 8400000', 'x{source="primary"} 12', "y 3", 'z{a="1",b="2"} 5'].join("\n");
  expect(sample(text, "x", { source: "peer" })).toBe(8400000);
  expect(sample(text, "x", { source: "primary" })).toBe(12);
  expect(sample(text, "y")).toBe(3);
  expect(sample(text, "z", { b: "2", a: "1" })).toBe(5);
  expect(sample(text, "x")).toBeUndefined();
  expect(sample(text, "w")).toBeUndefined();
  expect(sampleSum(text, "x")).toBe(8400012);
  expect(sampleSum(text, "w")).toBe(0);
});

test("addServerCommand adds a server forced down in one command line", () => {
  const cmd = addServerCommand(input(), { name: "node4", address: "10.213.7.5", port: 443 });
  expect(cmd.split("; ")).toEqual([
    "add server nodes/node4 10.213.7.5:443 check check-ssl check-sni farm.test verify required ca-file /tmp/ca.pem verifyhost farm.test inter 200ms fall 2 rise 2",
    "enable health nodes/node4",
    "enable server nodes/node4",
    "set server nodes/node4 health down",
  ]);
  expect(() => addServerCommand(input(), { name: "x;y", address: "10.0.0.1", port: 443 })).toThrow(/server name/);
});

describe("buildNodePlan", () => {
  const plan = () =>
    buildNodePlan({
      root: "/tmp/node1",
      address: "10.213.7.2",
      identity: { serverName: "farm.test", primarySshBase: "ssh://git@10.213.7.1:7999", primaryHostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHn0cm9vdGtleWZvcnRlc3Rpbmdvbmx5MDAwMDAwMDAw", repos: ["PROJ/app"] },
      secrets: { mirrorPrivateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n", mirrorPublicKey: "ssh-ed25519 AAAA x", webhookSecret: "w", tlsChainPem: "CHAIN", tlsKeyPem: "KEY" },
      settings: { syncInterval: "2m", extra: { "mirror.drain.quietPeriod": "2s" } },
      bundle: "/tmp/node1/stage/smart-mirror.js",
      extraFiles: [
        { path: "/var/lib/smart-mirror/shared/secrets/farm-token", content: "t\n", secret: true },
        { path: "/etc/smart-mirror/farm/extra.conf", content: "x\n" },
      ],
    });
  const text = (p: ReturnType<typeof plan>, file: string) => Buffer.from(p.files.find((f) => f.path === file)?.contentBase64 ?? "", "base64").toString("utf8");

  test("the node's settings in its properties, nginx on its own address, the bundle from the stage", () => {
    const p = plan();
    const props = text(p, "/var/lib/smart-mirror/shared/bitbucket.properties");
    expect(props).toMatch(/^plugin\.mirroring\.synchronization\.interval=2m$/m);
    expect(props).toMatch(/^mirror\.drain\.quietPeriod=2s$/m);
    expect(props).toMatch(/^mirror\.serve\.listen=unix:\/tmp\/node1\/var\/lib\/smart-mirror\/run\/smart-mirror\.sock$/m);
    expect(text(p, "/etc/nginx/conf.d/smart-mirror.conf")).toMatch(/listen 10\.213\.7\.2:443 ssl/);
    expect(p.files.find((f) => f.path === "/opt/smart-mirror/smart-mirror.js")?.sourcePath).toBe("/tmp/node1/stage/smart-mirror.js");
  });

  test("farm files: secrets 0600 and marked secret; a file outside the watched home restarts the daemon too", () => {
    const p = plan();
    expect(p.files.find((f) => f.path.endsWith("/farm-token"))).toMatchObject({ mode: 0o600, secret: true, owner: "smart-mirror" });
    const watches = p.services.find((s) => s.unit === "smart-mirror.service")?.watches ?? [];
    expect(watches).toContain("/etc/smart-mirror/farm/extra.conf");
    expect(watches).not.toContain("/var/lib/smart-mirror/shared/secrets/farm-token");
  });
});
