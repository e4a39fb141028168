/**
 * The examples as a consumer has them: the package packed by `npm pack` (prepack builds the
 * daemon bundle and the compiled package), each example copied beside it at the same relative
 * place as in the repository (so its `"smart-mirror": "file:../../smart-mirror-<v>.tgz"` resolves),
 * and installed with `npm ci --offline` from its committed lockfile: every package comes from
 * the npm cache the repository's own `npm ci` filled (scripts/lockExamples.mjs keeps the
 * lockfiles in step), so this works on a fresh CI machine without a second download.
 *
 * Used by the example tests (test/pulumi/examples.test.ts) and `npm run typecheck`
 * (scripts/typecheckExamples.ts). An install is reused while the tarball, package.json and
 * lockfile are byte-identical (npm pack output is reproducible).
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

export const REPO = path.resolve(__dirname, "../..");
export const WORKSPACE = path.join(REPO, ".cache", "examples");

export function exampleNames(): string[] {
  // The Node.js examples (a package.json that installs the tarball); examples/yaml uses the
  // any-language plugin instead and is checked against the provider's schema (test/provider).
  return fs
    .readdirSync(path.join(REPO, "examples"))
    .filter((n) => fs.existsSync(path.join(REPO, "examples", n, "Pulumi.yaml")) && fs.existsSync(path.join(REPO, "examples", n, "package.json")))
    .sort();
}

function sha256(file: string): string {
  return createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

export interface PackResult {
  tarball: string;
  files: string[];
}

/**
 * `npm pack` of the repository into the workspace. With scripts, prepack builds first (as for
 * any `npm pack`); without, it packs what lib/ and dist/ hold (for the list check after a build).
 */
export function packPackage(opts: { scripts: boolean; dryRun?: boolean }): PackResult {
  fs.mkdirSync(WORKSPACE, { recursive: true });
  const args = ["pack", "--json", "--pack-destination", WORKSPACE, ...(opts.scripts ? [] : ["--ignore-scripts"]), ...(opts.dryRun ? ["--dry-run"] : [])];
  let out: string;
  try {
    out = execFileSync("npm", args, { cwd: REPO, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20 });
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string };
    throw new Error(`npm ${args.join(" ")} failed (prepack: npm run build && npm run build:package):\n${err.stderr ?? ""}${err.stdout ?? ""}`);
  }
  // Anything a build script printed comes before npm's JSON.
  const [info] = JSON.parse(out.slice(out.indexOf("["))) as { filename: string; files: { path: string }[] }[];
  return { tarball: path.join(WORKSPACE, info.filename), files: info.files.map((f) => f.path).sort() };
}

function copyExample(name: string, dest: string): void {
  const src = path.join(REPO, "examples", name);
  fs.mkdirSync(dest, { recursive: true });
  for (const entry of fs.readdirSync(src)) {
    if (entry === "node_modules" || entry === "bin") continue;
    fs.cpSync(path.join(src, entry), path.join(dest, entry), { recursive: true });
  }
}

/** The example copied into the workspace and installed from the tarball; returns its folder. */
export function installExample(name: string, tarball: string): string {
  const dir = path.join(WORKSPACE, "examples", name);
  const expected = path.join(WORKSPACE, path.basename(tarball));
  if (path.resolve(tarball) !== expected) throw new Error(`the tarball must be in ${WORKSPACE} (the examples name it ../../${path.basename(tarball)})`);
  copyExample(name, dir);
  const stampFile = path.join(dir, "node_modules", ".installed-from");
  const stamp = [tarball, path.join(dir, "package.json"), path.join(dir, "package-lock.json")].map(sha256).join(" ");
  if (fs.existsSync(stampFile) && fs.readFileSync(stampFile, "utf8") === stamp) return dir;
  try {
    execFileSync("npm", ["ci", "--offline", "--no-audit", "--no-fund"], { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string };
    throw new Error(
      `npm ci --offline in ${dir} failed; if a package is not in the npm cache, examples/${name}/package-lock.json drifted from the root lockfile: ` +
        `run \`npm pack && node scripts/lockExamples.mjs\`.\n${err.stderr ?? ""}${err.stdout ?? ""}`,
    );
  }
  fs.writeFileSync(stampFile, stamp);
  return dir;
}
