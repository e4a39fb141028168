/**
 * The bench's primary Git server: a real OpenSSH sshd serving bare repositories the way
 * Bitbucket does over SSH, at `ssh://smgit@127.0.0.1:PORT/PROJECT/repo.git`.
 *
 *     const primary = await startPrimary();
 *     const bare = await primary.createRepo("PRJ", "repo");          // a path under reposRoot
 *     await git(["ls-remote", primary.sshUrl("PRJ", "repo")], { env: primary.gitEnv() });
 *     await primary.restart();                                       // same port, same keys
 *
 * How a request flows (each hop exists for a reason):
 *
 *   sshd (one per primary, own config, host key, authorized_keys, port; run as root)
 *     -> the shared account `smgit`, login shell /usr/bin/git-shell (no real shell: sshd runs
 *        every command through the login shell, and root's .bashrc would cost ~0.8 s a session)
 *     -> ForceCommand `bench-primary-dispatch REPOS_ROOT GITCONFIG`: git-shell runs programs
 *        without a slash from ~/git-shell-commands/, passing the arguments on. The arguments
 *        carry this primary's repos root, so many primaries can share the one account.
 *     -> the dispatcher checks $SSH_ORIGINAL_COMMAND (only git-upload-pack, git-receive-pack,
 *        git-upload-archive with one quoted absolute path, no "." components), maps
 *        '/PROJECT/repo.git' onto REPOS_ROOT and execs the git command there.
 *
 * Only root can run this (sshd must switch to the account; the account may have to be created):
 * startPrimary throws a message naming what is missing otherwise.
 *
 * Repositories belong to the account. Code that writes to them directly as root should use
 * repos.ts (it gives new files back to the owner) or call chownTree itself.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { chownTree, git, GitEnv, initBare, isolatedGitEnv, Remote } from "./repos";
import { freePort, onCleanup, spawnTracked, tempDir, TrackedProcess, waitFor } from "./resources";

const run = promisify(execFile);

export const SSHD = "/usr/sbin/sshd";
export const GIT_SHELL = "/usr/bin/git-shell";
export const SSH_KEYGEN = "/usr/bin/ssh-keygen";
export const SSH = "/usr/bin/ssh";
/** The dedicated account every primary logs clients into. */
export const DEFAULT_PRIMARY_USER = "smgit";
/** Serialises creating/adjusting the account across concurrent test workers. */
const ACCOUNT_LOCK = "/run/lock/smart-mirror-bench-account.lock";
const DISPATCH_NAME = "bench-primary-dispatch";

export interface PrimaryOptions {
  /** Address clients connect to (and that known_hosts names). Default 127.0.0.1. */
  host?: string;
  /** Address sshd listens on. Default: host. */
  listenAddress?: string;
  /** Port. Default: a free port on the host's loopback (inside a fresh namespace any port is free). */
  port?: number;
  /** Command prefix sshd is started through, e.g. ["ip", "netns", "exec", "NS"]. It must exec
   * (not fork) or at least keep sshd its descendant, so stop() can find sshd's processes. */
  wrap?: string[];
  /** Account clients log in as. Default "smgit"; created when missing. */
  user?: string;
  /** Extra public key lines ("ssh-ed25519 AAAA... comment") authorized with read/write access. */
  authorizedKeys?: string[];
  /** Extra sshd_config lines, appended (sshd takes the first value of a keyword, so these can
   * only add settings). */
  sshdConfig?: string[];
  /** Name of the temp dir (default "primary"). */
  label?: string;
  /** Count the SSH sessions (channels running a command) sshd starts: sshd runs with
   * `-o LogLevel=VERBOSE` (the command line wins over the config's INFO) and its "Starting
   * session" lines are counted; see Primary.sessionsStarted. */
  countSessions?: boolean;
}

export interface AuthorizeOptions {
  /** The key may fetch but not push (git-receive-pack is refused). */
  readOnly?: boolean;
}

export interface Primary {
  /** Address and port clients use. */
  host: string;
  port: number;
  /** Account in the URL. */
  user: string;
  /** `ssh-ed25519 AAAA...`: the primary's public host key, what a client pins. */
  hostKeyLine: string;
  /** `[127.0.0.1]:PORT ssh-ed25519 AAAA...`: the known_hosts line for host:port. */
  knownHostsLine: string;
  /** File holding knownHostsLine. */
  knownHostsPath: string;
  /** A private key (OpenSSH format, no passphrase, mode 0600, owned by root) authorized read/write. */
  clientKeyPath: string;
  /** Its public key line. */
  clientPublicKey: string;
  /** Where repositories live: /PROJECT/repo.git over SSH is reposRoot/PROJECT/repo.git on disk. */
  reposRoot: string;
  /** This primary's scratch dir (config, keys, logs); under the bench run root. */
  dir: string;
  /** `ssh://user@host:port/PROJECT/slug.git` */
  sshUrl(project: string, slug: string): string;
  /** The on-disk bare path of PROJECT/slug. */
  repoPath(project: string, slug: string): string;
  /** Create an empty bare repository (HEAD -> main) owned by the account; returns its path. */
  createRepo(project: string, slug: string, opts?: { initialBranch?: string }): Promise<string>;
  /** Copy an existing bare repository (e.g. from ensureLargeRepo) in as PROJECT/slug; returns its path. */
  importRepo(project: string, slug: string, sourceBare: string): Promise<string>;
  /** URL and env for repos.ts (workingClone, push targets). */
  remote(project: string, slug: string): Remote;
  /**
   * Complete environment for a git client talking to this primary: isolatedGitEnv() plus
   * GIT_SSH_COMMAND using clientKeyPath, BatchMode, StrictHostKeyChecking=yes and a
   * UserKnownHostsFile holding only this primary's key; nothing from ~/.ssh or an agent.
   */
  gitEnv(extra?: GitEnv): GitEnv;
  /** Arguments for running /usr/bin/ssh against this primary directly (append the command). */
  sshArgs(opts?: { knownHostsPath?: string; identityFile?: string }): string[];
  /** Authorize one more public key (effective for the next connection, no restart). */
  authorizeKey(publicKeyLine: string, opts?: AuthorizeOptions): Promise<void>;
  /** SSH sessions (one per git command run, whatever connection carries it) started since the
   * primary started; always 0 unless started with countSessions. Survives restart(). */
  sessionsStarted(): number;
  /** Is sshd up? */
  running(): boolean;
  /** Stop sshd and kill every process it started (open sessions too): "the primary is down". */
  stop(): Promise<void>;
  /** Start again (stopping first if running) on the same port with the same keys and repos. */
  restart(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Pure parts: prerequisites, rendering, quoting.

export interface HostFacts {
  uid: number;
  has(file: string): boolean;
}

/** What stops startPrimary on this machine, as sentences naming the fix; empty when nothing. */
export function missingPrerequisites(facts: HostFacts, user = DEFAULT_PRIMARY_USER): string[] {
  const missing: string[] = [];
  if (!facts.has(SSHD)) missing.push(`${SSHD} is missing (install the openssh-server package)`);
  if (!facts.has(SSH_KEYGEN) || !facts.has(SSH)) missing.push(`${SSH_KEYGEN} or ${SSH} is missing (install the openssh-client package)`);
  if (!facts.has(GIT_SHELL)) missing.push(`${GIT_SHELL} is missing (install the git package)`);
  if (facts.uid !== 0) {
    missing.push(
      `root is required (running as uid ${facts.uid}): sshd must run as root to log clients in as the ` +
        `dedicated account '${user}' (login shell ${GIT_SHELL}), and that account is created when missing`,
    );
  }
  return missing;
}

/** Single-quote for sh (and git-shell's split_cmdline, which follows the same rules). */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The known_hosts host field: `host` on port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

export interface SshCommandOptions {
  identityFile: string;
  knownHostsPath: string;
}

/** ssh options that make a client use exactly this key and this pinned host key, never prompt,
 * and read nothing from ~/.ssh, /etc/ssh/ssh_config or an agent. */
export function sshClientOptions(o: SshCommandOptions): string[] {
  const opt = (kv: string) => ["-o", kv];
  return [
    "-F", "/dev/null",
    "-i", o.identityFile,
    ...opt("IdentitiesOnly=yes"),
    ...opt("IdentityAgent=none"),
    ...opt("BatchMode=yes"),
    ...opt("StrictHostKeyChecking=yes"),
    ...opt(`UserKnownHostsFile=${o.knownHostsPath}`),
    ...opt("GlobalKnownHostsFile=/dev/null"),
    ...opt("UpdateHostKeys=no"),
    ...opt("ControlMaster=no"),
    ...opt("ControlPath=none"),
    ...opt("ConnectTimeout=20"),
    ...opt("LogLevel=ERROR"),
  ];
}

/** GIT_SSH_COMMAND for sshClientOptions (git runs it through sh, hence the quoting). */
export function gitSshCommand(o: SshCommandOptions): string {
  return [SSH, ...sshClientOptions(o)].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : shellQuote(a))).join(" ");
}

export interface SshdConfigInput {
  listenAddress: string;
  port: number;
  user: string;
  hostKeyPath: string;
  authorizedKeysPath: string;
  pidFile: string;
  reposRoot: string;
  gitConfigPath: string;
  extra?: string[];
}

/** sshd_config for one primary. Every line is deliberate; see the comments. */
export function renderSshdConfig(c: SshdConfigInput): string {
  return [
    `# smart-mirror bench primary (generated by testbed/primary.ts)`,
    `ListenAddress ${c.listenAddress.includes(":") ? `[${c.listenAddress}]` : c.listenAddress}:${c.port}`,
    `HostKey ${c.hostKeyPath}`,
    `PidFile ${c.pidFile}`,
    // Per-primary key file under /tmp: StrictModes would reject it (/tmp is world-writable),
    // and the account's home is shared by all primaries, so keys cannot live there.
    `AuthorizedKeysFile ${c.authorizedKeysPath}`,
    `StrictModes no`,
    `AllowUsers ${c.user}`,
    `AuthenticationMethods publickey`,
    `PubkeyAuthentication yes`,
    `PasswordAuthentication no`,
    `KbdInteractiveAuthentication no`,
    `HostbasedAuthentication no`,
    `PermitRootLogin no`,
    // No PAM: nothing from /etc/pam.d (and no "account locked" surprises beyond sshd's own check).
    `UsePAM no`,
    `UseDNS no`,
    `PermitTTY no`,
    `DisableForwarding yes`,
    `PermitTunnel no`,
    `PrintMotd no`,
    `PrintLastLog no`,
    // Protocol v2 is negotiated through this variable (git passes it with SendEnv).
    `AcceptEnv GIT_PROTOCOL`,
    // Read-only keys carry environment="SMGIT_ACCESS=read" in authorized_keys.
    `PermitUserEnvironment SMGIT_ACCESS`,
    // Benchmarks open many connections at once, the sync daemon many channels on one.
    `MaxStartups 256`,
    `MaxSessions 128`,
    `LoginGraceTime 30`,
    `LogLevel INFO`,
    `ForceCommand ${DISPATCH_NAME} ${c.reposRoot} ${c.gitConfigPath}`,
    ...(c.extra ?? []),
    ``,
  ].join("\n");
}

/**
 * The program sshd's ForceCommand reaches through git-shell. POSIX sh, so a session costs
 * one small exec before git. Arguments: REPOS_ROOT GITCONFIG.
 */
export const DISPATCH_SCRIPT = `#!/bin/sh
# Installed by smart-mirror's testbed/primary.ts; run by sshd's ForceCommand via git-shell.
# Maps "git-upload-pack '/PROJECT/repo.git'" onto REPOS_ROOT/PROJECT/repo.git, refuses the rest.
refuse() { printf 'bench primary: refused: %s\\n' "$1" >&2; exit 1; }
root=\${1-}
[ -n "$root" ] && [ -d "$root" ] || refuse "no repository root configured"
cmd=\${SSH_ORIGINAL_COMMAND-}
case $cmd in
  "git-upload-pack '"*"'"|"git-receive-pack '"*"'"|"git-upload-archive '"*"'") ;;
  *) refuse "only git-upload-pack, git-receive-pack and git-upload-archive with one quoted path are allowed" ;;
esac
verb=\${cmd%% *}
repo=\${cmd#* \\'}
repo=\${repo%\\'}
case $repo in
  *[!A-Za-z0-9._/~-]*) refuse "repository path may only contain A-Z a-z 0-9 . _ / ~ -" ;;
esac
repo=/\${repo#/}
case $repo/ in
  */.*|*//*) refuse "repository path components must not be empty or start with a dot" ;;
esac
if [ "$verb" = git-receive-pack ] && [ "\${SMGIT_ACCESS-}" = read ]; then
  refuse "this key has read access only"
fi
# The primary's own git config (no autogc...), none of the host's.
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL="\${2-/dev/null}"
exec git "\${verb#git-}" "$root$repo"
`;

/** Creates or adjusts the account under a lock; prints "uid gid home". Args: USER SHELL. */
const ENSURE_ACCOUNT_SCRIPT = `set -eu
user=$1 shell=$2
if ! getent passwd "$user" >/dev/null; then
  useradd --system --user-group --create-home --home-dir "/var/lib/$user" --shell "$shell" "$user"
fi
[ "$(getent passwd "$user" | cut -d: -f7)" = "$shell" ] || usermod --shell "$shell" "$user"
# With UsePAM no, sshd refuses accounts whose password field starts with "!" (locked), which is
# what useradd leaves; "*" means "no password" without being locked.
case "$(getent shadow "$user" | cut -d: -f2)" in '!'*) usermod --password '*' "$user" ;; esac
home=$(getent passwd "$user" | cut -d: -f6)
mkdir -p "$home/git-shell-commands"
chown "$user:" "$home" 2>/dev/null || true
echo "$(id -u "$user") $(id -g "$user") $home"
`;

// ---------------------------------------------------------------------------------------------
// The account (shared by all primaries of all workers).

interface Account {
  user: string;
  uid: number;
  gid: number;
  home: string;
}

const accounts = new Map<string, Promise<Account>>();

function ensureAccount(user: string): Promise<Account> {
  let p = accounts.get(user);
  if (!p) {
    p = (async () => {
      const { stdout } = await run("flock", [ACCOUNT_LOCK, "sh", "-c", ENSURE_ACCOUNT_SCRIPT, "ensure-account", user, GIT_SHELL]);
      const [uid, gid, home] = stdout.trim().split(" ");
      const account = { user, uid: Number(uid), gid: Number(gid), home };
      await installDispatcher(account);
      return account;
    })();
    p.catch(() => accounts.delete(user));
    accounts.set(user, p);
  }
  return p;
}

/** Write the dispatcher if it differs, atomically (other primaries may be running it). */
async function installDispatcher(a: Account): Promise<void> {
  const target = path.join(a.home, "git-shell-commands", DISPATCH_NAME);
  const current = await fs.promises.readFile(target, "utf8").catch(() => "");
  if (current === DISPATCH_SCRIPT) return;
  const tmp = `${target}.tmp-${process.pid}`;
  await fs.promises.writeFile(tmp, DISPATCH_SCRIPT, { mode: 0o755 });
  await fs.promises.chmod(tmp, 0o755);
  await fs.promises.rename(tmp, target);
}

// ---------------------------------------------------------------------------------------------
// Processes: sshd detaches every connection into its own session (setsid), so killing sshd's
// process group leaves open sessions running. stop() walks sshd's descendants instead.

function childrenByParent(): Map<number, number[]> {
  const map = new Map<number, number[]>();
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, "utf8");
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so parse after the last ")".
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = map.get(ppid) ?? [];
      list.push(Number(name));
      map.set(ppid, list);
    } catch {
      /* exited while we looked */
    }
  }
  return map;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

/** SIGKILL pid and all its descendants. Freezes them (SIGSTOP) and walks again until a walk
 * finds nobody new, so nothing forks a child we would miss. */
function killTree(pid: number): void {
  const tree = new Set<number>([pid]);
  for (let round = 0; round < 100; round++) {
    for (const p of tree) signal(p, "SIGSTOP");
    const kids = childrenByParent();
    const size = tree.size;
    const queue = [...tree];
    while (queue.length > 0) {
      for (const k of kids.get(queue.pop() as number) ?? []) {
        if (!tree.has(k)) {
          tree.add(k);
          queue.push(k);
        }
      }
    }
    if (tree.size === size) break;
  }
  for (const p of tree) signal(p, "SIGKILL");
}

// ---------------------------------------------------------------------------------------------

// "~user" personal projects as Bitbucket has them (git sends ssh://host/~u/r.git as '~u/r.git').
const NAME = /^~?[A-Za-z0-9_][A-Za-z0-9._-]*$/;

function checkName(kind: string, value: string): void {
  if (!NAME.test(value)) throw new Error(`${kind} must match ${NAME} (got ${JSON.stringify(value)})`);
}

async function keygen(file: string, comment: string): Promise<string> {
  await run(SSH_KEYGEN, ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file]);
  return (await fs.promises.readFile(`${file}.pub`, "utf8")).trim();
}

/** Every directory from / down to dir must be searchable by the account (o+x). */
function checkTraversable(dir: string): void {
  for (let d = dir; ; d = path.dirname(d)) {
    if ((fs.statSync(d).mode & 0o001) === 0) throw new Error(`${d} is not searchable by others (mode o+x); the primary's account cannot reach ${dir}`);
    if (d === path.dirname(d)) return;
  }
}

/** Start a primary. See the module comment for what it is; see Primary for the handle. */
export async function startPrimary(opts: PrimaryOptions = {}): Promise<Primary> {
  const user = opts.user ?? DEFAULT_PRIMARY_USER;
  const missing = missingPrerequisites({ uid: process.getuid?.() ?? -1, has: (f) => fs.existsSync(f) }, user);
  if (missing.length) throw new Error(`startPrimary cannot run here:\n  - ${missing.join("\n  - ")}`);
  checkName("user", user);
  const host = opts.host ?? "127.0.0.1";
  const listenAddress = opts.listenAddress ?? host;

  const [account, port] = await Promise.all([ensureAccount(user), opts.port ?? freePort()]);
  const dir = tempDir(opts.label ?? "primary");
  await fs.promises.chmod(dir, 0o755);
  checkTraversable(dir);
  const reposRoot = path.join(dir, "repos");
  if (/[^A-Za-z0-9._/-]/.test(reposRoot)) throw new Error(`repos root path has characters the dispatcher refuses: ${reposRoot}`);
  await fs.promises.mkdir(reposRoot);
  await fs.promises.chown(reposRoot, account.uid, account.gid);

  const hostKeyPath = path.join(dir, "ssh_host_ed25519_key");
  const clientKeyPath = path.join(dir, "client_ed25519");
  const [hostPub, clientPublicKey] = await Promise.all([keygen(hostKeyPath, "smart-mirror-bench-primary"), keygen(clientKeyPath, "smart-mirror-bench-client")]);
  const hostKeyLine = hostPub.split(" ").slice(0, 2).join(" ");
  const knownHostsLine = `${knownHostsName(host, port)} ${hostKeyLine}`;
  const knownHostsPath = path.join(dir, "known_hosts");
  const authorizedKeysPath = path.join(dir, "authorized_keys");
  const gitConfigPath = path.join(dir, "gitconfig");
  const configPath = path.join(dir, "sshd_config");
  await Promise.all([
    fs.promises.writeFile(knownHostsPath, knownHostsLine + "\n", { mode: 0o644 }),
    fs.promises.writeFile(authorizedKeysPath, [clientPublicKey, ...(opts.authorizedKeys ?? [])].map((k) => k.trim() + "\n").join(""), { mode: 0o644 }),
    // The primary's git: no auto gc racing the tests; filters allowed so partial clones can be tested.
    fs.promises.writeFile(gitConfigPath, "[receive]\n\tautogc = false\n[gc]\n\tauto = 0\n[uploadpack]\n\tallowFilter = true\n[safe]\n\tdirectory = *\n", { mode: 0o644 }),
    fs.promises.writeFile(
      configPath,
      renderSshdConfig({ listenAddress, port, user, hostKeyPath, authorizedKeysPath, pidFile: path.join(dir, "sshd.pid"), reposRoot, gitConfigPath, extra: opts.sshdConfig }),
    ),
  ]);

  let proc: { sshd: TrackedProcess; killSessions: () => Promise<void> } | undefined;
  let sessions = 0;
  const isUp = () => proc !== undefined && proc.sshd.child.exitCode === null && proc.sshd.child.signalCode === null;

  const stop = async () => {
    if (!proc) return;
    const { sshd, killSessions } = proc;
    proc = undefined;
    await killSessions();
    await sshd.stop();
  };

  const start = async () => {
    // sshd refuses to start without its privilege separation dir, which boot (systemd's
    // RuntimeDirectory) normally makes: a fresh machine or container may not have it.
    fs.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
    const argv = [SSHD, "-D", "-e", "-f", configPath, ...(opts.countSessions ? ["-o", "LogLevel=VERBOSE"] : [])];
    const [cmd, ...args] = [...(opts.wrap ?? []), ...argv];
    const sshd = spawnTracked(cmd, args);
    if (opts.countSessions) {
      // Lines may arrive split across chunks: count whole lines only.
      let partial = "";
      sshd.child.stderr?.on("data", (b: Buffer) => {
        const lines = (partial + b.toString()).split("\n");
        partial = lines.pop() ?? "";
        for (const l of lines) if (l.includes("Starting session: ")) sessions++;
      });
    }
    // Registered after spawnTracked's own cleanup, so it runs first (cleanups run last first):
    // sessions are found while sshd still is their ancestor.
    const killSessions = onCleanup(() => {
      if (sshd.child.pid !== undefined && sshd.child.exitCode === null && sshd.child.signalCode === null) killTree(sshd.child.pid);
    });
    proc = { sshd, killSessions };
    // "Server listening on ..." is logged once the socket is bound; it also works inside a
    // network namespace, where the test process cannot probe the port.
    await waitFor(
      `sshd of primary ${dir} to listen`,
      () => {
        if (sshd.child.exitCode !== null || sshd.child.signalCode !== null) throw new Error(`sshd exited: ${sshd.output().trim()}`);
        return sshd.output().includes("Server listening on");
      },
      20000,
      10,
    ).catch(async (e) => {
      await stop();
      throw e;
    });
  };

  await start();

  const repoPath = (project: string, slug: string) => {
    checkName("project", project);
    checkName("slug", slug);
    return path.join(reposRoot, project, `${slug}.git`);
  };
  const gitEnv = (extra: GitEnv = {}) => isolatedGitEnv({ GIT_SSH_COMMAND: gitSshCommand({ identityFile: clientKeyPath, knownHostsPath }), GIT_SSH_VARIANT: "ssh", ...extra });
  const sshUrl = (project: string, slug: string) => {
    repoPath(project, slug);
    const h = host.includes(":") ? `[${host}]` : host;
    return `ssh://${user}@${h}:${port}/${project}/${slug}.git`;
  };
  const giveToAccount = async (project: string, repo: string) => {
    await chownTree(path.join(reposRoot, project), account.uid, account.gid);
    return repo;
  };

  return {
    host,
    port,
    user,
    hostKeyLine,
    knownHostsLine,
    knownHostsPath,
    clientKeyPath,
    clientPublicKey,
    reposRoot,
    dir,
    sshUrl,
    repoPath,
    async createRepo(project, slug, o = {}) {
      const repo = repoPath(project, slug);
      await initBare(repo, o);
      return giveToAccount(project, repo);
    },
    async importRepo(project, slug, sourceBare) {
      const repo = repoPath(project, slug);
      await fs.promises.mkdir(path.dirname(repo), { recursive: true });
      // --no-hardlinks: chown must not change the source's files (they would share inodes).
      await git(["clone", "--quiet", "--mirror", "--no-hardlinks", sourceBare, repo]);
      // Not `git remote remove`: with a mirror's refs/*:refs/* refspec it would delete every ref.
      await git(["--git-dir", repo, "config", "--remove-section", "remote.origin"]);
      return giveToAccount(project, repo);
    },
    remote: (project, slug) => ({ url: sshUrl(project, slug), env: gitEnv() }),
    gitEnv,
    sshArgs: (o = {}) => [
      ...sshClientOptions({ identityFile: o.identityFile ?? clientKeyPath, knownHostsPath: o.knownHostsPath ?? knownHostsPath }),
      "-p",
      String(port),
      `${user}@${host}`,
    ],
    async authorizeKey(publicKeyLine, o = {}) {
      const line = publicKeyLine.trim();
      if (!/^(ssh-|ecdsa-|sk-)\S+ \S+/.test(line) || line.includes("\n")) throw new Error(`not a public key line: ${JSON.stringify(line)}`);
      await fs.promises.appendFile(authorizedKeysPath, `${o.readOnly ? 'environment="SMGIT_ACCESS=read" ' : ""}${line}\n`);
    },
    sessionsStarted: () => sessions,
    running: isUp,
    stop,
    async restart() {
      await stop();
      await start();
    },
  };
}
