/**
 * The first remote command of a deploy: wait until the host is ready for `smart-mirror apply`
 * and say exactly what is missing when it is not. Pure (text out); the tests run the text.
 *
 * Ready means: cloud-init finished (EC2 hosts; `status --wait` exits 0, or 2 for "done with
 * recoverable warnings" on cloud-init >= 23.4, 1 when it failed), the tools the mirror runs
 * are installed (git, ssh, nginx, node >= 18, systemd), the SSH user may sudo without a
 * password (when it is not root), and — on EC2 — the data volume is mounted at the mirror
 * home, so nothing is ever written to the root disk in its place.
 */
import { shellQuote } from "./commands";

export interface HostReadyArgs {
  home: string;
  /** The home must be a mount point (EC2 data volume). */
  homeIsMount: boolean;
  /** The SSH user is not root: sudo -n must work. */
  sudo: boolean;
  /** Default /usr/bin/node (Debian/Ubuntu's nodejs package). */
  nodePath?: string;
  /** Default /usr/sbin/nginx. */
  nginxPath?: string;
}

export function hostReadyCommand(a: HostReadyArgs): string {
  const node = shellQuote(a.nodePath ?? "/usr/bin/node");
  const nginx = shellQuote(a.nginxPath ?? "/usr/sbin/nginx");
  const home = shellQuote(a.home);
  const say = (msg: string) => `echo ${shellQuote(`smart-mirror deploy: ${msg}`)} >&2`;
  return [
    "set -u",
    "if command -v cloud-init >/dev/null 2>&1; then",
    "  rc=0",
    "  cloud-init status --wait >/dev/null 2>&1 || rc=$?",
    `  if [ "$rc" = 1 ]; then ${say("cloud-init failed on this host; see /var/log/cloud-init-output.log")}; exit 1; fi`,
    "fi",
    'missing=""',
    'command -v git >/dev/null 2>&1 || missing="$missing git"',
    'command -v ssh >/dev/null 2>&1 || missing="$missing openssh-client"',
    `[ -x ${nginx} ] || missing="$missing nginx"`,
    `[ -x ${node} ] || missing="$missing nodejs"`,
    'command -v systemctl >/dev/null 2>&1 || missing="$missing systemd"',
    `if [ -n "$missing" ]; then ${say("missing on the host:")} ; echo "  $missing" >&2; ${say("install them (Debian/Ubuntu: apt-get install git openssh-client nginx nodejs)")}; exit 1; fi`,
    `if ! ${node} -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)'; then ${say("node >= 18 is required; found")}; ${node} --version >&2; exit 1; fi`,
    ...(a.sudo ? [`if ! sudo -n true 2>/dev/null; then ${say("the SSH user needs passwordless sudo (cloud images grant it to their default user)")}; exit 1; fi`] : []),
    ...(a.homeIsMount
      ? [`if ! mountpoint -q ${home}; then ${say(`the data volume is not mounted at ${a.home}; see /var/log/cloud-init-output.log (smart-mirror-data-volume)`)}; exit 1; fi`]
      : []),
    "echo ready",
  ].join("\n");
}
