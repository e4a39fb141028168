/**
 * The "approve the mirror" script for real: plain node, run exactly as the local Command runs
 * it (script text in the environment), against the Bitbucket REST double over real HTTPS.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import { BitbucketDouble, startBitbucketDouble } from "../../testbed/bitbucketDouble";
import { createCa, TestCa } from "../../testbed/tls";
import { ed25519PublicLine } from "../../testbed/pulumiMocks";
import { accessKeyTargets, ACCESS_KEY_SCRIPT_PATH } from "./registerAccessKey";

const SCRIPT = fs.readFileSync(ACCESS_KEY_SCRIPT_PATH, "utf8");
const ADMIN_TOKEN = "admin-token-abcdef123456";
const READER_TOKEN = "reader-token-abcdef123456";
const KEY = ed25519PublicLine("mirror-key", "smart-mirror@syd");
const OTHER_KEY = ed25519PublicLine("someone-else", "ci@build");

let ca: TestCa;
let bb: BitbucketDouble;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(action: string, env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--input-type=module", "-e", SCRIPT, action],
      {
        env: {
          PATH: process.env.PATH ?? "",
          BITBUCKET_URL: bb.url,
          BITBUCKET_TOKEN: ADMIN_TOKEN,
          MIRROR_PUBLIC_KEY: KEY,
          PRIMARY_CA_PEM: ca.certPem,
          ACCESS_KEY_PROJECTS: "",
          ACCESS_KEY_REPOS: "",
          ...env,
        },
        timeout: 60000,
      },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const keyIdOf = (line: string) => line.split(" ").slice(0, 2).join(" ");

beforeAll(async () => {
  ca = await createCa("access-key test CA");
  const leaf = await ca.issueServerCert(["localhost"]);
  bb = await startBitbucketDouble({ cert: fs.readFileSync(leaf.chainPath, "utf8"), key: fs.readFileSync(leaf.keyPath, "utf8") });
  for (const p of ["PROJ", "OPS", "OTHER"]) bb.addProject(p);
  bb.addRepo("PROJ", "app");
  bb.addRepo("OPS", "tools");
  bb.addUser("admin", "pw", { token: ADMIN_TOKEN, admin: true });
  bb.addUser("reader", "pw", { token: READER_TOKEN, admin: false });
});

describe("access key script", () => {
  test("grants PROJECT_READ on the listed projects only, idempotently", async () => {
    const first = await run("register", { ACCESS_KEY_PROJECTS: "PROJ,OPS" });
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toEqual(expect.objectContaining({ action: "register", granted: ["PROJ", "OPS"], alreadyGranted: [] }));
    for (const p of ["PROJ", "OPS"]) {
      expect(bb.accessKeys(p).map((k) => [k.text, k.permission])).toEqual([[keyIdOf(KEY), "PROJECT_READ"]]);
    }
    expect(bb.accessKeys("OTHER")).toEqual([]);

    const second = await run("register", { ACCESS_KEY_PROJECTS: "PROJ,OPS" });
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toEqual(expect.objectContaining({ granted: [], alreadyGranted: ["PROJ", "OPS"] }));
    expect(bb.accessKeys("PROJ")).toHaveLength(1);
  });

  test("ALL: every project the token can see; repositories get REPO_READ", async () => {
    const r = await run("register", { ACCESS_KEY_PROJECTS: "ALL", ACCESS_KEY_REPOS: "OPS/tools" });
    expect(r.code).toBe(0);
    expect(bb.accessKeys("OTHER").map((k) => k.permission)).toEqual(["PROJECT_READ"]);
    expect(bb.accessKeys("OPS", "tools").map((k) => [k.text, k.permission])).toEqual([[keyIdOf(KEY), "REPO_READ"]]);
  });

  test("revoke removes this key's grants and leaves other keys alone", async () => {
    const other = await run("register", { MIRROR_PUBLIC_KEY: OTHER_KEY, ACCESS_KEY_PROJECTS: "PROJ" });
    expect(other.code).toBe(0);
    expect(bb.accessKeys("PROJ")).toHaveLength(2);

    const r = await run("revoke", { ACCESS_KEY_PROJECTS: "ALL", ACCESS_KEY_REPOS: "OPS/tools" });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).revoked.sort()).toEqual(["OPS", "OPS/tools", "OTHER", "PROJ"]);
    expect(bb.accessKeys("PROJ").map((k) => k.text)).toEqual([keyIdOf(OTHER_KEY)]);
    expect(bb.accessKeys("OPS")).toEqual([]);
    expect(bb.accessKeys("OPS", "tools")).toEqual([]);

    // Nothing left to revoke is not an error.
    const again = await run("revoke", { ACCESS_KEY_PROJECTS: "OPS" });
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).notFound).toEqual(["OPS"]);
  });

  test("a token without admin rights fails, says what it needs, and never prints the token", async () => {
    const r = await run("register", { BITBUCKET_TOKEN: READER_TOKEN, ACCESS_KEY_PROJECTS: "PROJ" });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/HTTP 401.*PROJECT_ADMIN \(REPO_ADMIN for a repository\) on PROJ/);
    expect(r.stdout + r.stderr).not.toContain(READER_TOKEN);
  });

  test("refuses plain HTTP and a primary it cannot verify", async () => {
    const http = await run("register", { BITBUCKET_URL: bb.url.replace("https:", "http:"), ACCESS_KEY_PROJECTS: "PROJ" });
    expect(http.code).toBe(1);
    expect(http.stderr).toMatch(/must be https:\/\//);
    const untrusted = await run("register", { PRIMARY_CA_PEM: "", ACCESS_KEY_PROJECTS: "PROJ" });
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/certificate/i);
    expect(untrusted.stderr).not.toContain(ADMIN_TOKEN);
  });

  test("the token travels as a Bearer header only (never in a URL)", () => {
    expect(bb.requests.length).toBeGreaterThan(0);
    for (const q of bb.requests) expect(q.path + q.query).not.toContain("token");
    expect(bb.requests.some((q) => q.user === "admin")).toBe(true);
  });
});

describe("accessKeyTargets", () => {
  test.each([
    ["explicit projects win", { projects: ["A"] }, { projects: ["B"] }, { projects: ["A"], repos: [] }],
    ["explicit repos", { repos: ["A/x"] }, { projects: "ALL" as const }, { projects: [], repos: ["A/x"] }],
    ["the mirror's project list", {}, { projects: ["P", "Q"] }, { projects: ["P", "Q"], repos: [] }],
    ["ALL", {}, {}, { projects: "ALL", repos: [] }],
    ["a fixed repository list, narrowed to the selected projects", {}, { projects: ["P"], repos: ["P/a", "Q/b"] }, { projects: [], repos: ["P/a"] }],
  ])("%s", (_n, explicit, mirror, expected) => {
    expect(accessKeyTargets(explicit, mirror)).toEqual(expected);
  });
});
