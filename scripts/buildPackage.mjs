// Compiles the npm package's JavaScript and declarations into lib/ (tsconfig.build.json) and
// copies the non-TypeScript files the components read at run time next to their modules.
// `npm pack` runs it through prepack, after the daemon bundle (scripts/build.mjs).
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const lib = path.join(root, "lib");
/** Files read with fs at run time (relative to the repository), shipped beside their compiled modules. */
const ASSETS = ["components/approve/accessKeyScript.mjs"];

fs.rmSync(lib, { recursive: true, force: true });
execFileSync(process.execPath, [path.join(root, "node_modules/typescript/bin/tsc"), "-p", path.join(root, "tsconfig.build.json")], { stdio: "inherit" });
for (const asset of ASSETS) fs.copyFileSync(path.join(root, asset), path.join(lib, asset));
