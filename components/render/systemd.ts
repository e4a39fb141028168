/**
 * The systemd unit of the sync daemon: pure (no Pulumi), snapshot-tested and checked with
 * `systemd-analyze verify` and `systemd-analyze security` in the tests.
 *
 * The daemon needs: its home (read-write), the network (TCP to the primary, a unix or TCP
 * socket for nginx), and git subprocesses. Everything else is taken away: no capabilities,
 * no new privileges, a read-only OS, no /home, private /tmp and /dev, no kernel knobs, only
 * the usual system-service syscalls.
 */

import { parseDuration } from "../../sync/config/duration";
import { KEYS } from "../../sync/config/keys";

export interface DaemonUnitArgs {
  /** System account the daemon runs as (never root). */
  user: string;
  /** Default: same as user. */
  group?: string;
  /** The mirror home (`run --home`); the only writable place besides extraReadWritePaths. */
  home: string;
  /** Default /usr/bin/node. */
  nodePath?: string;
  /** The bundled daemon, e.g. /opt/smart-mirror/smart-mirror.js. */
  bundlePath: string;
  /** More writable places, e.g. a data volume mounted outside the home. */
  extraReadWritePaths?: string[];
  /** Hard memory cap (systemd syntax: "4G", "512M", "80%"); none by default: the host is the mirror's. */
  memoryMax?: string;
  /** Seconds between a crash and the restart; default 5. */
  restartSec?: number;
  /**
   * mirror.drain.timeout in seconds (default 300, the key's default): on SIGTERM the daemon first
   * drains for up to this long (serve/drain.ts), then stops within DAEMON_STOP_DEADLINE_SEC.
   */
  drainTimeoutSec?: number;
  /** Seconds systemd waits after SIGTERM before SIGKILL; default: the daemon's longest stop (stopBoundSec) + 10. */
  timeoutStopSec?: number;
  /** Default 65536: one fd per client connection, pack file and git subprocess pipe. */
  limitNofile?: number;
  description?: string;
}

/**
 * The EC2 instance metadata service (IPv4, and IPv6 on Nitro). The daemon never needs it, and
 * it must not reach it: the user data there holds the host's SSH private key, and the
 * instance role's credentials are served there too. A git hook or a bug in the daemon gets
 * ECONNREFUSED-like EPERM instead.
 */
export const METADATA_SERVICE_ADDRESSES = ["169.254.169.254", "fd00:ec2::254"] as const;

/** mirror.drain.timeout's default, in seconds (sync/config/keys.ts). */
export const DEFAULT_DRAIN_TIMEOUT_SEC = 300;
/** After the drain the daemon stops within this (sync/main.ts STOP_DEADLINE_MS: running syncs, the reconcile, events). */
export const DAEMON_STOP_DEADLINE_SEC = 30;
/** Margin over the daemon's own bound before systemd sends SIGKILL. */
const STOP_MARGIN_SEC = 10;

/**
 * mirror.drain.timeout in whole seconds from the properties the daemon gets (the component's
 * mirror.extraProperties), for drainTimeoutSec; undefined = the key's default. A bad value is
 * refused by the argument checks (components/validate.ts) before anything is rendered.
 */
export function drainTimeoutSecOf(properties: Readonly<Record<string, string>> | undefined): number | undefined {
  const v = properties?.[KEYS.drainTimeout.name];
  const ms = v === undefined ? undefined : parseDuration(v);
  return ms === undefined ? undefined : Math.max(1, Math.ceil(ms / 1000));
}

/** The longest a SIGTERM'd daemon takes to exit: its drain bound, then its stop deadline. */
export function stopBoundSec(drainTimeoutSec = DEFAULT_DRAIN_TIMEOUT_SEC): number {
  return drainTimeoutSec + DAEMON_STOP_DEADLINE_SEC;
}

const ACCOUNT = /^[a-z_][a-z0-9_-]{0,31}$/;
/** Characters systemd would read as syntax in ExecStart/ReadWritePaths (space, quotes, %specifiers, $VARS, escapes) or that no path should hold. */
const UNSAFE_PATH_CHARS = /[\s"'%$\\;`\0]/;

export class UnitArgsError extends Error {
  constructor(readonly problems: string[]) {
    super(`cannot render the smart-mirror systemd unit:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "UnitArgsError";
  }
}

function pathProblem(name: string, p: string): string | undefined {
  if (!p.startsWith("/")) return `${name} must be an absolute path (got ${JSON.stringify(p)}); e.g. "/${p.replace(/^\.?\/*/, "")}"`;
  if (UNSAFE_PATH_CHARS.test(p)) return `${name} ${JSON.stringify(p)} contains a space, quote, %, $, backslash, ; or backtick, which systemd would read as syntax; choose a plain path`;
  if (/(^|\/)\.\.?(\/|$)/.test(p) || p.includes("//") || (p.length > 1 && p.endsWith("/"))) return `${name} ${JSON.stringify(p)} must be normalized (no ".", "..", "//" or trailing "/")`;
  return undefined;
}

/** All problems at once, each naming the argument and the fix. */
export function validateDaemonUnitArgs(a: DaemonUnitArgs): string[] {
  const problems: string[] = [];
  if (!ACCOUNT.test(a.user)) problems.push(`user ${JSON.stringify(a.user)} must be a system account name matching ${ACCOUNT} (e.g. "smart-mirror")`);
  else if (a.user === "root") problems.push(`user must not be "root": the daemon needs no privileges; use a system account such as "smart-mirror"`);
  if (a.group !== undefined && !ACCOUNT.test(a.group)) problems.push(`group ${JSON.stringify(a.group)} must match ${ACCOUNT} (e.g. "smart-mirror")`);
  const paths: Array<[string, string]> = [
    ["home", a.home],
    ["nodePath", a.nodePath ?? "/usr/bin/node"],
    ["bundlePath", a.bundlePath],
    ...(a.extraReadWritePaths ?? []).map((p, i): [string, string] => [`extraReadWritePaths[${i}]`, p]),
  ];
  for (const [name, p] of paths) {
    const why = pathProblem(name, p);
    if (why) problems.push(why);
  }
  if (a.home === "/") problems.push(`home must not be "/": give the daemon its own directory, e.g. "/var/lib/smart-mirror"`);
  if (a.memoryMax !== undefined && !/^(\d+[KMGT]?|\d{1,2}%|100%|infinity)$/.test(a.memoryMax)) problems.push(`memoryMax ${JSON.stringify(a.memoryMax)} must be bytes with an optional K/M/G/T suffix, a percentage or "infinity" (e.g. "4G")`);
  const positive = (name: string, v: number | undefined) => {
    if (v !== undefined && (!Number.isInteger(v) || v <= 0)) problems.push(`${name} must be a positive whole number of seconds (got ${v})`);
  };
  positive("restartSec", a.restartSec);
  positive("drainTimeoutSec", a.drainTimeoutSec);
  positive("timeoutStopSec", a.timeoutStopSec);
  if (a.limitNofile !== undefined && (!Number.isInteger(a.limitNofile) || a.limitNofile < 1024)) problems.push(`limitNofile must be a whole number >= 1024 (got ${a.limitNofile}); the daemon holds a descriptor per client and per git pipe`);
  const bound = stopBoundSec(a.drainTimeoutSec);
  const stop = a.timeoutStopSec ?? bound + STOP_MARGIN_SEC;
  if (stop <= bound + 5) problems.push(`timeoutStopSec (${stop}) must exceed the daemon's longest stop (${bound} s: mirror.drain.timeout ${a.drainTimeoutSec ?? DEFAULT_DRAIN_TIMEOUT_SEC} s of draining + ${DAEMON_STOP_DEADLINE_SEC} s of stopping) by more than 5 s, or systemd kills the daemon mid-drain and cuts its clones; use at least ${bound + STOP_MARGIN_SEC}, or leave it unset`);
  if (a.description !== undefined && /[\n\r%]/.test(a.description)) problems.push(`description must be one line without "%"`);
  return problems;
}

/** Where ProtectHome= hides everything; a home there must be bound back in. */
const HOME_DIRS = ["/home", "/root", "/run/user"];
const underHomeDirs = (p: string) => HOME_DIRS.some((d) => p === d || p.startsWith(d + "/"));

export function renderDaemonUnit(a: DaemonUnitArgs): string {
  const problems = validateDaemonUnitArgs(a);
  if (problems.length > 0) throw new UnitArgsError(problems);
  const group = a.group ?? a.user;
  const nodePath = a.nodePath ?? "/usr/bin/node";
  const writable = [a.home, ...(a.extraReadWritePaths ?? [])];
  const hidden = writable.filter(underHomeDirs);
  const lines = [
    "# Rendered by smart-mirror (components/render/systemd.ts); the next deploy overwrites local edits.",
    "[Unit]",
    `Description=${a.description ?? "smart-mirror: read-only Git mirror (sync daemon)"}`,
    // The daemon connects to the primary at start: wait for a configured network, not just links.
    "After=network-online.target",
    "Wants=network-online.target",
    // Crash loops end in "failed" (visible in systemctl/monitoring) instead of restarting forever.
    "StartLimitIntervalSec=300",
    "StartLimitBurst=10",
    // The home is the data volume's mount point on EC2 (mounted with nofail so SSH survives a
    // missing volume): never start the daemon on the empty directory of the root disk.
    `RequiresMountsFor=${a.home}`,
    "",
    "[Service]",
    "Type=simple",
    `User=${a.user}`,
    `Group=${group}`,
    `WorkingDirectory=${a.home}`,
    `ExecStart=${nodePath} ${a.bundlePath} run --home ${a.home}`,
    "Environment=NODE_ENV=production",
    "Restart=on-failure",
    `RestartSec=${a.restartSec ?? 5}s`,
    // SIGTERM to the daemon only; it stops its git children while draining. Whatever is left
    // after TimeoutStopSec (a hung git) gets SIGKILL with the rest of the cgroup.
    "KillMode=mixed",
    "KillSignal=SIGTERM",
    // SIGTERM drains first (readiness 503, in-flight clones finish; mirror.drain.*): from its bound.
    `TimeoutStopSec=${a.timeoutStopSec ?? stopBoundSec(a.drainTimeoutSec) + STOP_MARGIN_SEC}s`,
    `LimitNOFILE=${a.limitNofile ?? 65536}`,
    ...(a.memoryMax ? [`MemoryMax=${a.memoryMax}`] : []),
    // Repositories and sockets readable by the group (nginx), never by others.
    "UMask=0027",
    "",
    "# Privileges: none.",
    "NoNewPrivileges=yes",
    "CapabilityBoundingSet=",
    "AmbientCapabilities=",
    "RestrictSUIDSGID=yes",
    "",
    "# File system: the OS read-only, the home writable, nothing else.",
    "ProtectSystem=strict",
    `ReadWritePaths=${writable.join(" ")}`,
    // ProtectHome=yes would make a home under /home, /root or /run/user unreachable; tmpfs
    // hides the others' homes and the bind brings ours back.
    ...(hidden.length > 0 ? ["ProtectHome=tmpfs", `BindPaths=${hidden.join(" ")}`] : ["ProtectHome=yes"]),
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "PrivateMounts=yes",
    "",
    "# Kernel and other processes: out of reach.",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes",
    "ProtectClock=yes",
    "ProtectHostname=yes",
    "ProtectProc=invisible",
    "RestrictNamespaces=yes",
    "RestrictRealtime=yes",
    "LockPersonality=yes",
    "RemoveIPC=yes",
    // V8's JIT compiler writes machine code and then executes it (W+X pages); denying that
    // makes node abort at startup. Everything else above still applies.
    "MemoryDenyWriteExecute=no",
    "",
    "# Network: IP to the primary and clients, unix sockets to nginx and git; no raw or netlink sockets.",
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
    // systemd grants what IPAddressAllow= lists, denies what IPAddressDeny= lists, and grants
    // the rest: a deny list alone blocks just these addresses (so no IPAddressAllow= here,
    // which would take precedence). Applies to git and ssh children too (same cgroup).
    `IPAddressDeny=${METADATA_SERVICE_ADDRESSES.join(" ")}`,
    "",
    "# System calls: the usual service set. A filtered call fails with EPERM instead of killing",
    "# the process, so libuv's optional fast paths (io_uring) fall back instead of crashing.",
    "SystemCallArchitectures=native",
    "SystemCallFilter=@system-service",
    // Neither the daemon nor git changes owners, ids or resource limits (LimitNOFILE is set
    // above, so node has no soft limit to raise).
    "SystemCallFilter=~@privileged @resources",
    "SystemCallErrorNumber=EPERM",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ];
  return lines.join("\n");
}
