/**
 * A mirror home for tests: the mirror's own SSH key (authorized on the given primary as a
 * read-only key, as "approving the mirror" does) and the pinned host key.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Primary } from "./primary";
import { tempDir } from "./resources";

export interface MirrorHome {
  home: string;
  keyFile: string;
  publicKey: string;
}

export async function makeMirrorHome(primary: Primary, opts: { authorize?: boolean } = {}): Promise<MirrorHome> {
  const home = tempDir("mirror-home");
  const sshDir = path.join(home, "shared", "ssh");
  fs.mkdirSync(sshDir, { recursive: true, mode: 0o700 });
  const keyFile = path.join(sshDir, "id_ed25519");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "mirror@test", "-f", keyFile]);
  fs.chmodSync(keyFile, 0o600);
  const publicKey = fs.readFileSync(`${keyFile}.pub`, "utf8").trim();
  if (opts.authorize !== false) await primary.authorizeKey(publicKey, { readOnly: true });
  return { home, keyFile, publicKey };
}
