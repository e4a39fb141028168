/**
 * The package as a consumer gets it: `npm pack` lists the compiled entry points and the daemon
 * bundle, and each example, installed from that tarball (test/pulumi/exampleWorkspace.ts),
 * runs `pulumi preview`, `pulumi up` and `pulumi up` again under Pulumi's own runner for
 * every stack file it ships.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { createCa } from "../../testbed/tls";
import { exampleNames, installExample, packPackage, PackResult, REPO } from "./exampleWorkspace";
import { leaks, Lifecycle, one, previewUpdateUpdate, registeredInputs, urns } from "./lifecycle";
import { isSecret, ROOT_STACK_TYPE } from "./recordingEngine";

let pack: PackResult;

beforeAll(() => {
  // prepack builds dist/ and lib/ first, as every `npm pack` does.
  pack = packPackage({ scripts: true });
}, 300_000);

describe("npm pack", () => {
  test("lists the compiled entry points, their declarations and dist/smart-mirror.js, and no sources or tests", () => {
    const listed = packPackage({ scripts: false, dryRun: true }).files;
    const manifest = JSON.parse(fs.readFileSync(path.join(REPO, "package.json"), "utf8")) as { main: string; types: string; exports: Record<string, { types: string; default: string }>; bin: Record<string, string> };
    for (const f of [manifest.types, manifest.exports["."].default.replace(/^\.\//, ""), manifest.exports["."].types.replace(/^\.\//, ""), manifest.bin["smart-mirror"], "dist/smart-mirror.js", "package.json", "lib/components/approve/accessKeyScript.mjs"]) {
      expect(listed).toContain(f);
    }
    // `main` is the any-language plugin's entry, run from a checkout by `pulumi package add`
    // (PulumiPlugin.yaml); importers resolve `exports`/`types`, which point at lib/.
    expect(manifest.main).toBe("provider/index.ts");
    // npm always packs `main`; it is the only TypeScript source in the tarball (nothing that
    // imports the package loads it: `exports` wins).
    expect(listed.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))).toEqual([manifest.main]);
    expect(listed.filter((f) => /\.test\.|testing\//.test(f))).toEqual([]);
    // Every module the compiled entry point requires is in the package.
    expect(listed).toContain("lib/sync/config/schema.js");
    expect(pack.files).toEqual(listed);
  });

  test("the examples depend on the tarball npm pack writes", () => {
    for (const name of exampleNames()) {
      const deps = (JSON.parse(fs.readFileSync(path.join(REPO, "examples", name, "package.json"), "utf8")) as { dependencies: Record<string, string> }).dependencies;
      expect(`examples/${name}: ${deps["smart-mirror"]}`).toBe(`examples/${name}: file:../../${path.basename(pack.tarball)}`);
    }
  });
});

/** What `pulumi config set --secret` stored in each example's stacks. */
const EXAMPLE_SECRETS: Record<string, Record<string, string>> = {
  "company-stack": { catalogToken: "BBDC-platform-catalog-4e1d", bastionKey: "-----BEGIN OPENSSH PRIVATE KEY-----\ncGxhdGZvcm0tYmFzdGlvbg==\n-----END OPENSSH PRIVATE KEY-----\n" },
  "multi-region": { catalogToken: "BBDC-multi-catalog-8a0f", accessKeyToken: "BBDC-multi-admin-51bb" },
};

function stacksOf(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
    .filter((s): s is string => s !== undefined)
    .sort();
}

describe.each(exampleNames())("examples/%s installed from the tarball", (name) => {
  let dir: string;
  const lives = new Map<string, Lifecycle>();
  const secrets = { ...EXAMPLE_SECRETS[name] };

  beforeAll(async () => {
    dir = installExample(name, pack.tarball);
    if (name === "company-stack") {
      // The company's own CA and the certificate it issued for the mirror, as the README asks for.
      const ca = await createCa("platform test CA");
      const leaf = await ca.issueServerCert(["git.platform.example.com"]);
      fs.copyFileSync(ca.certPath, path.join(dir, "company-ca.pem"));
      fs.copyFileSync(leaf.certPath, path.join(dir, "mirror.crt"));
      secrets.tlsKey = fs.readFileSync(leaf.keyPath, "utf8");
    }
    for (const stack of stacksOf(dir)) {
      const life = await previewUpdateUpdate({ root: dir, stack, secrets });
      for (const [what, r] of Object.entries(life)) console.log(`[pulumi-runner] examples/${name} ${stack} ${what}: ${r.durationMs} ms, ${r.recording.registrations.length} registrations`);
      lives.set(stack, life);
    }
  }, 600_000);

  test("the component comes from the installed package, with its daemon bundle", () => {
    const installed = path.join(dir, "node_modules", "smart-mirror");
    expect(fs.existsSync(path.join(installed, "dist", "smart-mirror.js"))).toBe(true);
    expect(fs.existsSync(path.join(installed, "components"))).toBe(false);
    // The deploy ships a content-addressed copy of the bundle (deploy/bundleAsset.ts), named by
    // the hash of the installed package's dist/smart-mirror.js.
    const sha = createHash("sha256").update(fs.readFileSync(path.join(installed, "dist", "smart-mirror.js"))).digest("hex");
    for (const life of lives.values()) {
      const shipped = life.update.recording.registrations.filter((r) => JSON.stringify(r.inputs).includes(`${sha}.js`));
      expect(shipped.length).toBeGreaterThan(0);
    }
  });

  test("every stack file: one SmartMirror under the stack, the graph complete, outputs known", () => {
    expect(lives.size).toBe(stacksOf(dir).length);
    for (const life of lives.values()) {
      const rec = life.update.recording;
      const mirror = one(rec, "smart-mirror:index:SmartMirror");
      expect(mirror.parent).toBe(one(rec, ROOT_STACK_TYPE).urn);
      for (const t of ["aws:ec2/instance:Instance", "aws:ebs/volume:Volume", "aws:ec2/securityGroup:SecurityGroup", "aws:route53/record:Record", "command:remote:Command"]) {
        expect(rec.registrations.map((r) => r.type)).toContain(t);
      }
      const outputs = rec.outputs.get(rec.rootUrn) ?? {};
      expect(String(outputs.cloneUrlTemplate)).toMatch(/^https:\/\/[^/]+\/scm\/\{PROJECT\}\/\{repo\}\.git$/);
      expect(isSecret(outputs.syncPublicKey)).toBe(false);
    }
  });

  test("the preview announces what the update registers; a second update registers identical inputs", () => {
    for (const life of lives.values()) {
      expect(urns(life.preview.recording)).toEqual(urns(life.update.recording));
      expect(registeredInputs(life.again.recording)).toEqual(registeredInputs(life.update.recording));
    }
  });

  test("secrets stay secret", () => {
    for (const life of lives.values()) {
      for (const r of Object.values(life)) expect(leaks(r.recording, Object.values(secrets))).toEqual([]);
    }
  });

  if (name === "company-stack") {
    test("every AWS resource and look-up goes through the platform's provider", () => {
      const rec = lives.get("prod")!.update.recording;
      const platform = one(rec, "pulumi:providers:aws", "platform");
      expect(platform.inputs.region).toBe("eu-central-1");
      const aws = rec.registrations.filter((r) => r.custom && r.type.startsWith("aws:"));
      expect(aws.length).toBeGreaterThan(0);
      for (const r of aws) expect(`${r.name} ${r.provider}`).toBe(`${r.name} ${platform.urn}::${"platform-provider-id"}`);
      for (const i of rec.invokes.filter((x) => x.token.startsWith("aws:"))) expect(`${i.token} ${i.provider}`).toBe(`${i.token} ${platform.urn}::platform-provider-id`);
    });
  }
});
