/**
 * The mirror home's layout (`--home DIR`): every path under DIR is named here once, and the
 * daemon, `check`, the deploy plan (components/deploy), `npm start` and the testbed build their
 * paths from it. homeLayoutLiterals.test.ts fails when another module spells one by hand.
 *
 * Ownership, in short: shared/ is the operator's (the deploy plan or an admin writes it, the
 * daemon only reads it); data/, run/, repos/ and cache/ are the daemon's own, created by it on
 * demand (lfs/ too). All of it belongs to the daemon's account (components/deploy/layout.ts DAEMON_USER).
 * `mode` is what the deploy plan lays an entry down with (components/deploy/plan.ts); entries
 * without one are created by the daemon with the mode its module gives.
 *
 * Pure. POSIX paths: the home is on a Linux host, also when `pulumi up` runs elsewhere.
 */
import * as path from "node:path";
import { RepoId, repoNameProblem } from "./repoName";

interface Entry {
  /** Relative to the home. */
  readonly rel: string;
  /** Mode the deploy plan gives it (absent: the daemon creates it). */
  readonly mode?: number;
}

export const HOME_LAYOUT = {
  /** Configuration, written by the deploy (or an admin), read by the daemon; a change restarts it. */
  shared: { rel: "shared", mode: 0o750 },
  /** bitbucket.properties: the setup and `mirror.*` keys (sync/config). Contract, see DESIGN.md. */
  properties: { rel: "shared/bitbucket.properties", mode: 0o640 },
  sshDir: { rel: "shared/ssh", mode: 0o700 },
  /** The mirror's SSH private key (mirror.upstream.keyFile's default); `.pub` beside it. Secret. */
  keyFile: { rel: "shared/ssh/id_ed25519", mode: 0o600 },
  secretsDir: { rel: "shared/secrets", mode: 0o700 },
  /** HTTP access token for the REST catalog (mirror.catalog.tokenFile's default). Secret. */
  catalogTokenFile: { rel: "shared/secrets/upstream-token", mode: 0o600 },
  /** HMAC secret of the primary's webhook. Secret. */
  webhookSecretFile: { rel: "shared/secrets/webhook-secret", mode: 0o600 },
  /** HMAC secret the synced events (mirror.events) are signed with. Secret. */
  eventsSecretFile: { rel: "shared/secrets/events-secret", mode: 0o600 },
  /** Clone tokens, one a line, for mirror.auth=tokens. Secret. */
  cloneTokensFile: { rel: "shared/secrets/clone-tokens", mode: 0o600 },
  /** CA certificates the primary's HTTPS is checked against (when not publicly trusted). */
  caDir: { rel: "shared/ca", mode: 0o755 },
  primaryCaFile: { rel: "shared/ca/primary-ca.pem", mode: 0o644 },
  /** The farm's internal credential (mirror.farm.tokenFile), laid down by the farm's plan. Secret. */
  farmTokenFile: { rel: "shared/secrets/farm-token", mode: 0o600 },
  /** CA certificates peers' nginx certificates are checked against (mirror.farm.caCertificatesFile). */
  farmCaFile: { rel: "shared/ca/farm-ca.pem", mode: 0o644 },

  /** The daemon's small state files (written atomically by it; survive restarts). */
  dataDir: { rel: "data" },
  /** The setup values recorded on the first start (sync/config/setupRecord.ts). */
  setupRecord: { rel: "data/setup.json" },
  /** The last project selection, so a deliberate shrink passes the purge guard (daemon.ts). */
  selection: { rel: "data/selection.json" },
  /** When each repository was last compared with the primary and last changed (daemon/scanLedger.ts). */
  scanLedger: { rel: "data/scan-ledger.json" },
  /** The pinned host keys as OpenSSH's known_hosts, rewritten at each start (upstream/openssh.ts). */
  knownHosts: { rel: "data/known_hosts" },

  /** Sockets and the lock; group-accessible so nginx's workers (in the daemon's group) reach the socket. */
  runDir: { rel: "run", mode: 0o750 },
  /** The one-daemon-per-home lock (sync/daemon/lock.ts); markers `daemon.pid.<pid>` beside it. */
  pidFile: { rel: "run/daemon.pid" },
  /** The daemon's HTTP socket that nginx proxies to (mirror.serve.listen's default). */
  socket: { rel: "run/smart-mirror.sock" },
  /** OpenSSH ControlMaster sockets to the primary; `%C` is OpenSSH's per-connection hash. */
  controlSockets: { rel: "run/cm-%C" },

  /** The bare repositories, repos/PROJECT/slug.git (repoDir), written only by the daemon's store. */
  repos: { rel: "repos" },
  /** First clones are built here and renamed into place only when complete. */
  incoming: { rel: "repos/.incoming" },
  /** Removed or corrupt repositories are moved here first (a rename is atomic), then deleted. */
  trash: { rel: "repos/.trash" },

  /** The pack cache's answers (sync/serve/git/packCache.ts), emptied at start. */
  packCache: { rel: "cache/packs" },

  /** Git LFS objects served by the mirror, content-addressed (sync/serve/lfs/lfsStore.ts): lfs/objects/ab/cd/<oid>. */
  lfsObjects: { rel: "lfs/objects" },
  /** LFS objects on their way in (checked, then renamed into lfs/objects); emptied at start. Same file system. */
  lfsIncoming: { rel: "lfs/incoming" },
} as const satisfies Record<string, Entry>;

export type HomeEntry = keyof typeof HOME_LAYOUT;
export type HomePaths = { readonly home: string } & { readonly [K in HomeEntry]: string };

/** Every path of the layout under `home`. `homePaths("DIR")` gives the documented forms ("DIR/shared/..."). */
export function homePaths(home: string): HomePaths {
  const out: Record<string, string> = { home };
  for (const [name, e] of Object.entries(HOME_LAYOUT)) out[name] = path.posix.join(home, e.rel);
  return out as HomePaths;
}

/** One path of the layout under `home`. */
export function homePath(home: string, entry: HomeEntry): string {
  return path.posix.join(home, HOME_LAYOUT[entry].rel);
}

/** Inside each repository: when the mirror last stored it (what the pack cache keys on). */
export const FINGERPRINT_FILE = "smart-mirror.fingerprint";

/** Refuses a name the shared rule (sync/repoName.ts) rejects before it becomes a path. */
export function assertSafeRepoId(id: RepoId): void {
  const problem = repoNameProblem(id);
  if (problem !== undefined) throw new Error(`unsafe repository name ${JSON.stringify(`${id.project}/${id.slug}`)}: ${problem}; refusing to map it to a path`);
}

/** repos/PROJECT/slug.git: the clone URL's /scm/PROJECT/slug.git on disk. */
export function repoDir(home: string, id: RepoId): string {
  assertSafeRepoId(id);
  return path.posix.join(homePath(home, "repos"), id.project, `${id.slug}.git`);
}

/** The name (PROJECT, slug) a directory `repos/PROJECT/ENTRY` stands for, or undefined. */
export function repoIdOfDir(project: string, entry: string): RepoId | undefined {
  if (!entry.endsWith(".git")) return undefined;
  const id = { project, slug: entry.slice(0, -4) };
  return repoNameProblem(id) === undefined ? id : undefined;
}
