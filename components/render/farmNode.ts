/**
 * What a farm node runs, rendered pure: the boot/update script (the same text at boot, from
 * cloud-init, and on every update, as the SSM document's command), the peers refresher (script,
 * systemd service and timer) and the node's cloud-init.
 *
 * The update script is the whole "pull deploy" on the node:
 *   1. fetch the daemon bundle (s3:// through `aws s3 cp`, https:// through `curl --fail`, with
 *      a CA file when given), into a private staging directory;
 *   2. check its sha256 against the digest the component recorded, BEFORE anything runs it: a
 *      tampered or truncated bundle is deleted and the script exits 3;
 *   3. run `node BUNDLE apply --plan-url URL --plan-sha256 HEX [--wait-ready S] [--plan-ca F]`:
 *      the agent fetches the plan and checks ITS digest before parsing (agent CLI contract), and
 *      with --wait-ready it exits non-zero when the node is not ready in time, which is what
 *      stops the SSM association's rollout (maxErrors 0) on its first failed node.
 * One apply at a time (flock): the boot run and a rollout's association may overlap on a new node.
 * Inputs are positional and checked by the script itself (scheme, 64 hex digits), and the SSM
 * document's allowedPatterns check them again before they reach a shell.
 */
import { cloudConfigText, dataVolumeSteps, machineBase } from "./cloudInit";

export const FARM_NODE_SCRIPT_PATH = "/usr/local/sbin/smart-mirror-farm-node";
export const FARM_PEERS_SCRIPT_PATH = "/usr/local/sbin/smart-mirror-farm-peers";
export const FARM_PEERS_SERVICE = "smart-mirror-farm-peers.service";
export const FARM_PEERS_TIMER = "smart-mirror-farm-peers.timer";
/** Where the peers refresher's units live (plan files; systemd's admin directory). */
export const FARM_PEERS_UNIT_DIR = "/etc/systemd/system";

/** A source the node can fetch from: an S3 object or an HTTPS URL (no spaces or quotes: SSM allowedPattern too). */
export const SOURCE_PATTERN = "^(s3|https)://[A-Za-z0-9._~:/?&=%+@-]+$";
export const SHA256_PATTERN = "^[0-9a-f]{64}$";

export interface FarmNodeScriptOptions {
  /** Private (0700) directory for the fetched bundle; the plan installs the bundle from STAGE/smart-mirror.js. */
  stageDir: string;
  /** Default /usr/bin/node. */
  nodePath?: string;
  /** Default /run/lock/smart-mirror-farm-node.lock. */
  lockFile?: string;
  /** The AWS region the aws CLI (this script's and the agent's) signs requests for. */
  region?: string;
}

const SHELL_SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;
function safe(what: string, v: string): string {
  if (!SHELL_SAFE.test(v)) throw new Error(`farm node script: ${what} ${JSON.stringify(v)} must be a plain path or name (letters, digits, _@%+=:,./-)`);
  return v;
}

/**
 * The boot/update script. Arguments: BUNDLE_URL BUNDLE_SHA256 PLAN_URL PLAN_SHA256
 * [WAIT_READY_SECONDS (0 = do not wait)] [CA_FILE]. Exit 2 bad arguments, 3 digest mismatch,
 * otherwise the fetch's or the agent's exit code.
 */
export function renderFarmNodeScript(o: FarmNodeScriptOptions): string {
  const stage = safe("stageDir", o.stageDir.replace(/\/+$/, ""));
  const node = safe("nodePath", o.nodePath ?? "/usr/bin/node");
  const lock = safe("lockFile", o.lockFile ?? "/run/lock/smart-mirror-farm-node.lock");
  const region = o.region !== undefined ? safe("region", o.region) : undefined;
  return `#!/bin/sh
# smart-mirror farm node: fetch the daemon bundle, check its sha256, apply the plan.
# Rendered by smart-mirror (components/render/farmNode.ts); the same text runs at boot
# (cloud-init) and on every update (the farm's SSM document).
set -eu
umask 077
# The SSM agent's shell and cloud-init have short PATHs; the aws CLI may be a snap.
PATH="$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/snap/bin"
export PATH
${region ? `AWS_DEFAULT_REGION=${region}\nexport AWS_DEFAULT_REGION\n` : ""}
fail() { echo "smart-mirror farm node: $2" >&2; exit "$1"; }
[ "$#" -ge 4 ] || fail 2 "usage: $0 BUNDLE_URL BUNDLE_SHA256 PLAN_URL PLAN_SHA256 [WAIT_READY_SECONDS] [CA_FILE]"
bundle_url="$1"
bundle_sha="$2"
plan_url="$3"
plan_sha="$4"
wait_ready="\${5:-0}"
ca_file="\${6:-}"

source_ok() { case "$1" in s3://*|https://*) ;; *) return 1 ;; esac; case "$1" in *[!A-Za-z0-9._~:/?\\&=%+@-]*) return 1 ;; esac; }
sha_ok() { [ "\${#1}" -eq 64 ] && case "$1" in *[!0-9a-f]*) false ;; *) true ;; esac; }
source_ok "$bundle_url" || fail 2 "the bundle source must be an s3:// or https:// URL"
source_ok "$plan_url" || fail 2 "the plan source must be an s3:// or https:// URL"
sha_ok "$bundle_sha" || fail 2 "the bundle digest must be 64 lowercase hex digits (sha256)"
sha_ok "$plan_sha" || fail 2 "the plan digest must be 64 lowercase hex digits (sha256)"
case "$wait_ready" in ''|*[!0-9]*) fail 2 "WAIT_READY_SECONDS must be a whole number" ;; esac
if [ -n "$ca_file" ] && [ ! -r "$ca_file" ]; then fail 2 "CA file $ca_file is not readable"; fi

fetch() {
  case "$1" in
    s3://*) aws s3 cp --only-show-errors "$1" "$2" ;;
    https://*)
      if [ -n "$ca_file" ]; then
        curl --fail --silent --show-error --proto =https --tlsv1.2 --retry 5 --retry-connrefused --max-time 900 --cacert "$ca_file" -o "$2" "$1"
      else
        curl --fail --silent --show-error --proto =https --tlsv1.2 --retry 5 --retry-connrefused --max-time 900 -o "$2" "$1"
      fi
      ;;
  esac
}

stage=${stage}
mkdir -p "$stage"
chmod 0700 "$stage"
# One apply at a time: cloud-init's boot run and a rollout may overlap on a new node.
exec 9>${lock}
flock 9

tmp=$(mktemp "$stage/bundle.XXXXXX")
trap 'rm -f "$tmp"' EXIT
fetch "$bundle_url" "$tmp" || fail 1 "cannot fetch the bundle from $bundle_url"
actual=$(sha256sum "$tmp" | cut -d ' ' -f 1)
if [ "$actual" != "$bundle_sha" ]; then
  fail 3 "the bundle from $bundle_url has sha256 $actual, not the recorded $bundle_sha; refusing to run it"
fi
chmod 0644 "$tmp"
mv -f "$tmp" "$stage/smart-mirror.js"
trap - EXIT

set -- ${node} "$stage/smart-mirror.js" apply --plan-url "$plan_url" --plan-sha256 "$plan_sha"
if [ "$wait_ready" -gt 0 ]; then set -- "$@" --wait-ready "$wait_ready"; fi
if [ -n "$ca_file" ]; then set -- "$@" --plan-ca "$ca_file"; fi
echo "smart-mirror farm node: bundle $bundle_sha verified; applying plan $plan_sha"
exec "$@"
`;
}

/**
 * The SSM document's commands: the script's arguments from the document's parameters, then the
 * script itself (aws:runShellScript writes the lines to a file and runs it with sh).
 */
export function ssmRunCommand(script: string, params: { bundleUrl: string; bundleSha256: string; planUrl: string; planSha256: string; waitReadySeconds: string }): string[] {
  const body = script.split("\n").filter((l, i) => !(i === 0 && l.startsWith("#!")));
  return [`set -- '${params.bundleUrl}' '${params.bundleSha256}' '${params.planUrl}' '${params.planSha256}' '${params.waitReadySeconds}'`, ...body];
}

export interface PeersScriptOptions {
  /** The instance tag every node of this farm carries (the Auto Scaling group propagates it). */
  tagKey: string;
  tagValue: string;
  peersFile: string;
  region?: string;
}

/**
 * The peers refresher: the running instances of this farm (by tag) -> their private addresses
 * as `https://IP` lines, written atomically (temp file in the same directory, then rename), and
 * only when the list changed, so the daemon's re-read sees whole files only. A failed lookup or
 * an empty answer (this node itself runs, so never right) keeps the last good file.
 */
export function renderFarmPeersScript(o: PeersScriptOptions): string {
  const file = safe("peersFile", o.peersFile);
  const tag = safe("tagKey", o.tagKey);
  const value = safe("tagValue", o.tagValue);
  const region = o.region !== undefined ? ` --region ${safe("region", o.region)}` : "";
  return `#!/bin/sh
# smart-mirror farm: refresh the peers file from the running instances tagged ${tag}=${value}.
# Rendered by smart-mirror (components/render/farmNode.ts).
set -eu
PATH="$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/snap/bin"
export PATH
peers_file=${file}
dir=$(dirname "$peers_file")
mkdir -p "$dir"
ips=$(aws ec2 describe-instances${region} --filters "Name=tag:${tag},Values=${value}" "Name=instance-state-name,Values=running" --query "Reservations[].Instances[].PrivateIpAddress" --output text)
tmp=$(mktemp "$dir/.peers.XXXXXX")
trap 'rm -f "$tmp"' EXIT
for ip in $ips; do
  case "$ip" in *[!0-9.]*|'') continue ;; esac
  echo "https://$ip"
done | sort -u > "$tmp"
if [ ! -s "$tmp" ]; then
  echo "smart-mirror farm peers: no running node tagged ${tag}=${value} (not even this one); keeping $peers_file" >&2
  exit 1
fi
chmod 0644 "$tmp"
if [ -f "$peers_file" ] && cmp -s "$tmp" "$peers_file"; then exit 0; fi
mv -f "$tmp" "$peers_file"
trap - EXIT
echo "smart-mirror farm peers: $(wc -l < "$peers_file") peer(s) in $peers_file"
`;
}

export interface PeersUnitsOptions {
  scriptPath?: string;
  /** Directory the script writes (the peers file's). */
  peersDir: string;
  /** Seconds between refreshes. Default 30. */
  intervalSeconds?: number;
}

/** The refresher's oneshot service and its timer (first run at once, then every interval). */
export function renderFarmPeersUnits(o: PeersUnitsOptions): { service: string; timer: string } {
  const script = safe("scriptPath", o.scriptPath ?? FARM_PEERS_SCRIPT_PATH);
  const dir = safe("peersDir", o.peersDir);
  const every = o.intervalSeconds ?? 30;
  if (!Number.isInteger(every) || every < 5 || every > 3600) throw new Error(`farm peers timer: intervalSeconds ${every} must be a whole number from 5 to 3600`);
  const service = `# Rendered by smart-mirror (components/render/farmNode.ts).
[Unit]
Description=smart-mirror farm: refresh the peers file
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
ExecStart=${script}
# Reads the instance role's credentials (IMDSv2) and writes only the peers directory.
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=${dir}
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
LockPersonality=yes
`;
  const timer = `# Rendered by smart-mirror (components/render/farmNode.ts).
[Unit]
Description=smart-mirror farm: refresh the peers file every ${every}s

[Timer]
OnActiveSec=0
OnUnitActiveSec=${every}s
AccuracySec=1s

[Install]
WantedBy=timers.target
`;
  return { service, timer };
}

export type FarmNodeOs = "ubuntu-24.04" | "debian-12";

export interface FarmCloudInitValues {
  os: FarmNodeOs;
  /** The mirror home: the node's data volume's mount point. */
  home: string;
  deviceName: string;
  /** The update script (renderFarmNodeScript). */
  nodeScript: string;
  /** Where the current plan and bundle are, and their digests (the launch template's version changes with them). */
  bundleUrl: string;
  bundleSha256: string;
  planUrl: string;
  planSha256: string;
}

/**
 * A farm node's cloud-init: the single host's packages and data-volume step (the volume found
 * by "-": the launch template's), the aws CLI (Debian's package; Ubuntu 24.04 has it as a snap
 * only), curl, and the update script run once with the current plan, without waiting for
 * readiness (a new node's first sync may take long; the load balancer's health check keeps
 * clients away until it is ready). No SSH keys: nobody logs in; Session Manager is the shell.
 */
export function renderFarmCloudInit(v: FarmCloudInitValues): string {
  const volume = dataVolumeSteps({ volumeId: "-", deviceName: v.deviceName, mountPoint: v.home });
  const config = {
    ...machineBase(undefined, v.os === "debian-12" ? ["curl", "awscli"] : ["curl"]),
    ...(v.os === "ubuntu-24.04" ? { snap: { commands: [["snap", "install", "aws-cli", "--classic"]] } } : {}),
    ssh_pwauth: false,
    disable_root: true,
    write_files: [volume.file, { path: FARM_NODE_SCRIPT_PATH, permissions: "0755", owner: "root:root", content: v.nodeScript }],
    runcmd: [...volume.runcmd, [FARM_NODE_SCRIPT_PATH, v.bundleUrl, v.bundleSha256, v.planUrl, v.planSha256, "0"]],
  };
  return cloudConfigText(config, "components/render/farmNode.ts");
}
