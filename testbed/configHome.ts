/**
 * Mirror homes for the config tests (sync/config, the properties renderer): real directories in
 * the testbed's temp dirs, real keys made by ssh-keygen. No primary: see mirrorHome.ts for a
 * home approved on one.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { tempDir } from "./resources";
import { KEYS } from "../sync/config/keys";
import { homePaths } from "../sync/homeLayout";

/** A fresh OpenSSH public key line ("type base64 comment") of the given type. */
export function freshPublicKey(type: "ed25519" | "ecdsa" | "rsa" = "ed25519"): string {
  const dir = tempDir("cfg-key");
  const file = path.join(dir, "k");
  execFileSync("ssh-keygen", ["-q", "-t", type, ...(type === "rsa" ? ["-b", "2048"] : []), "-N", "", "-C", "test", "-f", file]);
  return fs.readFileSync(`${file}.pub`, "utf8").trim();
}

export interface HomeOptions {
  /** Properties text, written verbatim. */
  properties?: string;
  /** Create DIR/shared/ssh/id_ed25519 (mode 0600) — default true. */
  keyFile?: boolean;
  /** Create DIR/shared/secrets/upstream-token (mode 0600) — default true. */
  tokenFile?: boolean;
}

/** A mirror home under the bench root, with the files a minimal valid config needs. */
export function makeHome(opts: HomeOptions = {}): string {
  const home = tempDir("cfg-home");
  const p = homePaths(home);
  fs.mkdirSync(p.sshDir, { recursive: true });
  fs.mkdirSync(p.secretsDir, { recursive: true });
  if (opts.keyFile ?? true) {
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "mirror", "-f", p.keyFile]);
    fs.chmodSync(p.keyFile, 0o600);
  }
  if (opts.tokenFile ?? true) writeSecret(p.catalogTokenFile, "BBDC-not-a-real-token\n");
  if (opts.properties !== undefined) writeProperties(home, opts.properties);
  return home;
}

export function writeProperties(home: string, text: string): void {
  fs.writeFileSync(homePaths(home).properties, text);
}

export function writeSecret(file: string, content: string, mode = 0o600): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
  fs.chmodSync(file, mode); // explicit: the umask must not decide
}

/** The five always-required keys, valid, as lines; override or drop keys with `changes` (undefined drops). */
export function minimalProperties(hostKey: string, changes: Record<string, string | undefined> = {}): string {
  const base: Record<string, string | undefined> = {
    [KEYS.displayName.name]: "Sydney mirror",
    [KEYS.baseUrl.name]: "https://mirror-syd.example.com",
    [KEYS.upstreamUrl.name]: "https://bitbucket.example.com",
    [KEYS.sshUrl.name]: "ssh://git@bitbucket.example.com:7999",
    [KEYS.hostKeys.name]: hostKey,
    ...changes,
  };
  return Object.entries(base)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${v}`)
    .join("\n") + "\n";
}

/** Every file under dir with its mode, size, mtime and content hash: to prove nothing was written. */
export function snapshotTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of fs.readdirSync(d).sort()) {
      const p = path.join(d, name);
      const st = fs.lstatSync(p);
      const rel = path.relative(dir, p);
      if (st.isDirectory()) {
        out.push(`${rel}/ ${st.mode.toString(8)} ${st.mtimeMs}`);
        walk(p);
      } else {
        out.push(`${rel} ${st.mode.toString(8)} ${st.size} ${st.mtimeMs} ${fs.readFileSync(p).toString("base64")}`);
      }
    }
  };
  walk(dir);
  return out;
}
