/**
 * haproxy.cfg for the farm's load balancer, the local stand-in for AWS's Network Load
 * Balancer (issue #17): TCP passthrough to each node's nginx (TLS ends on the node, as behind
 * an NLB's TCP listener), a new node for every new connection (round-robin), and HTTPS health
 * checks on the node's readiness endpoint. Pure: plain values in, config text out; the tests
 * run the text through `haproxy -c`.
 *
 * Choices (and why):
 * - `mode tcp` + `balance roundrobin`: an NLB balances per TCP connection and never looks
 *   inside TLS; so does this. A git operation whose requests come on separate connections
 *   (the load generator sends `Connection: close`) has them land on different nodes, which
 *   is exactly the case the farm's consistency work must survive.
 * - Health checks speak HTTPS to the node's nginx (`check-ssl`), send SNI and Host for the
 *   farm's name, and VERIFY the node's certificate against the bench CA for that name
 *   (`verify required ca-file ... verifyhost NAME`): the check then proves what clients get
 *   (the farm certificate, the farm's nginx site) rather than any TLS listener on port 443.
 *   An NLB's HTTPS target check does not verify certificates; verifying costs nothing here and
 *   catches a node deployed with the wrong certificate.
 * - `http-check expect status 200` on the readiness path: 503 while a node syncs or drains.
 * - A short check interval and fall/rise counts are parameters: tests use fast checks so a
 *   draining node leaves the rotation within the daemon's quiet period
 *   (mirror.drain.quietPeriod must be at least interval x fall).
 * - No client-IP preservation (an NLB keeps the client's address): nginx would need the PROXY
 *   protocol to see it, and nothing the farm proof measures depends on it.
 * - A stats socket (admin level, mode 0600, under the run's temp dir): the tests read each
 *   server's state and session count from it (`show stat`).
 */

export interface HaproxyNode {
  /** Server name in HAProxy (letters, digits, `-`, `_`). */
  name: string;
  address: string;
  port: number;
}

export interface HaproxyConfigInput {
  /** Where clients connect (root namespace loopback in the bench). */
  bind: { host: string; port: number };
  nodes: readonly HaproxyNode[];
  /** The farm's TLS name: SNI, Host and the verified certificate name of the checks. */
  serverName: string;
  /** PEM file of the CA that signed the nodes' certificate. */
  caFile: string;
  /** Readiness path checked on each node (the daemon's GET /status/ready). */
  checkPath: string;
  /** Milliseconds between two checks of a node. */
  checkIntervalMs: number;
  /** Failed checks before a node leaves the rotation. */
  fall: number;
  /** Passed checks before a node (re)enters the rotation. */
  rise: number;
  /** Admin socket for `show stat`. */
  statsSocket: string;
  /** Idle timeout of client and server sides; a clone of a big repository may pause long. */
  idleTimeoutSeconds?: number;
}

const NAME = /^[A-Za-z0-9_-]+$/;
const DNS = /^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/;

function check(i: HaproxyConfigInput): void {
  const int = (what: string, n: number, min: number) => {
    if (!Number.isInteger(n) || n < min) throw new Error(`haproxy config: ${what} must be an integer >= ${min} (got ${n})`);
  };
  if (i.nodes.length === 0) throw new Error("haproxy config: a farm needs at least one node");
  const seen = new Set<string>();
  for (const n of i.nodes) {
    if (!NAME.test(n.name)) throw new Error(`haproxy config: server name ${JSON.stringify(n.name)} must match ${NAME}`);
    if (seen.has(n.name)) throw new Error(`haproxy config: server name ${n.name} is used twice`);
    seen.add(n.name);
    int(`port of ${n.name}`, n.port, 1);
  }
  if (!DNS.test(i.serverName)) throw new Error(`haproxy config: serverName must be a DNS name (got ${JSON.stringify(i.serverName)})`);
  if (!i.checkPath.startsWith("/") || /\s/.test(i.checkPath)) throw new Error(`haproxy config: checkPath must be an absolute path without spaces (got ${JSON.stringify(i.checkPath)})`);
  int("checkIntervalMs", i.checkIntervalMs, 10);
  int("fall", i.fall, 1);
  int("rise", i.rise, 1);
  int("bind port", i.bind.port, 1);
  for (const [what, p] of [["caFile", i.caFile], ["statsSocket", i.statsSocket]] as const) {
    if (!p.startsWith("/") || /\s/.test(p)) throw new Error(`haproxy config: ${what} must be an absolute path without spaces (got ${JSON.stringify(p)})`);
  }
}

/** A server's check options (the config's default-server line; a server added at run time gets them too). */
export function serverCheckArgs(i: Pick<HaproxyConfigInput, "serverName" | "caFile" | "checkIntervalMs" | "fall" | "rise">): string {
  return `check check-ssl check-sni ${i.serverName} verify required ca-file ${i.caFile} verifyhost ${i.serverName} inter ${i.checkIntervalMs}ms fall ${i.fall} rise ${i.rise}`;
}

/**
 * Admin-socket commands that add a server which receives nothing until its checks pass: HAProxy
 * 2.6 starts a new server UP (health = rise) and has no init-state, so it is added in
 * maintenance, enabled and forced down in ONE command line (one thread runs it to the end, no
 * connection is routed between the commands); then `rise` passing checks bring it UP, as an
 * NLB's new target is "initial" until healthy. Pure.
 */
export function addServerCommand(i: Pick<HaproxyConfigInput, "serverName" | "caFile" | "checkIntervalMs" | "fall" | "rise">, node: HaproxyNode): string {
  if (!NAME.test(node.name)) throw new Error(`haproxy: server name ${JSON.stringify(node.name)} must match ${NAME}`);
  const s = `nodes/${node.name}`;
  return [`add server ${s} ${node.address}:${node.port} ${serverCheckArgs(i)}`, `enable health ${s}`, `enable server ${s}`, `set server ${s} health down`].join("; ");
}

export function renderHaproxyConfig(i: HaproxyConfigInput): string {
  check(i);
  const idle = `${i.idleTimeoutSeconds ?? 600}s`;
  return [
    "# Written by testbed/farm/haproxyConfig.ts: the farm's NLB stand-in (TCP, round-robin, HTTPS readiness checks).",
    "global",
    `  stats socket ${i.statsSocket} mode 600 level admin`,
    "  maxconn 4096",
    // One thread: admin command lines run to their end before any connection is routed.
    "  nbthread 1",
    // Without it HAProxy warns that no certificate store was given (the checks name their CA).
    "  ssl-server-verify required",
    "",
    "defaults",
    "  mode tcp",
    "  timeout connect 5s",
    `  timeout client ${idle}`,
    `  timeout server ${idle}`,
    `  timeout check ${Math.max(1000, i.checkIntervalMs * 2)}ms`,
    "",
    "frontend farm",
    `  bind ${i.bind.host}:${i.bind.port}`,
    "  default_backend nodes",
    "",
    "backend nodes",
    "  balance roundrobin",
    "  option httpchk",
    `  http-check send meth GET uri ${i.checkPath} ver HTTP/1.1 hdr Host ${i.serverName}`,
    "  http-check expect status 200",
    `  default-server ${serverCheckArgs(i)}`,
    ...i.nodes.map((n) => `  server ${n.name} ${n.address}:${n.port}`),
    "",
  ].join("\n");
}

/** One row of `show stat` for a server of the backend. */
export interface HaproxyServerStat {
  name: string;
  /** "UP", "DOWN", "UP 1/2", "DOWN 1/2", "MAINT", "no check" ... */
  status: string;
  /** Connections (sessions) sent to the server so far. */
  sessionsTotal: number;
  /** Connections open to it now. */
  sessionsNow: number;
}

/** Parse `show stat` CSV (first line `# pxname,svname,...`); servers of `backend` only. Pure. */
export function parseShowStat(csv: string, backend = "nodes"): HaproxyServerStat[] {
  const lines = csv.split("\n").filter((l) => l.trim() !== "");
  if (lines.length === 0 || !lines[0].startsWith("# ")) throw new Error(`not HAProxy show stat output: ${JSON.stringify(csv.slice(0, 80))}`);
  const head = lines[0].slice(2).split(",");
  const col = (name: string) => {
    const i = head.indexOf(name);
    if (i < 0) throw new Error(`show stat has no ${name} column`);
    return i;
  };
  const [px, sv, status, stot, scur] = ["pxname", "svname", "status", "stot", "scur"].map(col);
  return lines
    .slice(1)
    .map((l) => l.split(","))
    .filter((f) => f[px] === backend && f[sv] !== "BACKEND" && f[sv] !== "FRONTEND")
    .map((f) => ({ name: f[sv], status: f[status], sessionsTotal: Number(f[stot]), sessionsNow: Number(f[scur]) }));
}
