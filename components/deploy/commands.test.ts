/**
 * The deploy's shell commands, run for real by bash with hostile paths: the arguments arrive
 * byte for byte, the plan is made private and deleted whatever apply's outcome, the exit code
 * is apply's, and a stage directory someone else owns is refused.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { runProcess } from "../../sync/agent/runProcess";
import { tempDir } from "../../testbed/resources";
import { remoteApplyCommand, remoteStageCommand, shellQuote, stagedPaths } from "./commands";

/** A stand-in for node: records its argv (one per line) and exits with $FAKE_EXIT. */
function fakeNode(dir: string): { bin: string; argvFile: string } {
  const argvFile = path.join(dir, "argv.txt");
  const bin = path.join(dir, "fake node's bin");
  fs.writeFileSync(bin, `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a"; done > ${shellQuote(argvFile)}\nexit "\${FAKE_EXIT:-0}"\n`, { mode: 0o755 });
  return { bin, argvFile };
}

const bash = (cmd: string, env: NodeJS.ProcessEnv = {}) => runProcess(["bash", "-c", cmd], { env: { ...process.env, ...env } });

describe("remoteApplyCommand", () => {
  test("arguments arrive intact, the plan is chmod 0600 during apply and deleted after", async () => {
    const dir = tempDir("deploy cmd $x 'q'");
    const { bin, argvFile } = fakeNode(dir);
    const { bundlePath, planPath } = stagedPaths(path.join(dir, "stage; rm -rf ~"));
    fs.mkdirSync(path.dirname(planPath));
    fs.writeFileSync(planPath, "{}", { mode: 0o644 });
    const root = path.join(dir, "root `date`");
    const cmd = remoteApplyCommand({ nodePath: bin, bundlePath, planPath, root, services: "exec" });
    // Record the plan's mode right after apply ran, before the command deletes it.
    const r = await bash(`${cmd.replace(/\n(rc=\$\?)/, `\nstat -c %a -- ${shellQuote(planPath)} > ${shellQuote(path.join(dir, "mode"))}\n$1`)}`);
    expect(r.code).toBe(0);
    expect(fs.readFileSync(argvFile, "utf8").split("\n").filter(Boolean)).toEqual([bundlePath, "apply", "--plan", planPath, "--root", root, "--services", "exec"]);
    expect(fs.readFileSync(path.join(dir, "mode"), "utf8").trim()).toBe("600");
    expect(fs.existsSync(planPath)).toBe(false);
  });

  test("apply's exit code is the command's, and the plan is deleted on failure too", async () => {
    const dir = tempDir("deploy-cmd");
    const { bin } = fakeNode(dir);
    const planPath = path.join(dir, "plan.json");
    fs.writeFileSync(planPath, "{}");
    const r = await bash(remoteApplyCommand({ nodePath: bin, bundlePath: "/b.js", planPath }), { FAKE_EXIT: "3" });
    expect(r.code).toBe(3);
    expect(fs.existsSync(planPath)).toBe(false);
  });

  test("keepPlan leaves it in place, mode 0600", async () => {
    const dir = tempDir("deploy-cmd");
    const { bin, argvFile } = fakeNode(dir);
    const planPath = path.join(dir, "plan.json");
    fs.writeFileSync(planPath, "{}", { mode: 0o664 });
    const r = await bash(remoteApplyCommand({ nodePath: bin, bundlePath: "/b.js", planPath, keepPlan: true, dryRun: true }));
    expect(r.code).toBe(0);
    expect(fs.statSync(planPath).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(argvFile, "utf8")).toContain("--dry-run");
  });

  test("relative paths are refused; sudo prefixes the privileged steps", () => {
    expect(() => remoteApplyCommand({ bundlePath: "smart-mirror.js", planPath: "/p" })).toThrow(/bundlePath must be an absolute path on the host/);
    const cmd = remoteApplyCommand({ bundlePath: "/s/smart-mirror.js", planPath: "/s/plan.json", sudo: true });
    expect(cmd).toContain("sudo -n /usr/bin/node /s/smart-mirror.js apply --plan /s/plan.json");
    expect(cmd).toContain("sudo -n rm -f -- /s/plan.json");
  });
});

describe("remoteStageCommand", () => {
  test("makes a private directory, and is idempotent", async () => {
    const stage = path.join(tempDir("deploy-stage"), "a dir", "stage");
    for (let i = 0; i < 2; i++) {
      const r = await bash(remoteStageCommand({ stageDir: stage }));
      expect({ code: r.code, err: r.stderr }).toEqual({ code: 0, err: "" });
    }
    expect(fs.statSync(stage).mode & 0o777).toBe(0o700);
  });

  test("refuses a directory someone else owns (they could read or swap the plan)", async () => {
    if (process.geteuid?.() !== 0) return; // needs chown to another user
    const stage = path.join(tempDir("deploy-stage"), "stage");
    fs.mkdirSync(stage, { mode: 0o777 });
    fs.chownSync(stage, 65534, 65534);
    const r = await bash(remoteStageCommand({ stageDir: stage }));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is owned by someone else; remove it/);
  });
});
