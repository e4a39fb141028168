// Regenerates examples/*/package-lock.json from the repository's own lockfile, so every
// package an example installs is one `npm ci` at the root already fetched: the examples then
// install offline from the npm cache (the test harness runs `npm ci --offline` in a copy of
// each), and a fresh CI machine needs no second download.
//
// Needs the package tarball beside the repository's package.json (`npm pack`), since the
// examples depend on "file:../../smart-mirror-<version>.tgz". The tarball's integrity is left
// out of the lockfile on purpose: it changes with every build, and npm would otherwise install
// a stale copy from its cache (it looks tarballs up by integrity).
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { version } = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));
const tarball = path.join(root, `smart-mirror-${version}.tgz`);
if (!fs.existsSync(tarball)) throw new Error(`${tarball} is missing: run \`npm pack\` at the repository root first`);

for (const name of fs.readdirSync(path.join(root, "examples"))) {
  const dir = path.join(root, "examples", name);
  if (!fs.existsSync(path.join(dir, "package.json"))) continue;
  const lockPath = path.join(dir, "package-lock.json");
  fs.copyFileSync(path.join(root, "package-lock.json"), lockPath);
  execFileSync("npm", ["install", "--offline", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund"], { cwd: dir, stdio: "inherit" });
  const lock = JSON.parse(fs.readFileSync(lockPath, "utf8"));
  delete lock.version;
  delete lock.packages[""].version;
  delete lock.packages["node_modules/smart-mirror"].integrity;
  fs.writeFileSync(lockPath, `${JSON.stringify(lock, null, 2)}\n`);
  console.log(`${path.relative(root, lockPath)}: ${Object.keys(lock.packages).length - 1} packages`);
}
