/**
 * What `npm start` needs on the machine, and the Debian package that provides each. Pure
 * decision over a probe, so the message is testable: a missing tool names the package.
 */
export interface Requirement {
  command: string;
  /** Debian/Ubuntu package providing it. */
  pkg: string;
  why: string;
  /** Only for the built-in demo primary. */
  demoOnly?: boolean;
}

export const REQUIREMENTS: Requirement[] = [
  { command: "git", pkg: "git", why: "the mirror's repositories and the demo's clients" },
  { command: "ssh", pkg: "openssh-client", why: "the daemon fetches from the primary over SSH" },
  { command: "ssh-keygen", pkg: "openssh-client", why: "the mirror's SSH key" },
  { command: "/usr/sbin/nginx", pkg: "nginx", why: "TLS termination in front of the daemon" },
  { command: "openssl", pkg: "openssl", why: "the local certificate authority" },
  { command: "setpriv", pkg: "util-linux", why: "running the daemon as its own account" },
  { command: "/usr/sbin/sshd", pkg: "openssh-server", why: "the built-in demo primary", demoOnly: true },
  { command: "/usr/bin/git-shell", pkg: "git", why: "the demo primary's git account", demoOnly: true },
  { command: "git-lfs", pkg: "git-lfs", why: "the demo's LFS repository (DEMO/assets), checked out by --verify", demoOnly: true },
];

export function missingRequirements(has: (command: string) => boolean, demo: boolean): Requirement[] {
  return REQUIREMENTS.filter((r) => (demo || !r.demoOnly) && !has(r.command));
}

export function describeMissing(missing: Requirement[]): string {
  const pkgs = [...new Set(missing.map((m) => m.pkg))];
  return [
    "npm start cannot run yet; missing on this machine:",
    ...missing.map((m) => `  - ${m.command} (${m.why}): Debian package ${m.pkg}`),
    `Install them with:  sudo apt-get install -y ${pkgs.join(" ")}`,
  ].join("\n");
}
