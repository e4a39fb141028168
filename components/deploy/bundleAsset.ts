/**
 * The daemon bundle as a Pulumi asset whose inputs do not depend on where the checkout lives.
 *
 * A FileAsset records its path in the resource's inputs, and the engine compares assets by
 * path as well as by hash: `pulumi up` from a second checkout (another CI runner, a
 * colleague's clone) showed a diff on the bundle and copied it again although not a byte had
 * changed. So the asset points at a content-addressed copy instead:
 * `/tmp/smart-mirror-bundles-<uid>/<sha256>.js` (os.tmpdir() on Windows), identical for every
 * checkout on the machine and different exactly when the content is.
 *
 * The directory is private (0700, ours, checked): the bundle runs as root on the mirror, so
 * no other local user may plant or swap a file there. A copy whose content does not match its
 * name is rewritten.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export const sha256 = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");

/** The private cache directory (not created here). */
export function bundleCacheDir(): string {
  const base = process.platform === "win32" ? os.tmpdir() : "/tmp";
  return path.join(base, `smart-mirror-bundles-${process.getuid?.() ?? "user"}`);
}

function readBundle(bundlePath: string): Buffer {
  try {
    return fs.readFileSync(bundlePath);
  } catch (e) {
    throw new Error(`smart-mirror: cannot read the daemon bundle ${bundlePath} (${(e as NodeJS.ErrnoException).code}); run \`npm run build\` first, or set deploy.bundlePath`);
  }
}

function privateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.lstatSync(dir);
  const uid = process.getuid?.();
  if (!st.isDirectory() || (uid !== undefined && st.uid !== uid) || (process.platform !== "win32" && (st.mode & 0o077) !== 0)) {
    throw new Error(`smart-mirror: ${dir} is not a private directory of this user (a symlink, someone else's, or group/other accessible); remove it and run again`);
  }
}

/** The bundle's hash and the content-addressed copy a FileAsset should point at. */
export function stableBundle(bundlePath: string, cacheDir: string = bundleCacheDir()): { sha: string; assetPath: string } {
  const data = readBundle(bundlePath);
  const sha = sha256(data);
  privateDir(cacheDir);
  const assetPath = path.join(cacheDir, `${sha}.js`);
  let current: Buffer | undefined;
  try {
    current = fs.readFileSync(assetPath);
  } catch {
    current = undefined;
  }
  if (current === undefined || sha256(current) !== sha) {
    const tmp = `${assetPath}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, data, { mode: 0o600 });
    fs.renameSync(tmp, assetPath);
  }
  return { sha, assetPath };
}
