/**
 * The mirror farm in the bench (issue #17, "local proof"): N nodes behind a load balancer,
 * with real parts only.
 *
 *     root namespace
 *       git clients ──> HAProxy 127.0.0.1:P (TCP, round-robin per connection, HTTPS readiness checks)
 *                          │ bench bridge
 *       plan server (HTTPS, bench CA) <─── apply --plan-url ... (inside each node)
 *       primary sshd (bridge address) <─── each daemon's SSH (and the test's pushes)
 *                          ├── netns node1: nginx :443 (farm cert) -> daemon (unix socket)
 *                          ├── netns node2: ...
 *                          └── netns node3: ...
 *
 * Clients reach the farm by its name, https://farm.test:P/scm/..., with git's own
 * `http.curloptResolve` pinning the name to HAProxy's address: no hosts file, TLS verification
 * stays on and checks the farm certificate (issued for the name only) against the bench CA.
 *
 * The farm's settings (peers file, farm token, drain quiet period) are set when the daemon
 * bundle knows the keys (sync/config/keys.ts), so the harness runs before and after those
 * pieces land.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { FARM_PEERS_FILE, mirrorPaths } from "../../components/deploy/layout";
import { serializePlan } from "../../components/deploy/plan";
import { Plan } from "../../sync/agent/plan";
import { KEY_LIST } from "../../sync/config/keys";
import { Primary, startPrimary } from "../primary";
import { GitEnv, isolatedGitEnv, listRefs } from "../repos";
import { privateBundleCopy } from "../daemonProcess";
import { freePort, tempDir, waitFor } from "../resources";
import { createCa, TestCa } from "../tls";
import { ApplyOptions, ApplyRun, FarmNode, PlanSource, startFarmNode } from "./farmNode";
import { Haproxy, HaproxyInput, startHaproxy } from "./haproxy";
import { HaproxyServerStat } from "./haproxyConfig";
import { renderFarmNodeScript } from "../../components/render/farmNode";
import { buildNodePlan, ExtraFile, FarmIdentity, FarmSecrets, FarmSettings } from "./nodePlan";
import { PlanServer, startPlanServer } from "./planServer";

export const FARM_NAME = "farm.test";
/** Health checks every 200 ms, 2 failures out, 2 passes in: a draining node leaves within ~0.4 s. */
export const CHECK = { intervalMs: 200, fall: 2, rise: 2 } as const;
/** Longer than the checks need (interval x fall) so no new connection reaches a draining node. */
export const QUIET_PERIOD = "2s";

const hasKey = (name: string) => KEY_LIST.some((k) => k.name === name);

export interface FarmOptions {
  nodes?: number;
  /** "PROJECT/slug" of the repositories the farm mirrors (they must exist on the primary first: see seed). */
  repos: readonly string[];
  /** Create the repositories on the primary before the nodes start. */
  seed: (primary: Primary) => Promise<void>;
  /** Reconcile interval; default 1m. */
  syncInterval?: string;
  /** More properties for every node. */
  extra?: Record<string, string>;
  /** Count the primary's SSH sessions (for the bench). */
  countSessions?: boolean;
}

export interface Farm {
  name: string;
  ca: TestCa;
  primary: Primary;
  haproxy: Haproxy;
  planServer: PlanServer;
  nodes: FarmNode[];
  bundle: string;
  /** "PROJECT/slug" of the mirrored repositories. */
  repos: readonly string[];
  /** What HAProxy checks on each node. */
  checkPath: string;
  /** Whether the bundle has the farm keys (peers, token). */
  farmKeys: boolean;
  /** Whether the bundle's apply takes --plan-url (else plans are applied from a local file). */
  planUrls: boolean;
  /** Whether the bundle's apply takes --wait-ready. */
  agentWaitsReady: boolean;
  /** The primary's webhook secret (as the farm's nodes know it). */
  webhookSecret: string;
  /** `https://farm.test:P/scm/PROJECT/slug.git` */
  url(repo: string): string;
  /** git -c options: the name pinned to HAProxy; a new connection for every request. */
  gitArgs(opts?: { newConnectionPerRequest?: boolean }): string[];
  /** A git client's environment trusting the bench CA only. */
  gitEnv(): GitEnv;
  /** The node's plan for settings (publish it with publish()). */
  planFor(node: FarmNode, settings: FarmSettings): Plan;
  settings(): FarmSettings;
  /** Make a plan available to a node: over HTTPS with its digest, or as a local file (older bundles). */
  publish(node: FarmNode, plan: Plan, label: string): PlanSource;
  /** Update a node to settings as the farm does (the node update script, or the agent with a
   * local plan for older bundles); the result, whatever it is. */
  update(node: FarmNode, settings: FarmSettings, label: string, opts?: ApplyOptions): Promise<ApplyRun>;
  /** update(), and an error with the node's logs unless it succeeded. */
  deploy(node: FarmNode, settings: FarmSettings, label: string, opts?: ApplyOptions): Promise<ApplyRun>;
  /** Whether updates run the farm's node update script (components/render/farmNode.ts). */
  nodeScript: boolean;
  /** Start one more node, deploy it and put it behind HAProxy (it serves once its check passes). */
  addNode(opts?: { wait?: boolean }): Promise<FarmNode>;
  /** HAProxy's view of the nodes. */
  servers(): Promise<HaproxyServerStat[]>;
  /** Every node UP in HAProxy. */
  waitAllUp(timeoutMs?: number): Promise<void>;
  /** The primary's refs of a repository. */
  primaryRefs(repo: string): Promise<Map<string, string>>;
}


const splitRepo = (repo: string) => {
  const [project, slug] = repo.split("/");
  return { project, slug };
};

/**
 * A real host has /var/lib, /etc, /opt ... (0755) before any deploy; under a bench root prefix
 * they would be made by the agent with the node script's umask 077 and keep the daemon's user
 * out. So: every ancestor of the plan's paths exists, 0755, as on a host. The plan's own dirs
 * are left to the agent.
 */
function hostSkeleton(root: string, plan: Plan): void {
  const own = new Set(plan.dirs.map((d) => d.path));
  for (const p of [...plan.dirs.map((d) => d.path), ...plan.files.map((f) => f.path)]) {
    for (let d = path.posix.dirname(p); d !== "/" && !own.has(d); d = path.posix.dirname(d)) {
      const onHost = path.join(root, d);
      if (!fs.existsSync(onHost)) fs.mkdirSync(onHost, { recursive: true, mode: 0o755 });
    }
  }
}

/** The farm's peers file: one base URL per line (every node, this one included). Pure. */
export function renderPeersFile(addresses: readonly string[]): string {
  return addresses.map((a) => `https://${a}`).join("\n") + "\n";
}

export async function startFarm(o: FarmOptions): Promise<Farm> {
  const n = o.nodes ?? 3;
  const bundle = privateBundleCopy(tempDir("farm-bundle"));
  const bundleText = fs.readFileSync(bundle, "utf8");
  // Feature detection on the bundle itself: the farm runs with whichever pieces it has.
  const planUrls = bundleText.includes("--plan-url");
  const readiness = bundleText.includes("/status/ready");
  const checkPath = readiness ? "/status/ready" : "/status";
  const farmKeys = bundleText.includes("/farm/announce") && hasKey("mirror.farm.peersFile");

  const ca = await createCa("smart-mirror farm CA");
  const cert = await ca.issueServerCert([FARM_NAME]);
  const caFile = ca.certPath;
  const mkNode = (i: number) => startFarmNode({ name: `node${i}`, bundle, serverName: FARM_NAME, caPem: ca.certPem });
  const nodes = await Promise.all(Array.from({ length: n }, (_, i) => mkNode(i + 1)));
  // The bridge exists now: the primary and the plan server listen on its root-side address.
  const gateway = nodes[0].host.gatewayAddress;
  const primary = await startPrimary({ host: gateway, port: await freePort(gateway), label: "farm-primary", countSessions: o.countSessions });
  await o.seed(primary);
  const planServer = await startPlanServer(ca, gateway);

  const keyDir = tempDir("farm-key");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "smart-mirror@farm.test", "-f", path.join(keyDir, "id")]);
  const secrets: FarmSecrets = {
    mirrorPrivateKey: fs.readFileSync(path.join(keyDir, "id"), "utf8"),
    mirrorPublicKey: fs.readFileSync(path.join(keyDir, "id.pub"), "utf8").trim(),
    webhookSecret: randomBytes(16).toString("hex"),
    tlsChainPem: fs.readFileSync(cert.chainPath, "utf8"),
    tlsKeyPem: fs.readFileSync(cert.keyPath, "utf8"),
  };
  await primary.authorizeKey(secrets.mirrorPublicKey, { readOnly: true });
  const identity: FarmIdentity = { serverName: FARM_NAME, primarySshBase: `ssh://${primary.user}@${primary.host}:${primary.port}`, primaryHostKey: primary.hostKeyLine, repos: o.repos };
  const farmToken = randomBytes(24).toString("hex");
  const planPaths = mirrorPaths();
  const farmFiles = { token: planPaths.farmTokenFile, ca: planPaths.farmCaFile };
  // The peers file is not in the plan: on AWS the peers refresher (components/farm/plan.ts's
  // withFarm: a timer running `aws ec2 describe-instances`) writes it from the farm's
  // membership; here the harness does, at the same path. The daemon re-reads it when it
  // changes (no restart on a scale-out). withFarm's token and CA files are laid down at the
  // same layout paths below; its refresher units are not (a timer unit and the aws CLI have no
  // place under the exec supervisor).
  const stageOf = (node: FarmNode) => path.join(node.root, "var/lib/smart-mirror-farm/stage");
  const peersFile = (node: FarmNode) => path.join(node.root, FARM_PEERS_FILE);

  const settings = (): FarmSettings => ({
    syncInterval: o.syncInterval ?? "1m",
    extra: {
      ...(readiness && hasKey("mirror.drain.quietPeriod") ? { "mirror.drain.quietPeriod": QUIET_PERIOD, "mirror.drain.timeout": "60s" } : {}),
      ...o.extra,
    },
  });

  const planFor = (node: FarmNode, s: FarmSettings): Plan => {
    const extraFiles: ExtraFile[] = [];
    const extra = { ...s.extra };
    if (farmKeys) {
      extraFiles.push({ path: farmFiles.token, content: farmToken + "\n", secret: true }, { path: farmFiles.ca, content: ca.certPem });
      Object.assign(extra, {
        "mirror.farm.peersFile": peersFile(node),
        "mirror.farm.tokenFile": path.join(node.root, farmFiles.token),
        "mirror.farm.serverName": FARM_NAME,
        "mirror.farm.caCertificatesFile": path.join(node.root, farmFiles.ca),
        "mirror.farm.nodeId": node.name,
      });
    }
    // With the node script, the plan installs the bundle the script fetched and checked.
    const nodeBundle = planUrls ? path.join(stageOf(node), "smart-mirror.js") : bundle;
    return buildNodePlan({ root: node.root, address: node.address, identity, secrets, settings: { ...s, extra }, bundle: nodeBundle, extraFiles });
  };

  let planCounter = 0;
  const publish = (node: FarmNode, plan: Plan, label: string): PlanSource => {
    const text = serializePlan(plan);
    const name = `${node.name}-${label}-${++planCounter}`;
    if (planUrls) return { ...planServer.publish(name, text), caFile };
    const file = path.join(tempDir("farm-plan"), `${name}.json`);
    fs.writeFileSync(file, text, { mode: 0o600 });
    return { file };
  };

  const writePeers = () => {
    const addresses = nodes.map((x) => x.address);
    for (const node of nodes) {
      const file = peersFile(node);
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
      fs.writeFileSync(`${file}.tmp`, renderPeersFile(addresses), { mode: 0o644 });
      fs.renameSync(`${file}.tmp`, file);
    }
  };

  // The farm's node update script, as cloud-init and the SSM document run it on a real node:
  // fetch the bundle over HTTPS, check its digest, then `apply --plan-url`. The bench's host is
  // a root prefix, so the script's `node` is a wrapper adding --root and --services exec.
  const nodeScript = planUrls;
  const bundleRef = nodeScript ? planServer.publishFile("bundle", bundle) : undefined;
  const scriptOf = (node: FarmNode) => {
    const dir = path.join(node.root, "usr/local/sbin");
    const script = path.join(dir, "smart-mirror-farm-node");
    if (!fs.existsSync(script)) {
      fs.mkdirSync(dir, { recursive: true });
      fs.mkdirSync(path.join(node.root, "run/lock"), { recursive: true });
      const wrapper = path.join(dir, "node-under-root");
      fs.writeFileSync(wrapper, `#!/bin/sh\n# The bench's host is a root prefix: the agent applies under it, services by the exec supervisor.\nexec /usr/bin/node "$@" --root ${node.root} --services exec\n`, { mode: 0o755 });
      fs.writeFileSync(script, renderFarmNodeScript({ stageDir: stageOf(node), nodePath: wrapper, lockFile: path.join(node.root, "run/lock/smart-mirror-farm-node.lock") }), { mode: 0o755 });
    }
    return script;
  };

  const update = async (node: FarmNode, s: FarmSettings, label: string, opts: ApplyOptions = {}): Promise<ApplyRun> => {
    const plan = planFor(node, s);
    hostSkeleton(node.root, plan);
    const source = publish(node, plan, label);
    if (!nodeScript || !bundleRef || "file" in source) return node.apply(source, opts);
    return node.runScript(scriptOf(node), [bundleRef.url, bundleRef.sha256, source.url, source.sha256, String(opts.waitReadySeconds ?? 0), caFile]);
  };

  const deploy = async (node: FarmNode, s: FarmSettings, label: string, opts?: ApplyOptions): Promise<ApplyRun> => {
    const r = await update(node, s, label, opts);
    if (r.code !== 0) throw new Error(`apply on ${node.name} failed (${r.code}):\n${r.stderr.slice(-3000)}\n${r.stdout.slice(-2000)}\n--- daemon log ---\n${node.daemonLog().slice(-3000)}`);
    return r;
  };

  const port = await freePort();
  const haproxyInput = (): HaproxyInput => ({
    bind: { host: "127.0.0.1", port },
    nodes: nodes.map((x) => ({ name: x.name, address: x.address, port: 443 })),
    serverName: FARM_NAME,
    caFile,
    checkPath,
    checkIntervalMs: CHECK.intervalMs,
    fall: CHECK.fall,
    rise: CHECK.rise,
  });

  writePeers();
  await Promise.all(nodes.map((node) => deploy(node, settings(), "first")));
  const haproxy = await startHaproxy(haproxyInput());

  const servers = () => haproxy.servers();
  const waitAllUp = async (timeoutMs = 120_000) => {
    let last: HaproxyServerStat[] = [];
    await waitFor(
      "every farm node UP in HAProxy",
      async () => {
        last = await servers();
        return last.length === nodes.length && last.every((s) => s.status === "UP");
      },
      timeoutMs,
      200,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\nHAProxy: ${JSON.stringify(last)}\n${nodes.map((x) => `--- ${x.name} daemon log:\n${x.daemonLog().slice(-1500)}`).join("\n")}`);
    });
  };

  const farm: Farm = {
    name: FARM_NAME,
    ca,
    primary,
    haproxy,
    planServer,
    nodes,
    bundle,
    repos: o.repos,
    checkPath,
    farmKeys,
    planUrls,
    agentWaitsReady: bundleText.includes("--wait-ready"),
    webhookSecret: secrets.webhookSecret,
    url: (repo) => `https://${FARM_NAME}:${port}/scm/${repo}.git`,
    gitArgs: ({ newConnectionPerRequest = true } = {}) => [
      "-c",
      `http.curloptResolve=${FARM_NAME}:${port}:127.0.0.1`,
      // nginx answers `Connection: close` and closes; curl opens a new connection for the
      // next request of the same git command, which HAProxy sends to the next node.
      ...(newConnectionPerRequest ? ["-c", "http.extraHeader=Connection: close"] : []),
    ],
    gitEnv: () => isolatedGitEnv({ GIT_SSL_CAINFO: caFile }),
    planFor,
    settings,
    publish,
    update,
    deploy,
    nodeScript,
    async addNode({ wait = false } = {}) {
      const node = await mkNode(nodes.length + 1);
      nodes.push(node);
      // Every node's peers file lists the new one (the old nodes re-read theirs).
      writePeers();
      await deploy(node, settings(), "first");
      // Registered as an NLB target: it gets clients once its readiness checks pass.
      await haproxy.addServer({ name: node.name, address: node.address, port: 443 });
      if (wait) await waitAllUp();
      return node;
    },
    servers,
    waitAllUp,
    primaryRefs: (repo) => {
      const { project, slug } = splitRepo(repo);
      return listRefs(primary.repoPath(project, slug));
    },
  };
  return farm;
}
