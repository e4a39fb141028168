/**
 * The OpenSSH side of the link to the primary (fetches and clones run `git` over OpenSSH; scans
 * use ssh2, see upstreamPool.ts): where its known_hosts file and ControlMaster sockets live
 * under the home, and how the shared master connection is closed when the daemon stops.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { homePath } from "../homeLayout";
import { gitEnv } from "./gitEnv";
import { HostKeyMismatchError } from "./upstreamPool";

/**
 * git's environment for fetches from the primary (gitEnv.ts), with its known_hosts and
 * ControlMaster socket under `home`. A master outlives a burst of fetches by 10 minutes.
 */
export function upstreamGitEnv(home: string, keyFile: string): { env: NodeJS.ProcessEnv; controlPath: string } {
  const controlPath = controlPathFor(home);
  const env = gitEnv(process.env, { keyFile, knownHostsFile: knownHostsPath(home), controlPath, controlPersistSec: 600, connectTimeoutSec: 15 });
  return { env, controlPath };
}

export function knownHostsPath(home: string): string {
  return homePath(home, "knownHosts");
}

/**
 * ControlPath must fit a unix socket path (sun_path, 108 bytes) after OpenSSH expands %C
 * (40 hex chars) and adds its temporary ".XXXXXXXXXXXXXXXX" suffix (17) while creating the
 * master: fall back to a short private dir when the home is deep.
 */
export function controlPathFor(home: string): string {
  const p = homePath(home, "controlSockets");
  if (p.length - 2 + 40 + 17 < 104) return p;
  // Per user and home; a dir someone else made (another account, an attacker) is never used.
  const uid = process.getuid?.() ?? 0;
  let short = path.join(os.tmpdir(), `smcm-${uid}-${createHash("sha256").update(home).digest("hex").slice(0, 12)}`);
  fs.mkdirSync(short, { recursive: true, mode: 0o700 });
  const st = fs.lstatSync(short);
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o077) !== 0) short = fs.mkdtempSync(path.join(os.tmpdir(), "smcm-"));
  return path.join(short, "%C");
}

/** Ask every master under `controlPath`'s dir to exit (bounded: 5 s each, errors ignored). */
export function closeControlMaster(controlPath: string, env: NodeJS.ProcessEnv): Promise<void> {
  // `ssh -O exit` needs a destination; any will do since ControlPath's %C is already expanded per host.
  const dir = path.dirname(controlPath);
  let sockets: string[] = [];
  try {
    sockets = fs.readdirSync(dir).filter((f) => f.startsWith(path.basename(controlPath).replace("%C", "")));
  } catch {
    return Promise.resolve();
  }
  return Promise.all(
    sockets.map(
      (s) =>
        new Promise<void>((resolve) => {
          execFile("ssh", ["-F", "/dev/null", "-o", `ControlPath=${path.join(dir, s)}`, "-O", "exit", "mirror-upstream"], { env, timeout: 5000 }, () => resolve());
        }),
    ),
  ).then(() => undefined);
}

/** The short fallback dir in /tmp (controlPathFor) is ours alone: leave nothing behind. */
export function removeFallbackControlDir(controlPath: string): void {
  const cmDir = path.dirname(controlPath);
  if (path.dirname(cmDir) === os.tmpdir() && path.basename(cmDir).startsWith("smcm-")) fs.rmSync(cmDir, { recursive: true, force: true });
}

/**
 * The primary itself is out of reach (or not the host we pinned), as opposed to one
 * repository's trouble: a reconcile stops, and the status says the primary is unreachable.
 */
export function isPrimaryUnreachable(e: unknown): boolean {
  if (e instanceof HostKeyMismatchError) return true;
  return e instanceof Error && /cannot connect to the primary|cannot open a channel to the primary|Not connected|ECONNREFUSED|ETIMEDOUT|EHOSTUNREACH|Connection (refused|closed|reset)|Timed out while waiting for handshake/i.test(e.message);
}
