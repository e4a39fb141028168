/**
 * The farm node's scripts run for real: the boot/update script fetches a bundle from a local
 * HTTPS server (a real TLS server with a test CA, curl checking it with --cacert) or from
 * s3:// through a tiny `aws` shim (the one cloud computation faked: S3 itself), checks its
 * sha256 and only then runs it; the SSM document's form of the same script does the same. The
 * peers refresher runs against an `aws` shim answering describe-instances; its systemd units
 * pass `systemd-analyze verify`.
 *
 * The bundle served here records the arguments it was started with: the agent's side of
 * `apply --plan-url` is another branch's; what this script owes is the call.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { runProcess } from "../../sync/agent/runProcess";
import { createCa, TestCa } from "../../testbed/tls";
import { onCleanup, tempDir } from "../../testbed/resources";
import { DATA_VOLUME_SCRIPT_PATH } from "./cloudInit";
import { FARM_NODE_SCRIPT_PATH, renderFarmCloudInit, renderFarmNodeScript, renderFarmPeersScript, renderFarmPeersUnits, ssmRunCommand } from "./farmNode";

const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");
const PLAN_SHA = sha("the plan");

/** A bundle that records its argv (and that it ran) in $RECORD. */
const BUNDLE = Buffer.from(`require("fs").writeFileSync(process.env.RECORD, JSON.stringify(process.argv.slice(2)));\n`);
const TAMPERED = Buffer.from(`require("fs").writeFileSync(process.env.RECORD, "tampered bundle ran");\n`);

let ca: TestCa;
let base: string;
const served = new Map<string, Buffer>();

beforeAll(async () => {
  ca = await createCa("farm node test CA");
  const leaf = await ca.issueServerCert(["localhost", "127.0.0.1"]);
  const server = https.createServer({ cert: fs.readFileSync(leaf.chainPath), key: fs.readFileSync(leaf.keyPath) }, (req, res) => {
    const body = served.get(req.url ?? "");
    if (!body) {
      res.writeHead(404).end("not found\n");
      return;
    }
    res.writeHead(200, { "content-type": "application/octet-stream" }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onCleanup(() => new Promise<void>((resolve) => server.close(() => resolve())));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

interface Node {
  dir: string;
  stage: string;
  script: string;
  record: string;
  env: NodeJS.ProcessEnv;
  awsLog: string;
}

/** A node's directories, the rendered script, and an `aws` shim that serves s3://BUCKET/KEY from S3ROOT/BUCKET/KEY. */
function node(): Node {
  const dir = tempDir("farm-node");
  const stage = path.join(dir, "stage");
  const script = path.join(dir, "smart-mirror-farm-node");
  fs.writeFileSync(script, renderFarmNodeScript({ stageDir: stage, nodePath: process.execPath, lockFile: path.join(dir, "lock"), region: "eu-west-1" }), { mode: 0o755 });
  const bin = path.join(dir, "bin");
  fs.mkdirSync(bin);
  const awsLog = path.join(dir, "aws.log");
  fs.writeFileSync(
    path.join(bin, "aws"),
    `#!/bin/sh
echo "AWS_DEFAULT_REGION=$AWS_DEFAULT_REGION $*" >> ${awsLog}
[ "$1 $2 $3" = "s3 cp --only-show-errors" ] || { echo "shim: unexpected $*" >&2; exit 2; }
src="$4"; dest="$5"
key="\${src#s3://}"
[ -f "${path.join(dir, "s3")}/$key" ] || { echo "fatal error: An error occurred (404) when calling the HeadObject operation: Key \\"$key\\" does not exist" >&2; exit 1; }
cp "${path.join(dir, "s3")}/$key" "$dest"
`,
    { mode: 0o755 },
  );
  const record = path.join(dir, "record.json");
  return { dir, stage, script, record, awsLog, env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, RECORD: record } };
}

function serve(name: string, body: Buffer): string {
  served.set(`/${name}`, body);
  return `${base}/${name}`;
}

function putS3(n: Node, key: string, body: Buffer): string {
  const file = path.join(n.dir, "s3", key);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, body);
  return `s3://${key}`;
}

describe("the boot/update script", () => {
  test("https: fetches the bundle with the CA, checks the digest, then runs `apply --plan-url --plan-sha256 --wait-ready --plan-ca`", async () => {
    const n = node();
    const url = serve("bundle-ok.js", BUNDLE);
    const r = await runProcess([n.script, url, sha(BUNDLE), `${base}/plan.json`, PLAN_SHA, "900", ca.certPath], { env: n.env });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    expect(JSON.parse(fs.readFileSync(n.record, "utf8"))).toEqual(["apply", "--plan-url", `${base}/plan.json`, "--plan-sha256", PLAN_SHA, "--wait-ready", "900", "--plan-ca", ca.certPath]);
    // The verified bundle is where the plan installs it from; the stage is private, no temp file left.
    expect(fs.readFileSync(path.join(n.stage, "smart-mirror.js"))).toEqual(BUNDLE);
    expect(fs.statSync(n.stage).mode & 0o777).toBe(0o700);
    expect(fs.readdirSync(n.stage)).toEqual(["smart-mirror.js"]);
  });

  test("a tampered bundle is refused before anything runs it (exit 3), and the last good bundle stays", async () => {
    const n = node();
    const good = serve("bundle-good.js", BUNDLE);
    expect((await runProcess([n.script, good, sha(BUNDLE), `${base}/plan.json`, PLAN_SHA, "0", ca.certPath], { env: n.env })).code).toBe(0);
    fs.rmSync(n.record);

    // The server now answers with other bytes than the digest the component recorded.
    const swapped = serve("bundle-swapped.js", TAMPERED);
    const r = await runProcess([n.script, swapped, sha(BUNDLE), `${base}/plan.json`, PLAN_SHA, "900", ca.certPath], { env: n.env });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`has sha256 ${sha(TAMPERED)}, not the recorded ${sha(BUNDLE)}; refusing to run it`);
    expect(fs.existsSync(n.record)).toBe(false);
    expect(fs.readFileSync(path.join(n.stage, "smart-mirror.js"))).toEqual(BUNDLE);
    expect(fs.readdirSync(n.stage)).toEqual(["smart-mirror.js"]);
  });

  test("https without the CA: curl refuses the unknown issuer, nothing runs", async () => {
    const n = node();
    const url = serve("bundle-noca.js", BUNDLE);
    const r = await runProcess([n.script, url, sha(BUNDLE), `${base}/plan.json`, PLAN_SHA], { env: { ...n.env, CURL_CA_BUNDLE: "", SSL_CERT_FILE: "/nonexistent" } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot fetch the bundle/);
    expect(fs.existsSync(n.record)).toBe(false);
  });

  test("s3://: the bundle through `aws s3 cp` in the rendered region; no --wait-ready at boot (0)", async () => {
    const n = node();
    const bundleUrl = putS3(n, "farm-bucket/farm/mirror/bundle/abc.js", BUNDLE);
    const planUrl = "s3://farm-bucket/farm/mirror/plan/def.json";
    const r = await runProcess([n.script, bundleUrl, sha(BUNDLE), planUrl, PLAN_SHA, "0"], { env: n.env });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    expect(JSON.parse(fs.readFileSync(n.record, "utf8"))).toEqual(["apply", "--plan-url", planUrl, "--plan-sha256", PLAN_SHA]);
    expect(fs.readFileSync(n.awsLog, "utf8")).toMatch(/^AWS_DEFAULT_REGION=eu-west-1 s3 cp --only-show-errors s3:\/\/farm-bucket\/farm\/mirror\/bundle\/abc\.js \S+\/stage\/bundle\.\w+\n$/);
  });

  test("s3:// object missing, or holding other bytes: exit non-zero, nothing runs", async () => {
    const n = node();
    const missing = await runProcess([n.script, "s3://farm-bucket/none.js", sha(BUNDLE), "s3://b/p.json", PLAN_SHA], { env: n.env });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/does not exist[\s\S]*cannot fetch the bundle from s3:\/\/farm-bucket\/none\.js/);
    const tampered = await runProcess([n.script, putS3(n, "farm-bucket/t.js", TAMPERED), sha(BUNDLE), "s3://b/p.json", PLAN_SHA], { env: n.env });
    expect(tampered.code).toBe(3);
    expect(fs.existsSync(n.record)).toBe(false);
  });

  test.each([
    ["a file:// source", ["file:///tmp/x.js", sha(BUNDLE), "s3://b/p.json", PLAN_SHA], /bundle source must be an s3:\/\/ or https:\/\/ URL/],
    ["a quote in the bundle source", [`${"https://x/"}'a`, sha(BUNDLE), "s3://b/p.json", PLAN_SHA], /bundle source/],
    ["an uppercase digest", ["s3://b/x.js", sha(BUNDLE).toUpperCase(), "s3://b/p.json", PLAN_SHA], /bundle digest must be 64 lowercase hex/],
    ["a short plan digest", ["s3://b/x.js", sha(BUNDLE), "s3://b/p.json", "abc"], /plan digest must be 64/],
    ["a bad wait", ["s3://b/x.js", sha(BUNDLE), "s3://b/p.json", PLAN_SHA, "ten"], /WAIT_READY_SECONDS must be a whole number/],
    ["missing arguments", ["s3://b/x.js"], /usage: /],
  ])("%s: exit 2 with the reason, nothing fetched", async (_n, args, msg) => {
    const n = node();
    const r = await runProcess([n.script, ...args], { env: n.env });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(msg);
    expect(fs.existsSync(n.awsLog)).toBe(false);
  });

  test("the SSM document's form (parameters, then the same script) does exactly the same", async () => {
    const n = node();
    const good = serve("bundle-ssm.js", BUNDLE);
    const script = renderFarmNodeScript({ stageDir: n.stage, nodePath: process.execPath, lockFile: path.join(n.dir, "lock") });
    const lines = (bundleUrl: string) => ssmRunCommand(script, { bundleUrl, bundleSha256: sha(BUNDLE), planUrl: `${base}/plan.json`, planSha256: PLAN_SHA, waitReadySeconds: "900" });
    // SSM passes no CA: trust the test CA the way a node trusts its store.
    const env = { ...n.env, CURL_CA_BUNDLE: ca.certPath };
    const file = path.join(n.dir, "_script.sh");
    fs.writeFileSync(file, lines(good).join("\n"));
    const r = await runProcess(["sh", file], { env });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    expect(JSON.parse(fs.readFileSync(n.record, "utf8"))).toEqual(["apply", "--plan-url", `${base}/plan.json`, "--plan-sha256", PLAN_SHA, "--wait-ready", "900"]);
    fs.rmSync(n.record);
    fs.writeFileSync(file, lines(serve("bundle-ssm-bad.js", TAMPERED)).join("\n"));
    expect((await runProcess(["sh", file], { env })).code).toBe(3);
    expect(fs.existsSync(n.record)).toBe(false);
  });

  test("renders only plain paths", () => {
    expect(() => renderFarmNodeScript({ stageDir: "/var/lib/x y" })).toThrow(/stageDir "\/var\/lib\/x y" must be a plain path/);
  });
});

describe("the peers refresher", () => {
  function setup(answer: string, exit = 0) {
    const dir = tempDir("farm-peers");
    const peersFile = path.join(dir, "farm", "peers");
    const script = path.join(dir, "refresh");
    fs.writeFileSync(script, renderFarmPeersScript({ tagKey: "smart-mirror-farm", tagValue: "proj/stack/mirror", peersFile, region: "eu-west-1" }), { mode: 0o755 });
    const bin = path.join(dir, "bin");
    fs.mkdirSync(bin);
    const answerFile = path.join(dir, "answer");
    fs.writeFileSync(answerFile, answer);
    const log = path.join(dir, "aws.log");
    fs.writeFileSync(path.join(bin, "aws"), `#!/bin/sh\nprintf '%s\\n' "$*" >> ${log}\ncat ${answerFile}\nexit $(cat ${answerFile}.exit 2>/dev/null || echo ${exit})\n`, { mode: 0o755 });
    const run = () => runProcess([script], { env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
    return { dir, peersFile, answerFile, log, run };
  }

  test("running instances' private addresses become sorted https:// lines, written atomically; unchanged: not rewritten", async () => {
    const s = setup("10.0.2.7\t10.0.1.23\n10.0.3.9\tNone\n");
    const r = await s.run();
    expect(r.code).toBe(0);
    expect(fs.readFileSync(s.peersFile, "utf8")).toBe("https://10.0.1.23\nhttps://10.0.2.7\nhttps://10.0.3.9\n");
    expect(fs.statSync(s.peersFile).mode & 0o777).toBe(0o644);
    expect(fs.readFileSync(s.log, "utf8").trim()).toBe(
      "ec2 describe-instances --region eu-west-1 --filters Name=tag:smart-mirror-farm,Values=proj/stack/mirror Name=instance-state-name,Values=running --query Reservations[].Instances[].PrivateIpAddress --output text",
    );
    const inode = fs.statSync(s.peersFile).ino;
    expect((await s.run()).code).toBe(0);
    expect(fs.statSync(s.peersFile).ino).toBe(inode);
    // A node left: a new file replaces the old one whole (rename), no temp file stays.
    fs.writeFileSync(s.answerFile, "10.0.1.23\n");
    expect((await s.run()).code).toBe(0);
    expect(fs.readFileSync(s.peersFile, "utf8")).toBe("https://10.0.1.23\n");
    expect(fs.statSync(s.peersFile).ino).not.toBe(inode);
    expect(fs.readdirSync(path.dirname(s.peersFile))).toEqual(["peers"]);
  });

  test("a failed look-up or an empty answer keeps the last good file", async () => {
    const s = setup("10.0.1.23\n");
    expect((await s.run()).code).toBe(0);
    fs.writeFileSync(s.answerFile, "");
    const empty = await s.run();
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/no running node tagged smart-mirror-farm=proj\/stack\/mirror \(not even this one\); keeping/);
    fs.writeFileSync(`${s.answerFile}.exit`, "255");
    fs.writeFileSync(s.answerFile, "10.9.9.9\n");
    expect((await s.run()).code).not.toBe(0);
    expect(fs.readFileSync(s.peersFile, "utf8")).toBe("https://10.0.1.23\n");
    expect(fs.readdirSync(path.dirname(s.peersFile))).toEqual(["peers"]);
  });

  test("its service and timer pass systemd-analyze verify; a broken unit would not", async () => {
    const dir = tempDir("farm-units");
    const script = path.join(dir, "smart-mirror-farm-peers");
    fs.writeFileSync(script, "#!/bin/sh\n", { mode: 0o755 });
    const units = renderFarmPeersUnits({ scriptPath: script, peersDir: dir });
    const service = path.join(dir, "smart-mirror-farm-peers.service");
    const timer = path.join(dir, "smart-mirror-farm-peers.timer");
    fs.writeFileSync(service, units.service);
    fs.writeFileSync(timer, units.timer);
    const r = await runProcess(["systemd-analyze", "verify", "--man=no", service, timer]);
    expect({ code: r.code, out: (r.stdout + r.stderr).trim() }).toEqual({ code: 0, out: "" });
    fs.writeFileSync(timer, units.timer.replace("OnUnitActiveSec", "OnUnitActivSec"));
    const bad = await runProcess(["systemd-analyze", "verify", "--man=no", service, timer]);
    expect(bad.stdout + bad.stderr).toMatch(/Unknown key 'OnUnitActivSec'/);
    expect(units.timer).toMatch(/^OnActiveSec=0$/m);
    expect(units.timer).toMatch(/^OnUnitActiveSec=30s$/m);
    expect(() => renderFarmPeersUnits({ peersDir: dir, intervalSeconds: 1 })).toThrow(/from 5 to 3600/);
  });
});

describe("renderFarmCloudInit", () => {
  const values = {
    home: "/var/lib/smart-mirror",
    deviceName: "/dev/sdf",
    nodeScript: renderFarmNodeScript({ stageDir: "/var/lib/smart-mirror-deploy" }),
    bundleUrl: "s3://b/farm/mirror/bundle/1.js",
    bundleSha256: sha("b"),
    planUrl: "s3://b/farm/mirror/plan/2.json",
    planSha256: sha("p"),
  };

  test("the data volume by \"-\", the script, its boot run without waiting; no SSH keys; the aws CLI per OS", () => {
    const ubuntu = yaml.load(renderFarmCloudInit({ ...values, os: "ubuntu-24.04" }).replace(/^#cloud-config\n/, "")) as Record<string, unknown>;
    expect((ubuntu.runcmd as string[][])[0]).toEqual([DATA_VOLUME_SCRIPT_PATH, "-", "/dev/sdf", "/var/lib/smart-mirror"]);
    expect((ubuntu.runcmd as string[][]).at(-1)).toEqual([FARM_NODE_SCRIPT_PATH, values.bundleUrl, values.bundleSha256, values.planUrl, values.planSha256, "0"]);
    expect((ubuntu.write_files as Array<{ path: string; content: string }>).find((f) => f.path === FARM_NODE_SCRIPT_PATH)?.content).toBe(values.nodeScript);
    expect(ubuntu.ssh_authorized_keys).toBeUndefined();
    expect(ubuntu.ssh_keys).toBeUndefined();
    // Every node keeps its own EC2 host name (the farm's node id), not the farm's domain.
    expect(ubuntu.hostname).toBeUndefined();
    expect(ubuntu.fqdn).toBeUndefined();
    expect(ubuntu.snap).toEqual({ commands: [["snap", "install", "aws-cli", "--classic"]] });
    expect(ubuntu.packages).toContain("curl");
    const debian = yaml.load(renderFarmCloudInit({ ...values, os: "debian-12" }).replace(/^#cloud-config\n/, "")) as Record<string, unknown>;
    expect(debian.packages).toContain("awscli");
    expect(debian.snap).toBeUndefined();
  });
});
