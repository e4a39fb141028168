/**
 * Plans are checked before anything is touched; each problem names its field and the fix.
 */
import { Plan, PLAN_VERSION } from "./plan";
import { parsePlan, PlanError } from "./planSchema";

const good = (): Plan => ({
  version: PLAN_VERSION,
  groups: [{ name: "smart-mirror", members: ["www-data"] }],
  users: [{ name: "smart-mirror", home: "/var/lib/smart-mirror" }],
  dirs: [{ path: "/var/lib/smart-mirror/shared", mode: 0o750, owner: "smart-mirror" }],
  files: [
    { path: "/var/lib/smart-mirror/shared/bitbucket.properties", contentBase64: Buffer.from("a=b\n").toString("base64"), mode: 0o640, group: "smart-mirror" },
    { path: "/var/lib/smart-mirror/shared/ssh/id_ed25519", contentBase64: "", mode: 0o600, owner: "smart-mirror", secret: true },
    { path: "/opt/smart-mirror/smart-mirror.js", sourcePath: "/var/tmp/stage/smart-mirror.js", mode: 0o644 },
  ],
  services: [{ unit: "smart-mirror.service", watches: ["/var/lib/smart-mirror/shared", "/opt/smart-mirror/smart-mirror.js"], enable: true }],
  validate: [{ argv: ["/usr/sbin/nginx", "-t"], when: ["/var/lib/smart-mirror/shared/bitbucket.properties"] }],
});

function problems(plan: unknown): string[] {
  try {
    parsePlan(JSON.stringify(plan));
  } catch (e) {
    if (e instanceof PlanError) return e.problems;
    throw e;
  }
  return [];
}

describe("parsePlan", () => {
  test("a good plan parses; modes may be octal strings", () => {
    const p = good() as unknown as { dirs: Array<{ mode: unknown }> };
    p.dirs[0].mode = "0750";
    const plan = parsePlan(JSON.stringify(p));
    expect(plan.dirs[0].mode).toBe(0o750);
    expect(plan.files).toHaveLength(3);
  });

  test.each<[string, (p: Plan) => void, RegExp]>([
    ["wrong version", (p) => ((p as { version: number }).version = 2), /plan\.version: must be 1/],
    ["relative path", (p) => (p.dirs[0].path = "var/lib/x"), /plan\.dirs\[0\]\.path: path "var\/lib\/x" must be absolute, e\.g\. "\/var\/lib\/x"/],
    ["unnormalized path", (p) => (p.dirs[0].path = "/var/lib/../x/"), /must be normalized .* write "\/var\/x"/],
    ["bad account name", (p) => (p.users[0].name = "Smart Mirror"), /plan\.users\[0\]\.name: must match/],
    ["root as service user", (p) => (p.users[0].name = "root"), /"root" is not a service account/],
    ["bad octal string", (p) => ((p.dirs[0] as { mode: unknown }).mode = "0999"), /octal string like "0640"/],
    ["readable secret", (p) => (p.files[1].mode = 0o640), /plan\.files\[1\]\.mode: secret file .* mode 0640, which lets group or others read it; use "0600"/],
    ["both content and source", (p) => (p.files[2].contentBase64 = ""), /exactly one of contentBase64 .* and sourcePath/],
    ["not base64", (p) => (p.files[0].contentBase64 = "not base64!"), /must be standard base64/],
    ["duplicate path", (p) => (p.dirs[0].path = p.files[0].path), /is also plan\.dirs\[0\]; list each path once/],
    ["file with a path inside it", (p) => p.dirs.push({ path: "/opt/smart-mirror/smart-mirror.js/x", mode: 0o755 }), /is inside \/opt\/smart-mirror\/smart-mirror\.js, which is a file/],
    ["watch on nothing", (p) => (p.services[0].watches = ["/etc/nginx/nginx.conf"]), /watches\[0\]: \/etc\/nginx\/nginx\.conf is not a path of this plan/],
    ["validator on nothing", (p) => (p.validate = [{ argv: ["/bin/true"], when: ["/etc/typo"] }]), /validate\[0\]\.when\[0\]: \/etc\/typo is not a path of this plan/],
    ["unit without suffix", (p) => (p.services[0].unit = "smart-mirror"), /must be a systemd unit name with its suffix/],
    ["unknown key (a typo)", (p) => ((p.services[0] as unknown as Record<string, unknown>).watch = []), /plan\.services\[0\]: Unrecognized key: "watch"/],
  ])("%s", (_name, mutate, msg) => {
    const p = good();
    mutate(p);
    const found = problems(p);
    expect(found.join("\n")).toMatch(msg);
  });

  test("every problem is listed at once", () => {
    const p = good();
    p.dirs[0].path = "relative";
    p.users[0].name = "BAD";
    expect(problems(p).length).toBeGreaterThanOrEqual(2);
  });

  test("not JSON", () => {
    expect(() => parsePlan("{")).toThrow(/plan is not JSON/);
  });
});
