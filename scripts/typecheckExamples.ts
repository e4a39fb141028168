/**
 * `npm run typecheck` for the examples: each is type-checked with its own tsconfig.json
 * against the package as a consumer installs it (the `npm pack` tarball: compiled .d.ts, not
 * our sources), in the workspace test/pulumi/exampleWorkspace.ts prepares.
 */
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { exampleNames, installExample, packPackage } from "../test/pulumi/exampleWorkspace";

const { tarball } = packPackage({ scripts: true });
for (const name of exampleNames()) {
  const dir = installExample(name, tarball);
  execFileSync(process.execPath, [path.join(dir, "node_modules/typescript/bin/tsc"), "--noEmit", "-p", path.join(dir, "tsconfig.json")], { stdio: "inherit" });
  console.log(`examples/${name}: types check against ${path.basename(tarball)}`);
}
