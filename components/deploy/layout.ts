/**
 * Where things live on a mirror host. One place, so the properties (which name files), the
 * plan (which writes them), cloud-init (which mounts the home) and nginx (which reads the
 * certificate and proxies to the socket) agree. Paths under the home come from the daemon's
 * own layout (sync/homeLayout.ts); this adds the host's paths outside it.
 */
import * as path from "node:path";
import { HomePaths, homePaths } from "../../sync/homeLayout";

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

/** A farm node's peers file (mirror.farm.peersFile), written by the peers refresher (root) and read by the daemon. */
export const FARM_DIR = "/etc/smart-mirror/farm";
export const FARM_PEERS_FILE = path.posix.join(FARM_DIR, "peers");

/** Where the deploy stages the plan and bundle (commands.ts stagedPaths): 0700, owned by the SSH user, on the root disk. */
export const STAGING_DIR = "/var/lib/smart-mirror-deploy";

/** The home's paths (sync/homeLayout.ts) and the host paths outside it. */
export type MirrorPaths = HomePaths & {
  bundle: string;
  tlsCert: string;
  tlsKey: string;
  nginxSite: string;
  unitFile: string;
};

export function mirrorPaths(home: string = DEFAULT_HOME): MirrorPaths {
  return {
    ...homePaths(home),
    bundle: path.posix.join(INSTALL_DIR, "smart-mirror.js"),
    tlsCert: path.posix.join(TLS_DIR, "fullchain.pem"),
    tlsKey: path.posix.join(TLS_DIR, "privkey.pem"),
    nginxSite: "/etc/nginx/conf.d/smart-mirror.conf",
    unitFile: "/etc/systemd/system/smart-mirror.service",
  };
}
