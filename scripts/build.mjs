// Bundles the daemon into one file that runs with plain `node` (>= 18) and no native add-ons:
// ssh2's optional native helpers (cpu-features, sshcrypto) are left out; ssh2 falls back
// to pure JS / node:crypto when they are missing.
import { build } from "esbuild";

await build({
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
});
