/**
 * The CLI shell (service-manager choice, summary on stdout also on failure) and the systemctl
 * manager's command lines, recorded by a stand-in systemctl (systemd is not PID 1 here).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { tempDir } from "../../testbed/resources";
import { textSink } from "../../testbed/textSink";
import { applyPlan } from "./apply";
import { chooseServiceManager, runApplyCli } from "./cli";
import { Plan, PLAN_VERSION } from "./plan";
import { systemctlManager } from "./serviceManager";

const b64 = (s: string) => Buffer.from(s).toString("base64");

const sink = textSink;

describe("chooseServiceManager", () => {
  test.each<[string, string | undefined, string | RegExp]>([
    ["/", undefined, "systemctl"],
    ["/tmp/root", undefined, "exec"],
    ["/", "exec", "exec"],
    ["/tmp/root", "systemctl", /cannot be combined with --root \/tmp\/root: .* use --services exec/],
    ["/", "runit", /--services must be one of systemctl, exec/],
  ])("root %s, --services %s -> %s", (root, requested, want) => {
    if (typeof want === "string") expect(chooseServiceManager(root, requested)).toBe(want);
    else expect(() => chooseServiceManager(root, requested)).toThrow(want);
  });
});

describe("runApplyCli", () => {
  test("a failed check prints the summary (ok: false) on stdout and the reason on stderr; warns about a readable plan with secrets", async () => {
    const root = tempDir("cli-root");
    const plan: Plan = {
      version: PLAN_VERSION,
      users: [],
      dirs: [],
      files: [
        { path: "/etc/app.conf", contentBase64: b64("x\n"), mode: 0o644 },
        { path: "/etc/app.key", contentBase64: b64("k\n"), mode: 0o600, secret: true },
      ],
      services: [],
      validate: [{ argv: ["/bin/sh", "-c", "echo 'app.conf: line 1: nonsense' >&2; exit 2"], when: ["/etc/app.conf"] }],
    };
    const planFile = path.join(tempDir("cli-plan"), "plan.json");
    fs.writeFileSync(planFile, JSON.stringify(plan), { mode: 0o644 });
    const out = sink();
    const err = sink();
    const code = await runApplyCli({ plan: planFile, root }, out.stream, err.stream);
    expect(code).toBe(1);
    const summary = JSON.parse(out.text());
    expect(summary).toMatchObject({ ok: false, rolledBack: ["/etc/app.key", "/etc/app.conf"], changed: ["/etc/app.conf", "/etc/app.key"] });
    expect(err.text()).toMatch(/warning: .*plan\.json holds secrets but is readable by group or others/);
    expect(err.text()).toMatch(/check failed: `\/bin\/sh -c .*` exited 2:\napp\.conf: line 1: nonsense/);
    expect(fs.existsSync(`${root}/etc/app.conf`)).toBe(false);
  });
});

describe("systemctlManager", () => {
  test("first deploy: state queries, then daemon-reload, enable, start, in that order", async () => {
    const dir = tempDir("fake-systemctl");
    const calls = path.join(dir, "calls");
    const fake = path.join(dir, "systemctl");
    // is-active/is-enabled answer "no" (exit 3/1), like systemctl for a unit never started.
    fs.writeFileSync(fake, `#!/bin/sh\necho "$*" >> ${calls}\ncase "$1" in is-active) exit 3;; is-enabled) exit 1;; esac\nexit 0\n`, { mode: 0o755 });
    const root = tempDir("systemctl-root");
    const plan: Plan = {
      version: PLAN_VERSION,
      users: [],
      dirs: [],
      files: [{ path: "/etc/systemd/system/smart-mirror.service", contentBase64: b64("[Service]\nExecStart=/bin/true\n"), mode: 0o644 }],
      services: [{ unit: "smart-mirror.service", watches: [], enable: true }],
    };
    const s = await applyPlan(plan, { root, services: systemctlManager(fake) });
    expect(s).toMatchObject({ daemonReload: true, enabled: ["smart-mirror.service"], started: ["smart-mirror.service"] });
    expect(fs.readFileSync(calls, "utf8").trim().split("\n")).toEqual([
      "is-active --quiet smart-mirror.service",
      "is-enabled --quiet smart-mirror.service",
      "daemon-reload",
      "enable smart-mirror.service",
      "start smart-mirror.service",
    ]);
  });

  test("a failing systemctl names the unit and where to look", async () => {
    const dir = tempDir("fake-systemctl");
    const fake = path.join(dir, "systemctl");
    fs.writeFileSync(fake, `#!/bin/sh\necho "Job for $2 failed because the control process exited with error code." >&2\nexit 1\n`, { mode: 0o755 });
    await expect(systemctlManager(fake).restart("nginx.service")).rejects.toThrow(/nginx\.service did not restart; see `systemctl status nginx\.service` and `journalctl -u nginx\.service`: `.*systemctl restart nginx\.service` exited 1:\nJob for nginx\.service failed/);
  });
});
