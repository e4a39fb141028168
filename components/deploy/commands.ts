/**
 * The shell commands a deploy runs on the mirror host, as pure functions: the Pulumi
 * component (@pulumi/command remote.Command) and the over-SSH tests run exactly these strings.
 *
 * The steps:
 *   1. remoteStageCommand  a private (0700, ours) directory for the bundle and the plan
 *   2. copy                the bundle and the plan into it (scp/SFTP, e.g. remote.CopyToRemote)
 *                          to stagedPaths(); the directory's mode keeps the plan private
 *                          whatever mode the copy gives the file
 *   3. remoteApplyCommand  chmod 0600 the plan, run `node BUNDLE apply --plan PLAN`, delete
 *                          the plan (whatever apply's outcome; apply's exit code is kept)
 *
 * The plan should reference the staged bundle with `sourcePath` (installed to its final
 * path and watched by the daemon's service like any plan file), so a new bundle restarts the
 * daemon and an unchanged one does not.
 *
 * No secret ever appears in a command (commands end up in Pulumi state, process lists and
 * shell history): secrets travel inside the plan file only. These functions take paths and
 * flags, never content, so that holds by construction.
 */

export interface StageArgs {
  /** Absolute directory on the host for the bundle and the plan, e.g. /var/lib/smart-mirror-deploy. */
  stageDir: string;
}

export interface ApplyCommandArgs {
  /** Absolute path of the bundle on the host (staged, or already installed). */
  bundlePath: string;
  /** Absolute path of the plan on the host. */
  planPath: string;
  /** Default /usr/bin/node. */
  nodePath?: string;
  /** Apply under this directory instead of / (tests). */
  root?: string;
  /** Service manager; default: the agent's (systemctl without root, exec with root). */
  services?: "systemctl" | "exec";
  dryRun?: boolean;
  /** Keep the plan after apply (it stays 0600 in the 0700 stage dir); default false: deleted. */
  keepPlan?: boolean;
  /** Prefix `sudo -n` (the SSH user is not root, e.g. "ubuntu" or "admin" on cloud images). */
  sudo?: boolean;
}

/** POSIX single-quoting: the word reaches the program byte for byte. */
export function shellQuote(word: string): string {
  if (word.includes("\0")) throw new Error("a shell word cannot contain NUL");
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

function absolute(name: string, p: string): string {
  if (!p.startsWith("/")) throw new Error(`${name} must be an absolute path on the host (got ${JSON.stringify(p)})`);
  if (/[\n\r\0]/.test(p)) throw new Error(`${name} must not contain line breaks or NUL`);
  return p;
}

/** Where the stage step puts the two files. */
export function stagedPaths(stageDir: string): { bundlePath: string; planPath: string } {
  const d = absolute("stageDir", stageDir).replace(/\/+$/, "");
  return { bundlePath: `${d}/smart-mirror.js`, planPath: `${d}/plan.json` };
}

/**
 * Create the stage directory 0700 and prove we own it: a directory someone else made first
 * (under a shared parent) would let them read or swap the plan.
 */
export function remoteStageCommand(a: StageArgs & { sudo?: boolean }): string {
  const d = shellQuote(absolute("stageDir", a.stageDir));
  const s = a.sudo ? "sudo -n " : "";
  return [
    "set -e",
    "umask 077",
    `${s}mkdir -p -- ${d}`,
    `${s}chmod 0700 -- ${d}`,
    // With sudo the directory is root's but the copy runs as the SSH user: hand it over.
    ...(a.sudo ? [`${s}chown "$(id -u):$(id -g)" -- ${d}`] : []),
    `if [ "$(stat -c %u -- ${d})" != "$(id -u)" ]; then echo "smart-mirror deploy: ${a.stageDir.replace(/["$`\\]/g, "")} is owned by someone else; remove it" >&2; exit 1; fi`,
  ].join("\n");
}

export function remoteApplyCommand(a: ApplyCommandArgs): string {
  const node = shellQuote(absolute("nodePath", a.nodePath ?? "/usr/bin/node"));
  const bundle = shellQuote(absolute("bundlePath", a.bundlePath));
  const plan = shellQuote(absolute("planPath", a.planPath));
  const s = a.sudo ? "sudo -n " : "";
  const argv = [
    `${s}${node}`,
    bundle,
    "apply",
    "--plan",
    plan,
    ...(a.root !== undefined ? ["--root", shellQuote(absolute("root", a.root))] : []),
    ...(a.services ? ["--services", a.services] : []),
    ...(a.dryRun ? ["--dry-run"] : []),
  ].join(" ");
  const lines = ["umask 077", `chmod 0600 -- ${plan} || exit 1`, `${argv}`];
  if (!a.keepPlan) {
    // Delete the plan whatever apply's outcome; keep apply's exit code.
    lines.push("rc=$?", `${s}rm -f -- ${plan}`, "exit $rc");
  }
  return lines.join("\n");
}

export interface RemoveArgs {
  /** Files holding secrets or pointing at them (keys, tokens, TLS key, nginx site, unit). */
  files: string[];
  /** Directories removed with their content (the secrets directory, the deploy's stage). */
  dirs: string[];
  /** The daemon's unit, stopped and disabled first. */
  unit: string;
  sudo?: boolean;
  /** Tests: apply under this prefix, like `apply --root`. */
  root?: string;
}

/**
 * The delete step of an existing host (`pulumi destroy`, or the mirror removed from the
 * program): stop and disable the daemon, then remove every secret the deploy put there, the
 * nginx site that serves with them and the staged plan (which holds them all). The mirrored
 * repositories and the properties stay: the host is the owner's, and its data may be reused.
 * systemd is asked only when it runs (PID 1); nginx is reloaded so it stops serving the
 * mirror's name. Idempotent: a second run finds nothing and succeeds.
 */
export function remoteRemoveCommand(a: RemoveArgs): string {
  const s = a.sudo ? "sudo -n " : "";
  const R = a.root !== undefined ? absolute("root", a.root).replace(/\/+$/, "") : "";
  const at = (p: string) => shellQuote(`${R}${absolute("path", p)}`);
  const unit = shellQuote(a.unit);
  return [
    "set -u",
    `if [ -d /run/systemd/system ]; then ${s}systemctl disable --now ${unit} >/dev/null 2>&1 || true; fi`,
    `${s}rm -f -- ${a.files.map(at).join(" ")} || exit 1`,
    `${s}rm -rf -- ${a.dirs.map(at).join(" ")} || exit 1`,
    `if [ -d /run/systemd/system ]; then ${s}systemctl daemon-reload; ${s}systemctl reload nginx.service >/dev/null 2>&1 || true; fi`,
    `echo "smart-mirror: daemon stopped, its secrets removed (repositories kept)"`,
  ].join("\n");
}
