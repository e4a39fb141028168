/**
 * Where things live on a mirror host. One place, so the properties (which name files), the
 * plan (which writes them), cloud-init (which mounts the home) and nginx (which reads the
 * certificate and proxies to the socket) agree.
 */
import * as path from "node:path";

/** The mirror home; on EC2 the data volume's mount point. */
export const DEFAULT_HOME = "/var/lib/smart-mirror";

/** The daemon's system account. */
export const DAEMON_USER = "smart-mirror";
/**
 * Its fixed uid and gid (the same on every host), so a replaced EC2 instance finds the kept
 * data volume's files owned by its own daemon. In the system range but away from both ends
 * that useradd (999 down) and adduser (100 up) allocate from; if another account has it
 * anyway, the agent lets the system pick and re-owns the home (sync/agent/reown.ts).
 */
export const DAEMON_UID = 617;
export const DAEMON_GID = 617;

/** Root-owned directory for the bundle and the TLS material nginx reads. */
export const INSTALL_DIR = "/opt/smart-mirror";
export const TLS_DIR = "/etc/smart-mirror/tls";

/** Where the deploy stages the plan and bundle (commands.ts stagedPaths): 0700, owned by the SSH user, on the root disk. */
export const STAGING_DIR = "/var/lib/smart-mirror-deploy";

export interface MirrorPaths {
  home: string;
  shared: string;
  properties: string;
  sshDir: string;
  keyFile: string;
  secretsDir: string;
  catalogTokenFile: string;
  webhookSecretFile: string;
  eventsSecretFile: string;
  cloneTokensFile: string;
  caDir: string;
  primaryCaFile: string;
  runDir: string;
  socket: string;
  bundle: string;
  tlsCert: string;
  tlsKey: string;
  nginxSite: string;
  unitFile: string;
}

export function mirrorPaths(home: string = DEFAULT_HOME): MirrorPaths {
  const shared = path.posix.join(home, "shared");
  return {
    home,
    shared,
    properties: path.posix.join(shared, "bitbucket.properties"),
    sshDir: path.posix.join(shared, "ssh"),
    keyFile: path.posix.join(shared, "ssh", "id_ed25519"),
    secretsDir: path.posix.join(shared, "secrets"),
    catalogTokenFile: path.posix.join(shared, "secrets", "upstream-token"),
    webhookSecretFile: path.posix.join(shared, "secrets", "webhook-secret"),
    eventsSecretFile: path.posix.join(shared, "secrets", "events-secret"),
    cloneTokensFile: path.posix.join(shared, "secrets", "clone-tokens"),
    caDir: path.posix.join(shared, "ca"),
    primaryCaFile: path.posix.join(shared, "ca", "primary-ca.pem"),
    runDir: path.posix.join(home, "run"),
    socket: path.posix.join(home, "run", "smart-mirror.sock"),
    bundle: path.posix.join(INSTALL_DIR, "smart-mirror.js"),
    tlsCert: path.posix.join(TLS_DIR, "fullchain.pem"),
    tlsKey: path.posix.join(TLS_DIR, "privkey.pem"),
    nginxSite: "/etc/nginx/conf.d/smart-mirror.conf",
    unitFile: "/etc/systemd/system/smart-mirror.service",
  };
}
