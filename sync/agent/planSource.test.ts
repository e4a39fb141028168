/**
 * `apply --plan-url ... --plan-sha256 ... [--wait-ready S]`: a plan fetched from a real HTTPS
 * server (bench CA, real TLS verification) or through the AWS CLI (an `aws` on PATH that serves
 * the object from a directory: S3 is the cloud's computation, the one allowed stand-in), checked
 * against its digest before anything is parsed or applied, then applied under a temp root. The
 * readiness wait polls the daemon's real readiness route (serve/server.ts) on a real socket.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as path from "node:path";
import { freePort, onCleanup, tempDir } from "../../testbed/resources";
import { textSink } from "../../testbed/textSink";
import { createCa, TestCa } from "../../testbed/tls";
import { listen } from "../serve/listen";
import { createServer } from "../serve/server";
import { StatusBoard } from "../state/statusBoard";
import { checkApplyOptions, runApplyCli } from "./cli";
import { Plan, PLAN_VERSION } from "./plan";
import { fetchPlan, parsePlanUrl, PlanSourceError } from "./planSource";
import { parseStatusUrl, readinessTargetFromPlan } from "./waitReady";

const b64 = (s: string) => Buffer.from(s).toString("base64");
const sha = (b: string | Buffer) => createHash("sha256").update(b).digest("hex");

const sink = textSink;

function plan(extraFiles: Plan["files"] = []): Plan {
  return {
    version: PLAN_VERSION,
    users: [],
    dirs: [{ path: "/etc/app", mode: 0o755 }],
    files: [{ path: "/etc/app/app.conf", contentBase64: b64("v1\n"), mode: 0o644 }, { path: "/etc/app/secret", contentBase64: b64("s3cret\n"), mode: 0o600, secret: true }, ...extraFiles],
    services: [],
  };
}

let ca: TestCa;
let otherCa: TestCa;
let server: https.Server;
let base: string;
/** Path -> body served by the HTTPS plan server. */
const served = new Map<string, string | { redirect: string }>();

beforeAll(async () => {
  ca = await createCa("plan server CA");
  otherCa = await createCa("some other CA");
  const cert = await ca.issueServerCert(["localhost", "127.0.0.1"]);
  server = https.createServer({ cert: fs.readFileSync(cert.chainPath), key: fs.readFileSync(cert.keyPath) }, (req, res) => {
    const body = served.get(req.url ?? "");
    if (body === undefined) return void res.writeHead(404).end("no such plan\n");
    if (typeof body === "object") return void res.writeHead(302, { Location: body.redirect }).end();
    res.writeHead(200, { "Content-Type": "application/json" }).end(body);
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  base = `https://localhost:${port}`;
  onCleanup(() => new Promise<void>((r) => server.close(() => r())));
});

function serve(name: string, body: string): string {
  served.set(`/${name}`, body);
  return `${base}/${name}`;
}

async function apply(args: Parameters<typeof runApplyCli>[0]): Promise<{ code: number; out: string; err: string }> {
  const out = sink();
  const err = sink();
  const code = await runApplyCli(args, out.stream, err.stream);
  return { code, out: out.text(), err: err.text() };
}

const listing = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true }) : []);

describe("the arguments", () => {
  test.each<[string, Parameters<typeof checkApplyOptions>[0], RegExp]>([
    ["both sources", { plan: "p.json", planUrl: "https://h/p", planSha256: "a".repeat(64) }, /either --plan FILE or --plan-url URL, not both/],
    ["no source", {}, /give the plan: --plan FILE, or --plan-url/],
    ["url without digest", { planUrl: "https://h/p" }, /--plan-url needs --plan-sha256 HEX/],
    ["short digest", { planUrl: "https://h/p", planSha256: "abc" }, /--plan-sha256 must be the plan's SHA-256 as 64 hex digits/],
    ["plain http", { planUrl: "http://h/p", planSha256: "a".repeat(64) }, /must be https:\/\/ or s3:\/\/ \(got http:\/\/\)/],
    ["credentials in the url", { planUrl: "https://u:p@h/p", planSha256: "a".repeat(64) }, /must not carry a user name or password/],
    ["bad bucket", { planUrl: "s3://A_B/k", planSha256: "a".repeat(64) }, /is not s3:\/\/BUCKET\/KEY/],
    ["ca for s3", { planUrl: "s3://bucket/k", planSha256: "a".repeat(64), planCa: "/ca.pem" }, /--plan-ca only applies to an https/],
    ["ca without url", { plan: "p.json", planCa: "/ca.pem" }, /--plan-ca only applies to --plan-url/],
    ["wait 0", { plan: "p.json", waitReady: 0 }, /--wait-ready must be a whole number of seconds from 1/],
    ["status url without wait", { plan: "p.json", statusUrl: "http://127.0.0.1:1/" }, /--status-url only applies with --wait-ready/],
    ["status url scheme", { plan: "p.json", waitReady: 5, statusUrl: "ftp://h/" }, /--status-url must be http:\/\/, https:\/\/ or unix:/],
    ["wait with dry run", { plan: "p.json", waitReady: 5, dryRun: true }, /cannot be combined with --dry-run/],
  ])("%s is refused with the fix", (_n, o, msg) => {
    expect(() => checkApplyOptions(o)).toThrow(msg);
  });

  test("s3 and https forms; status URLs default to /status/ready", () => {
    expect(parsePlanUrl("s3://farm-plans.example/eu-west-1/plan.json")).toEqual({ kind: "s3", bucket: "farm-plans.example", key: "eu-west-1/plan.json", uri: "s3://farm-plans.example/eu-west-1/plan.json" });
    expect(parsePlanUrl("https://plans.example.com/p.json")).toMatchObject({ kind: "https" });
    expect(parseStatusUrl("http://127.0.0.1:7990")).toMatchObject({ kind: "url", url: new URL("http://127.0.0.1:7990/status/ready") });
    expect(parseStatusUrl("unix:/run/sm/http.sock")).toEqual({ kind: "listen", address: { kind: "unix", path: "/run/sm/http.sock" }, path: "/status/ready" });
  });

  test("the daemon's address comes from the plan's properties (or the key's default, the home's socket; under the root)", () => {
    const props = (text: string) => plan([{ path: "/var/lib/smart-mirror/shared/bitbucket.properties", contentBase64: b64(text), mode: 0o640 }]);
    expect(readinessTargetFromPlan(props("mirror.serve.listen=127.0.0.1:7990\n"), "/")).toEqual({ kind: "listen", address: { kind: "tcp", host: "127.0.0.1", port: 7990 }, path: "/status/ready" });
    expect(readinessTargetFromPlan(props("setup.displayName=x\n"), "/")).toEqual({ kind: "listen", address: { kind: "unix", path: "/var/lib/smart-mirror/run/smart-mirror.sock" }, path: "/status/ready" });
    expect(readinessTargetFromPlan(props("mirror.serve.listen=unix:/run/sm.sock\n"), "/tmp/r")).toEqual({ kind: "listen", address: { kind: "unix", path: "/tmp/r/run/sm.sock" }, path: "/status/ready" });
    expect(readinessTargetFromPlan(plan(), "/")).toEqual({ problem: expect.stringContaining("give --status-url") });
  });
});

describe("https", () => {
  test("a plan served over verified TLS is applied when its digest matches; the fetched copy is removed", async () => {
    const text = JSON.stringify(plan());
    const root = tempDir("url-root");
    const tmp = tempDir("url-tmp");
    process.env.TMPDIR = tmp;
    try {
      const r = await apply({ planUrl: serve("good.json", text), planSha256: sha(text).toUpperCase(), planCa: ca.certPath, root });
      expect(r.code).toBe(0);
      expect(r.err).toContain("sha256 verified");
      expect(JSON.parse(r.out)).toMatchObject({ ok: true, changed: expect.arrayContaining(["/etc/app/app.conf", "/etc/app/secret"]) });
      expect(fs.readFileSync(path.join(root, "etc/app/app.conf"), "utf8")).toBe("v1\n");
      // No secret in any output.
      expect(r.out + r.err).not.toContain("s3cret");
    } finally {
      delete process.env.TMPDIR;
    }
    expect(listing(tmp)).toEqual([]);
  });

  test("a digest mismatch is refused before parsing: both digests named, nothing written, nothing left", async () => {
    const text = JSON.stringify(plan());
    const tampered = text.replace('"mode":420', '"mode":438');
    expect(tampered).not.toBe(text);
    const root = tempDir("mismatch-root");
    const r = await apply({ planUrl: serve("tampered.json", tampered), planSha256: sha(text), planCa: ca.certPath, root });
    expect(r.code).toBe(1);
    expect(r.err).toContain(`expected ${sha(text)}, got ${sha(tampered)}`);
    expect(r.err).toContain("nothing was applied");
    expect(r.out).toBe("");
    expect(listing(root)).toEqual([]);
    // Not even parsed: a digest-mismatched body that is not JSON fails the same way, not as a parse error.
    const junk = await apply({ planUrl: serve("junk.json", "not json"), planSha256: sha(text), planCa: ca.certPath, root });
    expect(junk.err).toMatch(/does not match --plan-sha256/);
  });

  test("a server whose certificate the CA did not sign is refused; so is the system store for a private CA; redirects are not followed", async () => {
    const text = JSON.stringify(plan());
    const url = serve("p.json", text);
    const root = tempDir("ca-root");
    const wrong = await apply({ planUrl: url, planSha256: sha(text), planCa: otherCa.certPath, root });
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/cannot fetch the plan from https:\/\/localhost:\d+\/p\.json: .*(self.signed|unable to verify|certificate)/i);
    const system = await apply({ planUrl: url, planSha256: sha(text), root });
    expect(system.code).toBe(1);
    expect(system.err).toMatch(/certificate/i);
    served.set("/moved.json", { redirect: "http://localhost/p.json" });
    const moved = await apply({ planUrl: `${base}/moved.json`, planSha256: sha(text), planCa: ca.certPath, root });
    expect(moved.err).toMatch(/answered a redirect 302 \(to http:\/\/localhost\/p\.json\); redirects are not followed/);
    const missing = await apply({ planUrl: `${base}/nope.json`, planSha256: sha(text), planCa: ca.certPath, root });
    expect(missing.err).toMatch(/answered 404/);
    expect(listing(root)).toEqual([]);
  });

  test("a plan over the size cap is refused and removed", async () => {
    const big = "x".repeat(4096);
    const tmp = tempDir("cap-tmp");
    await expect(fetchPlan({ url: parsePlanUrl(serve("big.json", big)), sha256: sha(big), caFile: ca.certPath, maxBytes: 1024, tmpDir: tmp })).rejects.toThrow(/larger than 1024 bytes/);
    expect(listing(tmp)).toEqual([]);
  });

  test("the fetched file is 0600 in a 0700 directory", async () => {
    const text = JSON.stringify(plan());
    const f = await fetchPlan({ url: parsePlanUrl(serve("mode.json", text)), sha256: sha(text), caFile: ca.certPath, tmpDir: tempDir("mode-tmp") });
    expect(fs.statSync(f.file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(f.file)).mode & 0o777).toBe(0o700);
    expect(fs.readFileSync(f.file, "utf8")).toBe(text);
    f.remove();
    expect(fs.existsSync(f.file)).toBe(false);
  });
});

test("a local --plan is checked against --plan-sha256 too when one is given", async () => {
  const text = JSON.stringify(plan());
  const file = path.join(tempDir("local-plan"), "plan.json");
  fs.writeFileSync(file, text, { mode: 0o600 });
  const root = tempDir("local-root");
  const bad = await apply({ plan: file, planSha256: sha("something else"), root });
  expect(bad.code).toBe(1);
  expect(bad.err).toContain(`expected ${sha("something else")}, got ${sha(text)}; nothing was applied`);
  expect(listing(root)).toEqual([]);
  expect((await apply({ plan: file, planSha256: sha(text), root })).code).toBe(0);
});

describe("s3:// through the AWS CLI", () => {
  /** An `aws` that answers `aws s3 cp --only-show-errors s3://BUCKET/KEY -` from DIR/BUCKET/KEY, as the CLI does (stdout; exit 1 and a message when missing). */
  function awsShim(objects: string): string {
    const bin = tempDir("aws-bin");
    const script = [
      "#!/bin/sh",
      'log="$(dirname "$0")/calls"; echo "$*" >> "$log"',
      '[ "$1" = s3 ] && [ "$2" = cp ] && [ "$3" = --only-show-errors ] && [ "$5" = - ] || { echo "unexpected arguments: $*" >&2; exit 2; }',
      'obj="${4#s3://}"',
      `f="${objects}/$obj"`,
      '[ -f "$f" ] || { echo "fatal error: An error occurred (404) when calling the HeadObject operation: Key \\"${obj#*/}\\" does not exist" >&2; exit 1; }',
      'exec cat "$f"',
      "",
    ].join("\n");
    fs.writeFileSync(path.join(bin, "aws"), script, { mode: 0o755 });
    return bin;
  }

  test("the object is streamed from `aws s3 cp ... -`, verified and applied; a missing object fails with the CLI's message", async () => {
    const objects = tempDir("s3-objects");
    const text = JSON.stringify(plan());
    fs.mkdirSync(path.join(objects, "farm-plans/eu"), { recursive: true });
    fs.writeFileSync(path.join(objects, "farm-plans/eu/plan.json"), text);
    const bin = awsShim(objects);
    const savedPath = process.env.PATH;
    process.env.PATH = `${bin}:${savedPath}`;
    try {
      const root = tempDir("s3-root");
      const r = await apply({ planUrl: "s3://farm-plans/eu/plan.json", planSha256: sha(text), root });
      expect(r.err).not.toMatch(/failed|cannot/);
      expect(r.code).toBe(0);
      expect(fs.readFileSync(path.join(root, "etc/app/app.conf"), "utf8")).toBe("v1\n");
      expect(fs.readFileSync(path.join(bin, "calls"), "utf8").trim()).toBe("s3 cp --only-show-errors s3://farm-plans/eu/plan.json -");
      const missing = await apply({ planUrl: "s3://farm-plans/eu/nope.json", planSha256: sha(text), root: tempDir("s3-root2") });
      expect(missing.code).toBe(1);
      expect(missing.err).toMatch(/`aws s3 cp s3:\/\/farm-plans\/eu\/nope\.json -` failed \(exit 1\): .*does not exist; nothing was applied/);
      const wrong = await apply({ planUrl: "s3://farm-plans/eu/plan.json", planSha256: sha("other"), root: tempDir("s3-root3") });
      expect(wrong.err).toContain(`expected ${sha("other")}, got ${sha(text)}`);
    } finally {
      process.env.PATH = savedPath;
    }
  });

  test("no AWS CLI on PATH: the fix says to install it", async () => {
    await expect(fetchPlan({ url: parsePlanUrl("s3://bucket/k"), sha256: "a".repeat(64), aws: "/nonexistent/aws", tmpDir: tempDir("noaws") })).rejects.toThrow(/not found on PATH; install the AWS CLI/);
  });
});

describe("--wait-ready", () => {
  /** The daemon's real HTTP server (readiness from its status board) on a loopback port. */
  async function daemonServer(): Promise<{ board: StatusBoard; port: number; asked: () => number }> {
    const board = new StatusBoard({ defaultMetrics: false });
    let asked = 0;
    const server = createServer({ board });
    server.prependListener("request", (req: http.IncomingMessage) => {
      if (req.url === "/status/ready") asked++;
    });
    const at = await listen(server, "127.0.0.1:0");
    onCleanup(async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    });
    if (at.kind !== "tcp") throw new Error("tcp expected");
    return { board, port: at.port, asked: () => asked };
  }

  const withProperties = (port: number) => plan([{ path: "/var/lib/smart-mirror/shared/bitbucket.properties", contentBase64: b64(`mirror.serve.listen=127.0.0.1:${port}\n`), mode: 0o640 }]);

  function writePlan(p: Plan): string {
    const f = path.join(tempDir("wait-plan"), "plan.json");
    fs.writeFileSync(f, JSON.stringify(p), { mode: 0o600 });
    return f;
  }

  test("waits at the daemon's listener from the plan until /status/ready is 200", async () => {
    const d = await daemonServer();
    const file = writePlan(withProperties(d.port));
    const run = apply({ plan: file, root: tempDir("wait-root"), waitReady: 120 });
    // Not ready while starting; ready once synced.
    while (d.asked() < 2) await new Promise((r) => setTimeout(r, 20));
    d.board.setCatalog(["P/r"]);
    d.board.primaryReachable(true);
    d.board.syncSucceeded("P/r", { durationMs: 1, changed: true, bytes: 1 });
    d.board.reconcileDone({ durationMs: 1, changed: 0, checked: 1 });
    const r = await run;
    expect(r.code).toBe(0);
    expect(r.err).toContain(`waiting up to 120 s for readiness at 127.0.0.1:${d.port} /status/ready`);
    expect(r.err).toContain('not ready yet: 503 {"ready":false,"state":"STARTING","draining":false}');
    expect(r.err).toMatch(/ready after \d+ s: \{"ready":true,"state":"SYNCHRONIZED","draining":false\}/);
  });

  test("not ready in time: exit 1 with the last answer; --status-url overrides the plan", async () => {
    const d = await daemonServer();
    const file = writePlan(withProperties(1));
    const r = await apply({ plan: file, root: tempDir("wait-root2"), waitReady: 2, statusUrl: `http://127.0.0.1:${d.port}` });
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out)).toMatchObject({ ok: true });
    expect(r.err).toMatch(/applied, but the daemon was not ready within 2 s \(last: 503 \{"ready":false,"state":"STARTING","draining":false\}\)/);
    expect(d.asked()).toBeGreaterThanOrEqual(1);
    const none = await apply({ plan: writePlan(plan()), root: tempDir("wait-root3"), waitReady: 2 });
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/--wait-ready: the plan lays down no shared\/bitbucket\.properties.*give --status-url/);
    expect(none.out).toBe("");
  });
});

test("PlanSourceError is what the fetch throws", () => {
  expect(new PlanSourceError("x")).toBeInstanceOf(Error);
});
