import * as fs from "node:fs";
import * as path from "node:path";
import { NetnsHost, runCommand, startNetnsHost } from "./netnsHost";
import { netnsPrefix, tempDir } from "./resources";

const linkPrefix = `smh${process.pid.toString(36)}-`;

async function namespaces(): Promise<string[]> {
  const r = await runCommand("ip", ["netns", "list"]);
  return r.stdout.split("\n").map((l) => l.split(" ")[0]).filter(Boolean);
}

async function ourLinks(): Promise<string[]> {
  const r = await runCommand("ip", ["-o", "link", "show"]);
  return r.stdout
    .split("\n")
    .map((l) => /^\d+:\s+([^@:]+)/.exec(l)?.[1])
    .filter((n): n is string => !!n && n.startsWith(linkPrefix));
}

describe("netns host", () => {
  let a: NetnsHost;
  let b: NetnsHost;

  beforeAll(async () => {
    [a, b] = await Promise.all([startNetnsHost("alpha"), startNetnsHost("beta")]);
  });

  test("lives in its own namespace with the run's prefix and its own addresses", async () => {
    expect(a.ns.startsWith(netnsPrefix())).toBe(true);
    expect(await namespaces()).toEqual(expect.arrayContaining([a.ns, b.ns]));
    expect(a.address).not.toBe(b.address);
    const r = await a.exec("ip", ["-4", "-o", "addr", "show"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`inet ${a.address}/24`);
    expect(r.stdout).toContain("inet 127.0.0.1/8"); // loopback is up inside
    expect(r.stdout).not.toContain(b.address);
    expect(r.stdout).not.toContain(a.gatewayAddress); // the root side is elsewhere
    const fail = await a.exec("sh", ["-c", "echo out; echo err >&2; exit 7"]);
    expect(fail).toEqual({ code: 7, stdout: "out\n", stderr: "err\n" });
  });

  test("is reachable over real SSH as root with the pinned host key", async () => {
    const t0 = Date.now();
    const r = await a.ssh("id -u; ip -4 -o addr show dev eth0");
    const ms = Date.now() - t0;
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const [uid, addr] = r.stdout.split("\n");
    expect(uid).toBe("0");
    expect(addr).toContain(`inet ${a.address}/24`);
    // Reported, not asserted: SSH session set-up cost into a namespace host.
    const times: number[] = [ms];
    for (let i = 0; i < 4; i++) {
      const s = Date.now();
      expect((await a.ssh("true")).code).toBe(0);
      times.push(Date.now() - s);
    }
    console.log(`[netnsHost] ssh round trips (ms): ${times.join(", ")}`);
  });

  test("refuses a host whose key does not match the pin", async () => {
    const dir = tempDir("wrongkey");
    const key = path.join(dir, "k");
    expect((await runCommand("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key])).code).toBe(0);
    const wrong = fs.readFileSync(`${key}.pub`, "utf8").split(" ").slice(0, 2).join(" ");
    const r = await a.ssh("echo should-not-run", { knownHostsLine: `${a.address} ${wrong}` });
    expect(r.code).toBe(255);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/Host key verification failed/);
    // The same pin machinery with the right key works (so the failure above is the key).
    expect((await a.ssh("true", { knownHostsLine: a.knownHostsLine })).code).toBe(0);
  });

  test("refuses a client key that is not authorized", async () => {
    const dir = tempDir("otherclient");
    const key = path.join(dir, "k");
    await runCommand("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key]);
    const opts = a.sshOptions().map((o) => (o === a.clientKeyPath ? key : o));
    const r = await runCommand("ssh", [...opts, `root@${a.address}`, "true"]);
    expect(r.code).toBe(255);
    expect(r.stderr).toMatch(/Permission denied/);
    a.authorizeKey(fs.readFileSync(`${key}.pub`, "utf8"));
    expect((await runCommand("ssh", [...opts, `root@${a.address}`, "true"])).code).toBe(0);
  });

  test("two hosts reach each other over the bridge (SSH from alpha into beta)", async () => {
    const r = await a.exec("ssh", [...b.sshOptions(), `root@${b.address}`, "ip -4 -o addr show dev eth0"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`inet ${b.address}/24`);
  });

  test("the host reaches a server in the root namespace via gatewayAddress", async () => {
    const net = await import("node:net");
    const srv = net.createServer((s) => s.end("hello from root ns\n"));
    await new Promise<void>((r) => srv.listen(0, a.gatewayAddress, r));
    const port = (srv.address() as { port: number }).port;
    try {
      const r = await a.exec("bash", ["-c", `exec 3<>/dev/tcp/${a.gatewayAddress}/${port}; cat <&3`]);
      expect(r.stdout).toBe("hello from root ns\n");
    } finally {
      srv.close();
    }
  });

  test("setReachable(false) cuts the host off until setReachable(true)", async () => {
    const net = await import("node:net");
    const connects = () =>
      new Promise<boolean>((resolve) => {
        const s = net.connect({ host: b.address, port: 22, timeout: 1000 });
        s.once("connect", () => (s.destroy(), resolve(true)));
        s.once("timeout", () => (s.destroy(), resolve(false)));
        s.once("error", () => resolve(false));
      });
    expect(await connects()).toBe(true);
    await b.setReachable(false);
    expect(await connects()).toBe(false);
    await b.setReachable(true);
    expect((await b.ssh("true")).code).toBe(0);
  });

  test("stop() kills everything inside, deletes the namespace, and the bridge with the last host", async () => {
    const c = await startNetnsHost("gamma");
    const pidFile = path.join(c.dir, "sshd.pid");
    const sshdPid = Number(fs.readFileSync(pidFile, "utf8").trim());
    // A stray process started inside the namespace some other way must die too.
    const stray = c.spawn("sleep", ["300"]);
    await new Promise((r) => setTimeout(r, 100));
    const nsPids = (await runCommand("ip", ["netns", "pids", c.ns])).stdout.split("\n").filter(Boolean).map(Number);
    expect(nsPids).toEqual(expect.arrayContaining([sshdPid, stray.child.pid]));

    await c.stop();
    expect(await namespaces()).not.toContain(c.ns);
    for (const pid of nsPids) expect(fs.existsSync(`/proc/${pid}`)).toBe(false);
    expect((await ourLinks()).length).toBeGreaterThan(0); // alpha and beta still use the bridge

    await Promise.all([a.stop(), b.stop()]);
    expect(await namespaces()).not.toEqual(expect.arrayContaining([a.ns]));
    expect(await namespaces()).not.toContain(b.ns);
    expect(await ourLinks()).toEqual([]);
    await c.stop(); // idempotent
  });
});
