/**
 * What people run today instead of smart-mirror, timed the same way on the same primary:
 * a loop of `git fetch --prune` (or `git clone --mirror`) per repository, each over a new SSH
 * connection, and the same loop over one OpenSSH ControlMaster connection.
 *
 * The baseline clients use the same pinned-key, no-config ssh options as the bench primary's
 * own clients (sshClientOptions), so only the connection strategy differs.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { gitSshCommand, knownHostsName, Primary, SSH, sshClientOptions } from "../testbed/primary";
import { git, GitEnv, isolatedGitEnv } from "../testbed/repos";
import { spawnTracked, tempDir, TrackedProcess, waitFor } from "../testbed/resources";
import type { RepoId } from "../sync/types";
import { upstreamPath } from "../sync/upstream/upstreamPool";

/** Where a baseline client connects (the primary itself, or a latency proxy in front of it). */
export interface SshTarget {
  host: string;
  port: number;
  user: string;
  keyFile: string;
  /** A known_hosts file naming host:port with the primary's key. */
  knownHostsPath: string;
}

/** A target for `primary` reached at host:port (default: the primary's own address). */
export function sshTarget(primary: Primary, keyFile: string, at: { host: string; port: number } = primary): SshTarget {
  const knownHostsPath = path.join(tempDir("known-hosts"), "known_hosts");
  fs.writeFileSync(knownHostsPath, `${knownHostsName(at.host, at.port)} ${primary.hostKeyLine}\n`);
  return { host: at.host, port: at.port, user: primary.user, keyFile, knownHostsPath };
}

export function sshUrl(t: SshTarget, id: RepoId): string {
  return `ssh://${t.user}@${t.host}:${t.port}${upstreamPath(id.project, id.slug)}`;
}

/** git's environment for a new SSH connection per command. */
export function plainSshEnv(t: SshTarget): GitEnv {
  return isolatedGitEnv({ GIT_SSH_COMMAND: gitSshCommand({ identityFile: t.keyFile, knownHostsPath: t.knownHostsPath }), GIT_SSH_VARIANT: "ssh" });
}

export interface ControlMaster {
  env: GitEnv;
  stop(): Promise<void>;
}

/**
 * One OpenSSH master connection (ssh -M -N, in the foreground, tracked like any bench server)
 * and the git environment whose ssh multiplexes over it. The socket path is under the bench
 * root, so the leak check sees a master left running.
 */
export async function startControlMaster(t: SshTarget): Promise<ControlMaster> {
  const controlPath = path.join(tempDir("cm"), "m");
  // ssh uses the first value given for an option: ours come before sshClientOptions' ControlPath=none.
  const cm = (master: boolean) => ["-o", `ControlPath=${controlPath}`, "-o", `ControlMaster=${master ? "yes" : "no"}`];
  const master: TrackedProcess = spawnTracked(SSH, [...cm(true), "-N", ...sshClientOptions({ identityFile: t.keyFile, knownHostsPath: t.knownHostsPath }), "-p", String(t.port), `${t.user}@${t.host}`]);
  await waitFor(
    "the ControlMaster socket",
    () => {
      if (master.child.exitCode !== null) throw new Error(`ssh master exited: ${master.output()}`);
      return fs.existsSync(controlPath);
    },
    20000,
    10,
  );
  const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  const ssh = [SSH, ...cm(false), ...sshClientOptions({ identityFile: t.keyFile, knownHostsPath: t.knownHostsPath })].map(quote).join(" ");
  return { env: isolatedGitEnv({ GIT_SSH_COMMAND: ssh, GIT_SSH_VARIANT: "ssh" }), stop: () => master.stop() };
}

/**
 * Bare mirror clones of `ids` made locally from the primary's disk (fast, no SSH), with their
 * origin pointed at the SSH URL: the state a `git clone --mirror` + cron script keeps.
 */
export async function localMirrorClones(primary: Primary, t: SshTarget, ids: RepoId[]): Promise<Map<RepoId, string>> {
  const root = tempDir("baseline-mirrors");
  const out = new Map<RepoId, string>();
  for (const id of ids) {
    const dir = path.join(root, id.project, `${id.slug}.git`);
    await git(["clone", "--quiet", "--mirror", primary.repoPath(id.project, id.slug), dir]);
    await git(["--git-dir", dir, "remote", "set-url", "origin", sshUrl(t, id)]);
    out.set(id, dir);
  }
  return out;
}

/** `git fetch --prune origin` in each clone, one after the other; total wall ms. */
export async function fetchLoop(clones: Map<RepoId, string>, env: GitEnv): Promise<number> {
  const t0 = performance.now();
  for (const dir of clones.values()) await git(["--git-dir", dir, "fetch", "--prune", "--quiet", "origin"], { env });
  return performance.now() - t0;
}

/**
 * `git clone --mirror` of each repository into a fresh dir, `parallel` at a time (1: one after
 * the other, as a shell loop does); total wall ms.
 */
export async function cloneLoop(t: SshTarget, ids: RepoId[], env: GitEnv, parallel = 1): Promise<number> {
  const root = tempDir("baseline-clones");
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const id = ids[next++];
      await git(["clone", "--quiet", "--mirror", sshUrl(t, id), path.join(root, id.project, `${id.slug}.git`)], { env });
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, ids.length) }, worker));
  return performance.now() - t0;
}
