/**
 * THE table of bitbucket.properties keys the daemon reads: each key's name, value kind and
 * range, default, documentation and the SmartMirror argument it is rendered from, once. Derived
 * from it: the daemon's schema (schema.ts), the component's rendered properties, managed keys
 * and argument checks (components/render/properties.ts, components/validate.ts), the README's
 * configuration reference (renderKeyTable), the unknown-key warnings (closestKey) and the
 * "file missing" example (minimalExample). Code names a key as KEYS.<id>.name, never as a
 * string (sync/config/keyLiterals.test.ts holds the product sources to that).
 *
 * Naming contract (shared/DESIGN.md): Bitbucket's automated-setup / mirroring key where
 * Bitbucket has one for the setting, our own keys under `mirror.`.
 *
 * Sources for the Bitbucket keys:
 * - setup.displayName, setup.baseUrl, plugin.mirroring.upstream.url: the values Bitbucket's
 *   mirror setup takes ("Set up a mirror", automated setup:
 *   https://confluence.atlassian.com/display/BITBUCKETSERVER0810/Set+up+a+mirror); the same
 *   names appear in real mirror property files next to application.mode=mirror. That page also
 *   states the rules we enforce: the primary must have HTTPS with a CA-signed certificate
 *   ("cannot be bypassed"), and mirrors sync over SSH, never HTTP or HTTPS.
 *   Bitbucket applies setup values on the first start only (see setupRecord.ts).
 * - plugin.mirroring.synchronization.interval: "controls how frequently a full synchronization
 *   with the upstream server should run", default 3 minutes (Atlassian KB "About Bitbucket
 *   Smart Mirrors", https://confluence.atlassian.com/bitbucketserverkb/informational-about-bitbucket-smart-mirrors-1416822816.html,
 *   which points to the config properties page, section Mirroring:
 *   https://confluence.atlassian.com/bitbucketserver/configuration-properties-776640155.html).
 *   We could not confirm the unit Bitbucket assumes for a bare number, so we document ours
 *   (seconds) and recommend an explicit unit ("3m"); a bare "3" is refused as too short
 *   rather than silently taken as 3 seconds.
 * We deliberately do not take over plugin.mirroring.farm.* (mirror-farm clustering) or the
 * diagnostics keys: a smart-mirror host is a single node and has no such settings.
 */
import { homePaths } from "../homeLayout";
import { DURATION_GRAMMAR, formatDuration } from "./duration";
import { closestName } from "./suggest";

/** The home's paths as documented: "DIR/shared/..." (DIR is the --home; withHome fills it in). */
const DOC = homePaths("DIR");

export interface Condition {
  key: string;
  equals: string;
}

/**
 * What a value is, with its range: the daemon's parser (schema.ts), the reference's "Type"
 * column and the component's checks all read it from here, so a range is written once.
 */
export type ValueSpec =
  | { kind: "text"; maxLength: number }
  | { kind: "httpsUrl"; why: string; otherScheme: string }
  | { kind: "duration"; minMs: number; maxMs: number; zeroMeansOff?: boolean }
  | { kind: "int"; min: number; max: number; unit?: string; zero?: string }
  | { kind: "enum"; values: readonly string[] }
  | { kind: "bool" }
  | { kind: "percent" }
  | { kind: "path" }
  | { kind: "sshBase" }
  | { kind: "hostKeys" }
  | { kind: "repoList" }
  | { kind: "projects" }
  | { kind: "refPatterns"; allowEmpty?: boolean }
  | { kind: "eventUrls"; max: number }
  | { kind: "listen" };

export interface KeySpec {
  name: string;
  origin: "bitbucket" | "smart-mirror";
  value: ValueSpec;
  /** Default as written in the file; "DIR" stands for the mirror home (--home DIR). */
  default?: string;
  /** true, false, or required only when another key has a value. */
  required: boolean | Condition;
  /** The key only matters when this holds; setting it otherwise earns a warning. */
  usedWhen?: Condition;
  description: string;
  /** A valid value, used in the reference and in "missing key" fixes. */
  example: string;
  /** The key names a file holding a secret: its content is never read into messages. */
  secretFile?: boolean;
  /**
   * The SmartMirror argument the component sets this key from (components/propertiesFromArgs.ts);
   * "deploy.home" for paths laid out under the home. Keys with an `arg` are rendered from the
   * typed arguments and refused in mirror.extraProperties.
   */
  arg?: string;
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

// A real (throwaway) ed25519 public key, so the example passes validation. Pinning it would
// simply fail closed: no primary holds its private half.
const EXAMPLE_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMLSLrCXW0pcoxGUW/EJTuGUPZLoE6StPXIw8GBCqaZE";

export const KEYS = {
  displayName: {
    name: "setup.displayName",
    origin: "bitbucket",
    required: true,
    description: "The mirror's name, shown in /status and logs. Bitbucket automated-setup key; a later change is applied with a warning.",
    example: "Sydney mirror",
    value: { kind: "text", maxLength: 255 },
    arg: "displayName",
  },
  baseUrl: {
    name: "setup.baseUrl",
    origin: "bitbucket",
    required: true,
    description:
      "The mirror's own public URL (what users clone from: <baseUrl>/scm/PROJECT/repo.git). Bitbucket automated-setup key: recorded on first start (DIR/data/setup.json); a later change is refused until reverted or the record is deliberately deleted.",
    example: "https://mirror-syd.example.com",
    value: { kind: "httpsUrl", why: "Bitbucket mirrors are served over HTTPS; nginx terminates TLS in front of the daemon", otherScheme: "this is the mirror's own public HTTPS URL" },
    arg: "domainName",
  },
  upstreamUrl: {
    name: "plugin.mirroring.upstream.url",
    origin: "bitbucket",
    required: true,
    description:
      "The primary's HTTPS base URL (REST catalog, user authentication). Must be https:// — as in Bitbucket, HTTPS with a valid certificate is required and cannot be bypassed.",
    example: "https://bitbucket.example.com",
    value: { kind: "httpsUrl", why: "the primary must serve HTTPS with a valid certificate, as Bitbucket requires for mirroring; tokens and user credentials are never sent over plain HTTP", otherScheme: "this is the primary's web address; its SSH address goes in mirror.upstream.sshUrl" },
    arg: "primary.url",
  },
  syncInterval: {
    name: "plugin.mirroring.synchronization.interval",
    origin: "bitbucket",
    default: "3m",
    required: false,
    description:
      "How often a full reconcile with the primary runs (catches missed webhooks, new and deleted repositories). Bitbucket's key and default (3 minutes). Write the unit: a bare number is seconds here.",
    example: "3m",
    value: { kind: "duration", minMs: 10_000, maxMs: DAY },
    arg: "mirror.syncInterval",
  },
  sshUrl: {
    name: "mirror.upstream.sshUrl",
    origin: "smart-mirror",
    required: true,
    description:
      "The primary's SSH address; repositories are fetched from <sshUrl>/<PROJECT>/<slug>.git. Sync runs over SSH only, never HTTP(S). No repository path, no scp-like syntax.",
    example: "ssh://git@bitbucket.example.com:7999",
    value: { kind: "sshBase" },
    arg: "primary.sshUrl",
  },
  hostKeys: {
    name: "mirror.upstream.hostKeys",
    origin: "smart-mirror",
    required: true,
    description:
      "The primary's SSH host keys, pinned: any other key is refused. Entries 'type base64' (or ssh-keyscan's 'host type base64'), separated by commas or newlines. Get them with `ssh-keyscan -p PORT host` and verify the fingerprints out of band.",
    example: EXAMPLE_HOST_KEY,
    value: { kind: "hostKeys" },
    arg: "primary.hostKeys",
  },
  keyFile: {
    name: "mirror.upstream.keyFile",
    origin: "smart-mirror",
    default: DOC.keyFile,
    required: false,
    description:
      "The mirror's SSH private key; its public half must have read access on the primary (\"approve the mirror\"). Must not be group/world accessible (chmod 600). Relative paths are relative to DIR.",
    example: DOC.keyFile,
    secretFile: true,
    value: { kind: "path" },
    arg: "deploy.home",
  },
  caFile: {
    name: "mirror.upstream.caFile",
    origin: "smart-mirror",
    required: false,
    description:
      "Extra CA certificates (PEM) trusted for the primary's HTTPS, e.g. a company CA. Added to the system CAs; certificate verification is never disabled and there is no key to disable it.",
    example: "/etc/ssl/certs/company-ca.pem",
    value: { kind: "path" },
    arg: "primary.caCertificatesPem",
  },
  tokenFile: {
    name: "mirror.upstream.tokenFile",
    origin: "smart-mirror",
    default: DOC.catalogTokenFile,
    required: false,
    usedWhen: { key: "mirror.catalog", equals: "rest" },
    description:
      "File holding a Bitbucket HTTP access token with read access to the mirrored projects, used by the REST catalog. Needed with mirror.catalog=rest: anonymously the primary lists only public repositories. chmod 600.",
    example: DOC.catalogTokenFile,
    secretFile: true,
    value: { kind: "path" },
    arg: "primary.catalogToken",
  },
  catalog: {
    name: "mirror.catalog",
    origin: "smart-mirror",
    default: "rest",
    required: false,
    description:
      "Where the list of repositories comes from: rest = the primary's REST API (/rest/api/1.0/projects, .../repos); static = mirror.catalog.repos (for SSH Git hosts that are not Bitbucket).",
    example: "rest",
    value: { kind: "enum", values: ["rest", "static"] },
    arg: "primary.repos",
  },
  catalogRepos: {
    name: "mirror.catalog.repos",
    origin: "smart-mirror",
    required: { key: "mirror.catalog", equals: "static" },
    usedWhen: { key: "mirror.catalog", equals: "static" },
    description: "The repositories to mirror when mirror.catalog=static, separated by commas.",
    example: "PROJ/repo, PROJ/other",
    value: { kind: "repoList" },
    arg: "primary.repos",
  },
  projects: {
    name: "mirror.projects",
    origin: "smart-mirror",
    default: "ALL",
    required: false,
    description:
      "Which projects to mirror: ALL, or project keys separated by commas. Unlike Bitbucket, going back from ALL to a list is allowed (repositories no longer selected are purged, within mirror.purge.protect).",
    example: "PROJ, OPS",
    value: { kind: "projects" },
    arg: "mirror.projects",
  },
  concurrency: {
    name: "mirror.sync.concurrency",
    origin: "smart-mirror",
    default: "8",
    required: false,
    description: "How many repositories are fetched at the same time.",
    example: "8",
    value: { kind: "int", min: 1, max: 64 },
    arg: "mirror.concurrency",
  },
  syncTimeout: {
    name: "mirror.sync.timeout",
    origin: "smart-mirror",
    default: "10m",
    required: false,
    description: "A single repository fetch taking longer than this is aborted and retried with backoff.",
    example: "10m",
    value: { kind: "duration", minMs: SECOND, maxMs: DAY },
  },
  firstCloneStepMb: {
    name: "mirror.sync.firstCloneStepMb",
    origin: "smart-mirror",
    default: "64",
    required: false,
    description:
      "A first clone that receives more than this continues in resumable steps (--depth=1, then --deepen steps of about this size), so a kill, timeout or lost connection loses at most one step instead of the whole clone. Smaller repositories are fetched in one go.",
    example: "64",
    value: { kind: "int", min: 1, max: 65_536, unit: "MiB" },
  },
  excludeRefs: {
    name: "mirror.sync.excludeRefs",
    origin: "smart-mirror",
    default: "refs/pull-requests/*",
    required: false,
    description:
      "Refs not mirrored (git ref patterns, one * each). Default: Bitbucket's pull-request refs — primary-side bookkeeping whose merge refs are rewritten whenever a target branch moves, so mirroring them costs fetches and churn for refs clients do not clone (Gitea's pull mirrors skip refs/pull for the same reason). Set it empty (mirror.sync.excludeRefs=) to mirror every ref.",
    example: "refs/pull-requests/*, refs/changes/*",
    value: { kind: "refPatterns", allowEmpty: true },
  },
  retryMax: {
    name: "mirror.sync.retryMax",
    origin: "smart-mirror",
    default: "10m",
    required: false,
    description: "Cap of the exponential backoff between retries of a failing repository.",
    example: "10m",
    // Not below the first retry's delay (daemon/settings.ts RETRY_BASE_MS, 2 s): the scheduler refuses a smaller cap.
    value: { kind: "duration", minMs: 2 * SECOND, maxMs: DAY },
  },
  scanMaxPerSecond: {
    name: "mirror.scan.maxPerSecond",
    origin: "smart-mirror",
    default: "12",
    required: false,
    description:
      "The reconcile's budget on the primary: ref scans per second on average. A scan costs the primary one SSH session and one upload-pack advertisement (measured: about 6.6 ms of CPU with OpenSSH and git-shell, bench/results/reconcile.json), so the default is about 8% of one core. Repositories changed within mirror.scan.activeWindow are checked every round; idle ones share what is left, at least once per mirror.scan.idleBound. A catalog small enough to check whole every round within the budget is, as before. If the budget cannot keep the idle bound, the mirror scans as fast as the bound needs and logs a warning.",
    example: "12",
    value: { kind: "int", min: 1, max: 100_000, unit: "scans/s" },
  },
  scanIdleBound: {
    name: "mirror.scan.idleBound",
    origin: "smart-mirror",
    default: "6h",
    required: false,
    description:
      "The longest an idle repository (no change within mirror.scan.activeWindow) goes without being compared with the primary: the worst case, plus a round and a half, for noticing a push whose webhook was lost. Not shorter than plugin.mirroring.synchronization.interval.",
    example: "6h",
    value: { kind: "duration", minMs: MINUTE, maxMs: 7 * DAY },
  },
  scanActiveWindow: {
    name: "mirror.scan.activeWindow",
    origin: "smart-mirror",
    default: "24h",
    required: false,
    description: "A repository whose refs moved within this long is active: checked every reconcile round (plugin.mirroring.synchronization.interval).",
    example: "24h",
    value: { kind: "duration", minMs: MINUTE, maxMs: 30 * DAY },
  },
  webhookSecretFile: {
    name: "mirror.webhook.secretFile",
    origin: "smart-mirror",
    required: false,
    description:
      "File holding the HMAC secret of the primary's repo:refs_changed webhook (X-Hub-Signature). Without it the webhook endpoint is disabled and changes arrive with the next reconcile (plugin.mirroring.synchronization.interval). chmod 600.",
    example: DOC.webhookSecretFile,
    secretFile: true,
    value: { kind: "path" },
    arg: "mirror.webhookSecret",
  },
  purgeEnabled: {
    name: "mirror.purge.enabled",
    origin: "smart-mirror",
    default: "true",
    required: false,
    description: "Delete local repositories that the primary (or the project selection) no longer has.",
    example: "true",
    value: { kind: "bool" },
  },
  purgeProtect: {
    name: "mirror.purge.protect",
    origin: "smart-mirror",
    default: "5",
    required: false,
    description:
      "Refuse to delete more than this share of the mirrored repositories in one reconcile (as grokmirror's purgeprotect, default 5): a catalog glitch must not wipe the mirror. 100 turns the protection off.",
    example: "5",
    value: { kind: "percent" },
  },
  repackInterval: {
    name: "mirror.maintenance.repackInterval",
    origin: "smart-mirror",
    default: "1d",
    required: false,
    description: "How often each repository is repacked (git maintenance) to keep clones fast.",
    example: "1d",
    value: { kind: "duration", minMs: HOUR, maxMs: 365 * DAY, zeroMeansOff: true },
  },
  fsckInterval: {
    name: "mirror.maintenance.fsckInterval",
    origin: "smart-mirror",
    default: "7d",
    required: false,
    description: "How often each repository is checked with git fsck; a corrupt repository is re-cloned.",
    example: "7d",
    value: { kind: "duration", minMs: HOUR, maxMs: 365 * DAY, zeroMeansOff: true },
  },
  minFreeMb: {
    name: "mirror.disk.minFreeMb",
    origin: "smart-mirror",
    default: "1024",
    required: false,
    description:
      "Free space kept on the mirror home's file system. Below it, syncs that grow the disk pause (first clones are refused with the reason, fetches wait) while clones keep being served, /status says disk LOW (DEGRADED) and smart_mirror_disk_low is 1; what is left stays for maintenance (a repack needs room for the new pack). Syncing resumes by itself once space is back. 0 = never pause.",
    example: "4096",
    value: { kind: "int", min: 0, max: 1_048_576, unit: "MiB", zero: "off" },
  },
  listen: {
    name: "mirror.serve.listen",
    origin: "smart-mirror",
    default: `unix:${DOC.socket}`,
    required: false,
    description: "Where the daemon serves smart HTTP, /status and /metrics for nginx (which terminates TLS in front of it).",
    example: "127.0.0.1:7990",
    value: { kind: "listen" },
    arg: "deploy.home",
  },
  auth: {
    name: "mirror.serve.auth",
    origin: "smart-mirror",
    default: "primary",
    required: false,
    description:
      "Who may clone: primary = the user's credentials are checked against the primary (like a Bitbucket mirror); anonymous = anyone who can reach the mirror; tokens = bearer tokens from mirror.serve.tokensFile.",
    example: "primary",
    value: { kind: "enum", values: ["primary", "anonymous", "tokens"] },
    arg: "mirror.auth",
  },
  tokensFile: {
    name: "mirror.serve.tokensFile",
    origin: "smart-mirror",
    required: { key: "mirror.serve.auth", equals: "tokens" },
    usedWhen: { key: "mirror.serve.auth", equals: "tokens" },
    description: "File of access tokens accepted when mirror.serve.auth=tokens. chmod 600.",
    example: DOC.cloneTokensFile,
    secretFile: true,
    value: { kind: "path" },
    arg: "mirror.cloneTokens",
  },
  authCacheTtl: {
    name: "mirror.serve.authCacheTtl",
    origin: "smart-mirror",
    default: "5m",
    required: false,
    description: "How long a successful check against the primary is cached per user and repository (0 = no cache).",
    example: "5m",
    value: { kind: "duration", minMs: SECOND, maxMs: DAY, zeroMeansOff: true },
  },
  packCacheMb: {
    name: "mirror.serve.packCacheMb",
    origin: "smart-mirror",
    default: "2048",
    required: false,
    description:
      "Disk budget of the pack cache (DIR/cache/packs, emptied at start), on by default like Bitbucket's SCM cache: identical requests for the same repository state share one git upload-pack run and are answered from its stored response for up to 5 minutes, e.g. a CI fleet cloning the same commit. What is cached: mirror.serve.packCacheScope. A repository whose packs are larger than the budget is served without the cache. Answers being written take disk beside the budget, one per running upload-pack. 0 = every request runs git.",
    example: "2048",
    value: { kind: "int", min: 0, max: 1_048_576, unit: "MiB", zero: "off" },
  },
  packCacheScope: {
    name: "mirror.serve.packCacheScope",
    origin: "smart-mirror",
    default: "clones",
    required: false,
    description:
      "Which responses the pack cache keeps: clones = ref advertisements, ls-refs and clones (requests without haves, shallow and partial ones too), which fleets repeat byte for byte; all = incremental fetches too (each fetch's haves make its own key, so they rarely repeat).",
    example: "clones",
    value: { kind: "enum", values: ["clones", "all"] },
  },
  uploadPacksPerClient: {
    name: "mirror.serve.uploadPacksPerClient",
    origin: "smart-mirror",
    default: "0",
    required: false,
    description:
      "Upload-pack slots one client address may hold at once (nginx passes the address). 0 = all but a quarter of the slots, so one address (a NAT, or slow or hostile readers) never takes all of them; freed slots go to the waiting client that runs the fewest.",
    example: "0",
    value: { kind: "int", min: 0, max: 1024, zero: "auto" },
  },
  minTransferRateKb: {
    name: "mirror.serve.minTransferRateKb",
    origin: "smart-mirror",
    default: "16",
    required: false,
    description:
      "A clone or fetch that sends fewer KiB/s than this over mirror.serve.lowSpeedTime is cut while another client waits for an upload-pack slot (alone on the mirror, a slow link keeps its slot). Stops slow readers from holding every slot.",
    example: "16",
    value: { kind: "int", min: 0, max: 1_048_576, unit: "KiB/s", zero: "off" },
  },
  lowSpeedTime: {
    name: "mirror.serve.lowSpeedTime",
    origin: "smart-mirror",
    default: "60s",
    required: false,
    description: "The window over which mirror.serve.minTransferRateKb is measured.",
    example: "60s",
    value: { kind: "duration", minMs: 5 * SECOND, maxMs: HOUR },
  },
  maxTransferTime: {
    name: "mirror.serve.maxTransferTime",
    origin: "smart-mirror",
    default: "6h",
    required: false,
    description: "Longest time one clone or fetch may hold an upload-pack slot, whatever its speed.",
    example: "6h",
    value: { kind: "duration", minMs: MINUTE, maxMs: 7 * DAY, zeroMeansOff: true },
  },
  bodyBudgetMb: {
    name: "mirror.serve.bodyBudgetMb",
    origin: "smart-mirror",
    default: "64",
    required: false,
    description:
      "Memory for request bodies held at once, across all requests (upload-pack negotiations read before git starts, webhooks, Git LFS batch, verify and lock requests). Beyond it requests are answered 503 with Retry-After before their body is read, so stalled uploads cannot pin memory.",
    example: "64",
    value: { kind: "int", min: 1, max: 65_536, unit: "MiB" },
  },
  bodyTimeout: {
    name: "mirror.serve.bodyTimeout",
    origin: "smart-mirror",
    default: "30s",
    required: false,
    description: "A request body that sends nothing for this long is answered 408 and its memory given back (nginx's client_body_timeout in front matches it).",
    example: "30s",
    value: { kind: "duration", minMs: SECOND, maxMs: 10 * MINUTE },
  },
  onDemandWait: {
    name: "mirror.serve.onDemandWait",
    origin: "smart-mirror",
    default: "5s",
    required: false,
    description:
      "Fresh by construction: how long a clone or fetch may wait for the primary. A request that wants a commit the mirror does not have yet (e.g. `git fetch origin <sha>` right after a push) makes the mirror fetch that repository from the primary at once and waits for it; an advertisement checked by mirror.serve.freshness waits for the sync it needed. Past this, or with the primary down, the client gets git's error saying the mirror is behind the primary (a want) or the mirror's copy (an advertisement). 0 = off: serve only what the last sync brought.",
    example: "5s",
    value: { kind: "duration", minMs: 100, maxMs: 5 * MINUTE, zeroMeansOff: true },
  },
  freshness: {
    name: "mirror.serve.freshness",
    origin: "smart-mirror",
    default: "always",
    required: false,
    description:
      "always = before every ref advertisement (a clone's or fetch's first request) the mirror compares its refs with the primary's, one ref scan over its kept SSH connection, shared by concurrent clients, and syncs first when they differ (bounded by mirror.serve.onDemandWait), so a clone right after a push sees the push even before its webhook arrives; costs one round trip to the primary per advertisement. never = advertise what the last sync brought (webhooks and the reconcile keep it current; commits wanted by id are still fetched on demand).",
    example: "always",
    value: { kind: "enum", values: ["always", "never"] },
  },
  push: {
    name: "mirror.push",
    origin: "smart-mirror",
    default: "proxy",
    required: false,
    description:
      "proxy = pushes to the mirror (HTTPS) are forwarded to the primary's same repository at plugin.mirroring.upstream.url, streamed both ways with the user's own credentials passed through untouched (the primary alone decides who may push; the mirror never stores or logs them), and the push's answer waits (bounded by mirror.serve.onDemandWait) until the mirror has fetched the pushed refs, so a fetch or clone right after `git push` sees the push. One remote for everything. refuse = the mirror is read-only: a push is answered 403 with the primary's URL to push to instead.",
    example: "proxy",
    value: { kind: "enum", values: ["proxy", "refuse"] },
    arg: "mirror.push",
  },
  lfsEnabled: {
    name: "mirror.lfs.enabled",
    origin: "smart-mirror",
    default: "true",
    required: false,
    description:
      "Serve Git LFS at the URL git-lfs derives from the clone URL (/scm/PROJECT/repo.git/info/lfs), with the clones' access rules: objects are fetched once from the primary's LFS endpoint (checked against their SHA-256 and size), stored content-addressed under DIR/lfs/objects and served from there; uploads and the locking API are relayed to the primary with the user's credentials (mirror.serve.auth=primary). false = the LFS paths answer 404 and git-lfs must be pointed at the primary (lfs.url).",
    example: "true",
    value: { kind: "bool" },
  },
  lfsMaxObjectSizeMb: {
    name: "mirror.lfs.maxObjectSizeMb",
    origin: "smart-mirror",
    default: "10240",
    required: false,
    description:
      "Largest LFS object the mirror fetches and stores; bigger ones get an object error naming this key (git-lfs then fails that file; fetch it from the primary). New objects are also refused (507) while the data volume is below mirror.disk.minFreeMb. 0 = no limit.",
    example: "10240",
    value: { kind: "int", min: 0, max: 1_048_576, unit: "MiB", zero: "no limit" },
  },
  lfsPrefetch: {
    name: "mirror.lfs.prefetch",
    origin: "smart-mirror",
    default: "false",
    required: false,
    usedWhen: { key: "mirror.lfs.enabled", equals: "true" },
    description:
      "After each sync that changed refs, fetch the LFS objects the new commits point to into the mirror's store before anyone asks, so the first checkout after a push is served locally too. Uses the mirror's own credentials on the primary's LFS endpoint: the catalog token (mirror.upstream.tokenFile), else none (public repositories only). Objects over mirror.lfs.maxObjectSizeMb, or while the disk is low, are skipped. Progress: smart_mirror_lfs_prefetched_objects_total.",
    example: "true",
    value: { kind: "bool" },
  },
  delayedSyncTolerance: {
    name: "mirror.status.delayedSyncTolerance",
    origin: "smart-mirror",
    default: "10m",
    required: false,
    description:
      "A repository the primary changed (webhook, a reconcile saw new refs, or its last sync failed) and that is still not synced after this long is listed as delayed (Bitbucket's delayed-sync list): counted on /status, named on /status/detail and /status/delayed; the mirror reports DEGRADED meanwhile.",
    example: "10m",
    value: { kind: "duration", minMs: SECOND, maxMs: 7 * DAY },
  },
  drainTimeout: {
    name: "mirror.drain.timeout",
    origin: "smart-mirror",
    default: "5m",
    required: false,
    description:
      "The longest a drain lasts (on SIGTERM, so on every `systemctl restart`, or on `smart-mirror drain`), from readiness (GET /status/ready) turning 503 to the stop, quiet period included: clones, fetches, LFS transfers and pushes still running past it are cut and counted (smart_mirror_drain_requests_cut_total, and the log). The rendered systemd unit's TimeoutStopSec is this plus the daemon's own stop time, so systemd never kills a draining daemon.",
    example: "5m",
    value: { kind: "duration", minMs: SECOND, maxMs: HOUR },
  },
  drainQuietPeriod: {
    name: "mirror.drain.quietPeriod",
    origin: "smart-mirror",
    default: "0s",
    required: false,
    description:
      "While draining, keep serving until no new client request has arrived for this long (health checks and /metrics do not count), then wait for the requests in flight. Behind a load balancer set it to the health check's interval x unhealthy threshold (the time the balancer needs to stop sending; a mirror farm uses 30s); 0 on a single host. Must be shorter than mirror.drain.timeout.",
    example: "30s",
    value: { kind: "duration", minMs: SECOND, maxMs: HOUR, zeroMeansOff: true },
  },
  tlsCertificateFile: {
    name: "mirror.metrics.tlsCertificateFile",
    origin: "smart-mirror",
    required: false,
    description:
      "The certificate (PEM chain) nginx serves for the mirror. Its leaf's expiry is exported as smart_mirror_tls_certificate_expiry_timestamp_seconds (read at each scrape, so a renewed file is seen at once) for the certificate-expiry alert. Unset, or unreadable: no such metric (an unreadable file is logged once). The component sets it to the certificate it deploys.",
    example: "/etc/smart-mirror/tls/fullchain.pem",
    value: { kind: "path" },
    arg: "tls",
  },
  eventsUrls: {
    name: "mirror.events.urls",
    origin: "smart-mirror",
    required: false,
    description:
      "Where the mirror POSTs a signed \"repository synchronized\" event (Bitbucket's mirror:repo_synchronized payload, X-Event-Key and X-Hub-Signature headers) after each sync that changed refs. https only; plain http only to a loopback address. Needs mirror.events.secretFile. Unset: no events.",
    example: "https://ci.example.com/hooks/mirror-synced",
    value: { kind: "eventUrls", max: 16 },
    arg: "mirror.events.urls",
  },
  eventsSecretFile: {
    name: "mirror.events.secretFile",
    origin: "smart-mirror",
    required: false,
    description:
      "File holding the HMAC-SHA256 secret the synced events are signed with (X-Hub-Signature: sha256=<hex of the body>); receivers verify with the same secret. Required with mirror.events.urls: events are never sent unsigned. chmod 600.",
    example: DOC.eventsSecretFile,
    secretFile: true,
    value: { kind: "path" },
    arg: "mirror.events.secret",
  },
  eventsQueueSize: {
    name: "mirror.events.queueSize",
    origin: "smart-mirror",
    default: "1000",
    required: false,
    description:
      "Deliveries (one per event and URL) held in memory while waiting to be sent or retried. When full, the oldest is dropped and counted (smart_mirror_events_dropped_total): a receiver that is down never slows syncing or grows the daemon's memory. Undelivered events do not survive a restart.",
    example: "1000",
    value: { kind: "int", min: 1, max: 100_000 },
  },
  eventsMaxAttempts: {
    name: "mirror.events.maxAttempts",
    origin: "smart-mirror",
    default: "8",
    required: false,
    description:
      "Attempts per delivery, the first included. Timeouts, network errors, 408, 429 and 5xx answers are retried with exponential backoff (1 s doubling, at most 1 minute apart, jittered; Retry-After honoured); other answers are final.",
    example: "8",
    value: { kind: "int", min: 1, max: 100 },
  },
  eventsTimeout: {
    name: "mirror.events.timeout",
    origin: "smart-mirror",
    default: "10s",
    required: false,
    description: "One delivery attempt (connect, send, the receiver's answer) taking longer than this is abandoned and retried.",
    example: "10s",
    value: { kind: "duration", minMs: SECOND, maxMs: 5 * MINUTE },
  },
  farmPeersFile: {
    name: "mirror.farm.peersFile",
    origin: "smart-mirror",
    required: false,
    description:
      "Farm mode: the file listing the farm's nodes, one base URL per line (https://10.0.1.23 or https://10.0.1.23:8443; # comments). This node finds its own entry (by asking each peer who it is) and skips it. Re-read when it changes (write it by atomic rename). Peers are reached over their nginx with the farm token; they announce new refs to each other before serving them (so clients hopping between nodes never see refs go backwards) and a joining node takes its first clones from a healthy peer. Unset: a single node. A missing file counts as no peers.",
    example: "/etc/smart-mirror/farm/peers",
    value: { kind: "path" },
  },
  farmTokenFile: {
    name: "mirror.farm.tokenFile",
    origin: "smart-mirror",
    required: false,
    description:
      "Farm mode: the file holding the farm's internal credential, the same on every node. Peers send it as Authorization: Bearer <token> to /farm/announce and to read repositories over /scm/ (seeding); a request with another token is refused (401). Required with mirror.farm.peersFile. chmod 600.",
    example: "/etc/smart-mirror/farm/token",
    secretFile: true,
    value: { kind: "path" },
  },
  farmServerName: {
    name: "mirror.farm.serverName",
    origin: "smart-mirror",
    required: false,
    description:
      "Farm mode: the TLS name every node's certificate carries (the farm's domain). A node connects to a peer's address from mirror.farm.peersFile but sends this name (SNI, Host) and verifies the peer's certificate for it. Required with mirror.farm.peersFile.",
    example: "mirror-syd.example.com",
    value: { kind: "text", maxLength: 253 },
  },
  farmCaCertificatesFile: {
    name: "mirror.farm.caCertificatesFile",
    origin: "smart-mirror",
    required: false,
    description: "Farm mode: CA certificates (PEM) that peers' certificates are verified against, e.g. a private CA. Unset: the system CAs. Verification is never disabled.",
    example: "/etc/smart-mirror/farm/ca.pem",
    value: { kind: "path" },
  },
  farmNodeId: {
    name: "mirror.farm.nodeId",
    origin: "smart-mirror",
    required: false,
    description: "Farm mode: this node's name among its peers, in their logs, announcements and /status/detail. Default: the host name. Give each node its own (nodes recognize themselves in mirror.farm.peersFile by a per-start instance id, so a collision only confuses logs).",
    example: "i-0abc123def4567890",
    value: { kind: "text", maxLength: 128 },
  },
  logLevel: {
    name: "mirror.log.level",
    origin: "smart-mirror",
    default: "info",
    required: false,
    description: "Log level (pino).",
    example: "info",
    value: { kind: "enum", values: ["fatal", "error", "warn", "info", "debug", "trace", "silent"] },
    arg: "mirror.logLevel",
  },
} as const satisfies Record<string, KeySpec>;

/** The short, typed handle of a key (`KEYS.concurrency`): a misspelt one does not compile. */
export type KeyId = keyof typeof KEYS;
export type KeyName = (typeof KEYS)[KeyId]["name"];
type Spec<K extends KeyId> = (typeof KEYS)[K];
/** The values of an enum key, e.g. EnumOf<"auth"> = "primary" | "anonymous" | "tokens". */
export type EnumOf<K extends KeyId> = Spec<K>["value"] extends { values: readonly (infer E extends string)[] } ? E : never;

/** The table in its order (the reference's, and the rendered file's). */
export const KEY_LIST: readonly KeySpec[] = Object.values(KEYS);
/** [id, spec] pairs in the table's order. */
export const KEY_ENTRIES = Object.entries(KEYS) as Array<[KeyId, KeySpec]>;

const BY_NAME = new Map(KEY_LIST.map((k) => [k.name, k]));

export function keySpec(name: string): KeySpec {
  const spec = BY_NAME.get(name);
  if (!spec) throw new Error(`no such configuration key: ${name}`);
  return spec;
}

export function isKnownKey(name: string): boolean {
  return BY_NAME.has(name);
}

/** The keys the component renders from its arguments, with the argument each comes from. */
export function argOfKey(keys: readonly KeySpec[] = KEY_LIST): Map<string, string> {
  return new Map(keys.flatMap((k) => (k.arg === undefined ? [] : [[k.name, k.arg] as [string, string]])));
}

/** The reference's "Type" column, from the value's kind and range. */
export function typeText(v: ValueSpec): string {
  switch (v.kind) {
    case "text":
      return "string";
    case "httpsUrl":
      return "https URL";
    case "duration":
      return `duration (${formatDuration(v.minMs)}..${formatDuration(v.maxMs)}${v.zeroMeansOff ? ", 0 = off" : ""})`;
    case "int":
      return `integer${v.unit ? ` ${v.unit}` : ""} (${v.min}..${v.max}${v.zero ? `, 0 = ${v.zero}` : ""})`;
    case "enum":
      return v.values.join(" | ");
    case "bool":
      return "boolean";
    case "percent":
      return "percent 0..100";
    case "path":
      return "path";
    case "sshBase":
      return "ssh://user@host[:port]";
    case "hostKeys":
      return "list of SSH public keys";
    case "repoList":
      return "list of PROJECT/slug";
    case "projects":
      return "ALL | list of project keys";
    case "refPatterns":
      return "list of ref patterns";
    case "listen":
      return "unix:PATH | HOST:PORT";
    case "eventUrls":
      return `list of https URLs (at most ${v.max})`;
  }
}

/** A default or example with DIR replaced by the actual home. */
export function withHome(text: string, home: string): string {
  return text.replace(/(^|unix:)DIR(?=\/|$)/, `$1${home}`);
}

// Keys a Bitbucket mirror's bitbucket.properties commonly holds that this daemon has no use
// for (database, license, server connector, mirror-farm and other mirroring internals).
// They are reported as ignored rather than as typos.
const BITBUCKET_ONLY = [/^application\.mode$/, /^setup\.(license|sysadmin\..*)$/, /^jdbc\./, /^server\./, /^plugin\.mirroring\./, /^hazelcast\./, /^feature\./];

export function isBitbucketOnlyKey(name: string): boolean {
  return BITBUCKET_ONLY.some((re) => re.test(name));
}

/** The known key an unknown one most likely meant, if any is close enough. */
export function closestKey(unknown: string): string | undefined {
  return closestName(unknown, KEY_LIST.map((k) => k.name));
}

/** Smallest file that passes validation: every always-required key with its example. */
export function minimalExample(home = "DIR"): string {
  return KEY_LIST.filter((k) => k.required === true)
    .map((k) => `${k.name}=${withHome(k.example, home)}`)
    .join("\n");
}

// Markdown table cells: escape the separator, and angle brackets so "<baseUrl>" is not taken for HTML.
function cell(s: string): string {
  return s.replace(/\|/g, "\\|").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/\n/g, " ");
}

function requiredText(k: KeySpec): string {
  if (k.required === true) return "yes";
  if (k.required === false) return "no";
  return `when \`${k.required.key}=${k.required.equals}\``;
}

/** The configuration reference, as a markdown table (README). */
export function renderKeyTable(keys: readonly KeySpec[] = KEY_LIST): string {
  const head = "| Key | Type | Default | Required | Description | Example |\n|---|---|---|---|---|---|\n";
  const rows = keys.map(
    (k) =>
      `| \`${k.name}\` | ${cell(typeText(k.value))} | ${k.default === undefined ? "—" : `\`${cell(k.default)}\``} | ${requiredText(k)} | ${cell(k.description)} | \`${cell(k.example)}\` |`,
  );
  return head + rows.join("\n") + "\n\n" + REFERENCE_NOTES;
}

/** The grammar shared by all keys, printed under the table. */
export const REFERENCE_NOTES = [
  `The file is \`DIR/shared/bitbucket.properties\`, Java properties syntax (\`key=value\`, \`key: value\`, \`#\` comments, \`\\\` continuation lines), UTF-8. Values are trimmed.`,
  `Durations: ${DURATION_GRAMMAR}. Lists: separated by commas (or newlines). Relative paths are relative to DIR.`,
  "Unknown keys are reported as warnings naming the closest known key; keys of a Bitbucket mirror that smart-mirror does not use (application.mode, jdbc.*, server.*, ...) are reported as ignored.",
  "Secrets never go in this file: the *File keys name files, and the secret ones (SSH key, tokens, webhook secret) must be chmod 600.",
  "`smart-mirror check --home DIR` validates all of this (and the files named) without writing anything.",
]
  .map((l) => `- ${l}`)
  .join("\n") + "\n";
