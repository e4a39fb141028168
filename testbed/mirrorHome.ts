/**
 * A mirror home for tests: the mirror's own SSH key (authorized on the given primary as a
 * read-only key, as "approving the mirror" does) and the pinned host key.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { homePaths } from "../sync/homeLayout";
import type { Primary } from "./primary";
import { tempDir } from "./resources";

export interface MirrorHome {
  home: string;
  keyFile: string;
  publicKey: string;
}

export async function makeMirrorHome(primary: Primary, opts: { authorize?: boolean } = {}): Promise<MirrorHome> {
  const home = tempDir("mirror-home");
  const { sshDir, keyFile } = homePaths(home);
  fs.mkdirSync(sshDir, { recursive: true, mode: 0o700 });
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "mirror@test", "-f", keyFile]);
  fs.chmodSync(keyFile, 0o600);
  const publicKey = fs.readFileSync(`${keyFile}.pub`, "utf8").trim();
  if (opts.authorize !== false) await primary.authorizeKey(publicKey, { readOnly: true });
  return { home, keyFile, publicKey };
}

export interface PropertiesOptions {
  repos: Array<{ project: string; slug: string }>;
  listen: string;
  extra?: Record<string, string>;
  webhookSecret?: string;
}

/** Writes DIR/shared/bitbucket.properties for a static catalog against a bench primary. */
export function writeMirrorProperties(mh: MirrorHome, primary: Primary, o: PropertiesOptions): string {
  const lines: Record<string, string> = {
    "setup.displayName": "Test mirror",
    "setup.baseUrl": "https://mirror.test",
    "plugin.mirroring.upstream.url": "https://primary.test",
    "mirror.upstream.sshUrl": `ssh://${primary.user}@${primary.host}:${primary.port}`,
    "mirror.upstream.hostKeys": primary.hostKeyLine,
    "mirror.catalog": "static",
    "mirror.catalog.repos": o.repos.map((r) => `${r.project}/${r.slug}`).join(","),
    "mirror.serve.listen": o.listen,
    "mirror.serve.auth": "anonymous",
    ...o.extra,
  };
  if (o.webhookSecret !== undefined) {
    const secretFile = homePaths(mh.home).webhookSecretFile;
    fs.mkdirSync(path.dirname(secretFile), { recursive: true, mode: 0o700 });
    fs.writeFileSync(secretFile, o.webhookSecret, { mode: 0o600 });
    lines["mirror.webhook.secretFile"] = secretFile;
  }
  const file = homePaths(mh.home).properties;
  fs.writeFileSync(file, Object.entries(lines).map(([k, v]) => `${k}=${v}`).join("\n") + "\n");
  return file;
}
