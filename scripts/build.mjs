// Bundles the daemon into one file that runs with plain `node` (>= 18) and no native add-ons:
// ssh2's optional native helpers (cpu-features, sshcrypto) are left out; ssh2 falls back
// to pure JS / node:crypto when they are missing.
//
// The files are written whole under a temporary name and renamed into place: `npm pack`
// (prepack) rebuilds while tests may be starting the daemon from dist/ (a reader sees the old
// file or the new one, never half of one).
import * as fs from "node:fs";
import { build } from "esbuild";

const result = await build({
  entryPoints: ["sync/main.ts"],
  outfile: "dist/smart-mirror.js",
  bundle: true,
  platform: "node",
  target: "node18",
  format: "cjs",
  sourcemap: "linked",
  legalComments: "none",
  banner: { js: "#!/usr/bin/env node" },
  external: ["cpu-features", "*.node"],
  logLevel: "warning",
  write: false,
});
fs.mkdirSync("dist", { recursive: true });
for (const file of result.outputFiles) {
  const temp = `${file.path}.${process.pid}.tmp`;
  fs.writeFileSync(temp, file.contents, { mode: file.path.endsWith(".js") ? 0o755 : 0o644 });
  fs.renameSync(temp, file.path);
}
