/**
 * The shipped Prometheus rules: valid (`promtool check rules`) and doing what their comments
 * say (`promtool test rules`, the unit tests beside them). promtool comes with Debian's
 * prometheus package (.ci/run installs it).
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

const PROMTOOL = "/usr/bin/promtool";
const DIR = path.resolve(__dirname, "../../ops/prometheus");

function promtool(args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(PROMTOOL, args, { cwd: DIR }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, output: `${stdout}${stderr}` });
    });
  });
}

describe("Prometheus alert rules", () => {
  beforeAll(() => {
    if (!fs.existsSync(PROMTOOL)) throw new Error(`${PROMTOOL} is missing: install Debian's prometheus package (apt-get install --no-install-recommends prometheus)`);
  });

  test("promtool check rules", async () => {
    const r = await promtool(["check", "rules", "smart-mirror.rules.yml"]);
    expect(r.output).toMatch(/SUCCESS: \d+ rules found/);
    expect(r.code).toBe(0);
  });

  test("promtool test rules: every alert fires past its `for` and not before", async () => {
    const r = await promtool(["test", "rules", "smart-mirror.rules.test.yml"]);
    expect(r.output).toContain("SUCCESS");
    expect(r.code).toBe(0);
    // Every alert of the rules file has at least one test case.
    const rules = fs.readFileSync(path.join(DIR, "smart-mirror.rules.yml"), "utf8");
    const tests = fs.readFileSync(path.join(DIR, "smart-mirror.rules.test.yml"), "utf8");
    const alerts = [...rules.matchAll(/^\s*- alert: (\S+)$/gm)].map((m) => m[1]);
    expect(alerts.length).toBeGreaterThan(10);
    const untested = alerts.filter((a) => !new RegExp(`alertname: ${a}$`, "m").test(tests));
    expect(untested).toEqual([]);
  });
});
