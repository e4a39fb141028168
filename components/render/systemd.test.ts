/**
 * The daemon's systemd unit: snapshots, the directives that matter asserted one by one,
 * argument validation, and the real systemd tools: `systemd-analyze verify` (syntax, known
 * keys, executable ExecStart) and `systemd-analyze security` (exposure score).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { runProcess } from "../../sync/agent/runProcess";
import { tempDir } from "../../testbed/resources";
import { DaemonUnitArgs, drainTimeoutSecOf, renderDaemonUnit, UnitArgsError, validateDaemonUnitArgs } from "./systemd";

const base: DaemonUnitArgs = { user: "smart-mirror", home: "/var/lib/smart-mirror", bundlePath: "/opt/smart-mirror/smart-mirror.js" };

/** [Service] key=value pairs (repeated keys kept in order). */
function directives(unit: string): Array<[string, string]> {
  return unit
    .split("\n")
    .filter((l) => /^[A-Za-z]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]);
}
const get = (unit: string, key: string) => directives(unit).filter(([k]) => k === key).map(([, v]) => v);

describe("renderDaemonUnit", () => {
  test("default unit (snapshot)", () => {
    expect(renderDaemonUnit(base)).toMatchSnapshot();
  });

  test("home under /home, extra writable path, memory cap (snapshot)", () => {
    expect(renderDaemonUnit({ ...base, home: "/home/mirror", extraReadWritePaths: ["/srv/git"], memoryMax: "4G", group: "mirror", nodePath: "/usr/local/bin/node", restartSec: 10, drainTimeoutSec: 20, timeoutStopSec: 60 })).toMatchSnapshot();
  });

  test("the directives the design requires", () => {
    const u = renderDaemonUnit(base);
    const want: Record<string, string> = {
      Type: "simple",
      ExecStart: "/usr/bin/node /opt/smart-mirror/smart-mirror.js run --home /var/lib/smart-mirror",
      User: "smart-mirror",
      Group: "smart-mirror",
      Restart: "on-failure",
      RestartSec: "5s",
      NoNewPrivileges: "yes",
      ProtectSystem: "strict",
      ProtectHome: "yes",
      ReadWritePaths: "/var/lib/smart-mirror",
      PrivateTmp: "yes",
      PrivateDevices: "yes",
      ProtectKernelTunables: "yes",
      ProtectKernelModules: "yes",
      ProtectControlGroups: "yes",
      RestrictAddressFamilies: "AF_UNIX AF_INET AF_INET6",
      RestrictNamespaces: "yes",
      LockPersonality: "yes",
      MemoryDenyWriteExecute: "no",
      CapabilityBoundingSet: "",
      UMask: "0027",
      LimitNOFILE: "65536",
      KillMode: "mixed",
      Environment: "NODE_ENV=production",
      After: "network-online.target",
    };
    for (const [k, v] of Object.entries(want)) expect([k, get(u, k)]).toEqual([k, [v]]);
    expect(get(u, "SystemCallFilter")[0]).toBe("@system-service");
    expect(get(u, "MemoryMax")).toEqual([]);
    // Longer than the daemon's drain (mirror.drain.timeout, 5 min by default) plus its 30 s stop,
    // so systemd never kills a draining daemon (and cuts the clones it lets finish).
    expect(get(u, "TimeoutStopSec")).toEqual(["340s"]);
    expect(get(renderDaemonUnit({ ...base, drainTimeoutSec: 1800 }), "TimeoutStopSec")).toEqual(["1840s"]);
    // From the properties the daemon gets (mirror.extraProperties): the same bound.
    expect(drainTimeoutSecOf({ "mirror.drain.timeout": "30m" })).toBe(1800);
    expect(drainTimeoutSecOf({ "mirror.drain.timeout": "1500ms" })).toBe(2);
    expect(drainTimeoutSecOf({})).toBeUndefined();
    expect(drainTimeoutSecOf(undefined)).toBeUndefined();
  });

  test("the metadata service is out of reach (the user data holds the host's SSH key), and the home's mount is required", () => {
    const u = renderDaemonUnit(base);
    // systemd: an address in IPAddressAllow= is granted before IPAddressDeny= is consulted, and
    // anything in neither list is granted: a deny list alone blocks exactly these addresses.
    expect(get(u, "IPAddressDeny")).toEqual(["169.254.169.254 fd00:ec2::254"]);
    expect(get(u, "IPAddressAllow")).toEqual([]);
    // With the data volume missing (fstab nofail), the daemon must not start on the root disk.
    expect(get(u, "RequiresMountsFor")).toEqual(["/var/lib/smart-mirror"]);
    expect(get(renderDaemonUnit({ ...base, home: "/srv/mirror" }), "RequiresMountsFor")).toEqual(["/srv/mirror"]);
  });

  test("a home under /home is hidden by ProtectHome=yes, so it is bound back into a tmpfs", () => {
    const u = renderDaemonUnit({ ...base, home: "/home/mirror" });
    expect(get(u, "ProtectHome")).toEqual(["tmpfs"]);
    expect(get(u, "BindPaths")).toEqual(["/home/mirror"]);
    expect(get(u, "ReadWritePaths")).toEqual(["/home/mirror"]);
  });

  test.each<[string, Partial<DaemonUnitArgs>, RegExp]>([
    ["relative home", { home: "var/lib/smart-mirror" }, /home must be an absolute path .* e\.g\. "\/var\/lib\/smart-mirror"/],
    ["space in the bundle path", { bundlePath: "/opt/smart mirror/x.js" }, /bundlePath .* contains a space, quote, %, \$.*choose a plain path/],
    ["% in a path (a systemd specifier)", { home: "/var/lib/%h" }, /home .* contains/],
    ["unnormalized path", { extraReadWritePaths: ["/srv/../etc"] }, /extraReadWritePaths\[0\] .* must be normalized/],
    ["root user", { user: "root" }, /user must not be "root".*use a system account such as "smart-mirror"/],
    ["bad user name", { user: "Smart Mirror" }, /user "Smart Mirror" must be a system account name/],
    ["home is /", { home: "/" }, /home must not be "\/"/],
    ["stop timeout shorter than the drain", { timeoutStopSec: 15 }, /timeoutStopSec \(15\) must exceed the daemon's longest stop \(330 s: mirror\.drain\.timeout 300 s of draining \+ 30 s of stopping\) .* use at least 340/],
    ["stop timeout shorter than a custom drain", { drainTimeoutSec: 600, timeoutStopSec: 340 }, /timeoutStopSec \(340\) must exceed the daemon's longest stop \(630 s.* use at least 640/],
    ["bad drain timeout", { drainTimeoutSec: 0 }, /drainTimeoutSec must be a positive whole number/],
    ["bad memory cap", { memoryMax: "4 gigs" }, /memoryMax "4 gigs" must be bytes .* \(e\.g\. "4G"\)/],
    ["small fd limit", { limitNofile: 256 }, /limitNofile must be a whole number >= 1024/],
  ])("rejects %s with the fix", (_n, over, msg) => {
    const args = { ...base, ...over };
    expect(validateDaemonUnitArgs(args).join("\n")).toMatch(msg);
    expect(() => renderDaemonUnit(args)).toThrow(UnitArgsError);
  });
});

describe("systemd-analyze on the rendered unit", () => {
  /** A unit file named like the real one in a temp dir; ExecStart points at real files. */
  function writeUnit(text: string): string {
    const dir = tempDir("systemd-unit");
    const file = path.join(dir, "smart-mirror.service");
    fs.writeFileSync(file, text);
    return file;
  }
  const realArgs = (): DaemonUnitArgs => {
    const dir = tempDir("systemd-bundle");
    const bundle = path.join(dir, "smart-mirror.js");
    fs.writeFileSync(bundle, "// bundle\n");
    // The service user need not exist: verify does not resolve User= (checked: no output).
    return { user: "smart-mirror", home: "/var/lib/smart-mirror", bundlePath: bundle, nodePath: fs.realpathSync("/usr/bin/node") };
  };

  test("verify: no output at all (any warning fails the test)", async () => {
    for (const extra of [{}, { home: "/home/mirror", extraReadWritePaths: ["/srv/git"], memoryMax: "2G" }]) {
      const file = writeUnit(renderDaemonUnit({ ...realArgs(), ...extra }));
      const r = await runProcess(["systemd-analyze", "verify", "--man=no", file]);
      expect({ code: r.code, out: (r.stdout + r.stderr).trim() }).toEqual({ code: 0, out: "" });
    }
  });

  test("verify would catch a broken unit (the check above can fail)", async () => {
    const text = renderDaemonUnit(realArgs()).replace("ProtectSystem=strict", "ProtectSystem=strickt").replace("/usr/bin/node", "/usr/bin/no-such-node");
    const r = await runProcess(["systemd-analyze", "verify", "--man=no", writeUnit(text.replace("NoNewPrivileges=yes", "NoNewPrivileges=yes\nNoSuchKey=1"))]);
    const out = r.stdout + r.stderr;
    expect(out).toMatch(/Unknown key 'NoSuchKey'/);
    expect(out).toMatch(/strickt/);
    expect(out).toMatch(/no-such-node is not executable/);
    expect(r.code).not.toBe(0);
  });

  test("security: exposure at most 2.0 (\"OK\"); an unhardened unit of the same command fails that bar", async () => {
    const args = realArgs();
    const hardened = await runProcess(["systemd-analyze", "security", "--offline=true", "--threshold=20", "--no-pager", writeUnit(renderDaemonUnit(args))]);
    const score = /Overall exposure level for smart-mirror\.service: ([\d.]+)/.exec(hardened.stdout + hardened.stderr);
    expect(score).not.toBeNull();
    expect(Number(score?.[1])).toBeLessThanOrEqual(2.0);
    expect(hardened.code).toBe(0);

    const bare = `[Service]\nUser=smart-mirror\nExecStart=${args.nodePath} ${args.bundlePath} run --home /var/lib/smart-mirror\n`;
    const r = await runProcess(["systemd-analyze", "security", "--offline=true", "--threshold=20", "--no-pager", writeUnit(bare)]);
    expect(r.code).not.toBe(0);
  });
});
