/**
 * The environment under which the daemon runs git against the primary: OpenSSH with the
 * pinned known_hosts, our key only, no prompts, and a shared ControlMaster connection so a
 * burst of fetches pays one handshake. Pure.
 */

export interface SshCommandOptions {
  keyFile: string;
  knownHostsFile: string;
  /** Socket path for the ControlMaster; must stay under ~100 bytes (unix socket limit). */
  controlPath: string;
  /** How long the master stays up after the last fetch. */
  controlPersistSec: number;
  connectTimeoutSec: number;
}

function shq(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`;
}

export function sshCommand(o: SshCommandOptions): string {
  const args = [
    "ssh",
    "-F", "/dev/null", // the operator's ~/.ssh/config must not change where or how we connect
    "-i", o.keyFile,
    "-o", "IdentitiesOnly=yes",
    "-o", "IdentityAgent=none",
    "-o", "BatchMode=yes",
    "-o", "StrictHostKeyChecking=yes",
    "-o", `UserKnownHostsFile=${o.knownHostsFile}`,
    "-o", "GlobalKnownHostsFile=/dev/null",
    "-o", "UpdateHostKeys=no",
    "-o", "ControlMaster=auto",
    "-o", `ControlPath=${o.controlPath}`,
    "-o", `ControlPersist=${o.controlPersistSec}`,
    "-o", `ConnectTimeout=${o.connectTimeoutSec}`,
    "-o", "ServerAliveInterval=15",
    "-o", "ServerAliveCountMax=4",
    "-o", "LogLevel=ERROR",
  ];
  return args.map(shq).join(" ");
}

export function gitEnv(base: NodeJS.ProcessEnv, ssh: SshCommandOptions): NodeJS.ProcessEnv {
  return {
    ...base,
    GIT_SSH_COMMAND: sshCommand(ssh),
    GIT_SSH_VARIANT: "ssh",
    GIT_TERMINAL_PROMPT: "0",
    GIT_ASKPASS: "/bin/false",
    LC_ALL: "C",
  };
}
