/**
 * One farm node in the bench: a network namespace on the bench bridge (netnsHost.ts) whose
 * daemon and nginx are laid down and started by the real `smart-mirror apply` agent running
 * inside the namespace, under the node's own root prefix, with the exec supervisor in place of
 * systemd (as `npm start` and the e2e test do). What runs is the built bundle and Debian's
 * nginx with the farm's certificate, listening on the node's address, port 443.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { execSupervisor, ExecSupervisor } from "../../sync/agent/execSupervisor";
import { ExecResult, NetnsHost, startNetnsHost } from "../netnsHost";
import { pinnedRequest } from "../pinnedHttps";
import { onCleanup, tempDir } from "../resources";

export const DAEMON_UNIT = "smart-mirror.service";
export const NGINX_UNIT = "nginx.service";

/** Where apply takes its plan from. */
export type PlanSource = { file: string } | { url: string; sha256: string; caFile: string };

export interface ApplyOptions {
  /** `--wait-ready SECONDS`: apply exits 1 unless the node reports ready in time. */
  waitReadySeconds?: number;
  /** Extra arguments for apply (e.g. `--status-url`). */
  extraArgs?: string[];
}

export interface ApplyRun extends ExecResult {
  argv: string[];
  ms: number;
}

export interface FarmNode {
  name: string;
  host: NetnsHost;
  address: string;
  root: string;
  sup: ExecSupervisor;
  /** `smart-mirror apply` inside the node's namespace. */
  apply(source: PlanSource, opts?: ApplyOptions): Promise<ApplyRun>;
  /** A shell script (the farm's node update script) inside the node's namespace. */
  runScript(script: string, args: string[]): Promise<ApplyRun>;
  /** GET a path of the node's own nginx by the farm's name (bypassing the load balancer). */
  get(urlPath: string): Promise<{ status: number; body: string }>;
  /** The daemon's output (the exec supervisor's log of the unit), whole. */
  daemonLog(): string;
  daemonPid(): number | undefined;
  /** The daemon's data home (repos/ under it). */
  home: string;
  stop(): Promise<void>;
}

export interface FarmNodeInput {
  name: string;
  bundle: string;
  serverName: string;
  caPem: string;
}

export async function startFarmNode(i: FarmNodeInput): Promise<FarmNode> {
  // Made before the host, so it is removed after it (cleanups run last first).
  const root = tempDir(`farm-${i.name}`);
  const host = await startNetnsHost(i.name);
  const sup = execSupervisor(root);
  // Runs before the host's stop (which kills everything in the namespace anyway): the
  // supervisor's way first, so nginx and the daemon get their SIGTERM.
  const stopServices = onCleanup(async () => {
    for (const u of [DAEMON_UNIT, NGINX_UNIT]) await sup.stop(u).catch(() => undefined);
  });
  const home = path.join(root, "var/lib/smart-mirror");
  return {
    name: i.name,
    host,
    address: host.address,
    root,
    sup,
    home,
    async apply(source, o = {}) {
      const planArgs = "file" in source ? ["--plan", source.file] : ["--plan-url", source.url, "--plan-sha256", source.sha256, "--plan-ca", source.caFile];
      const argv = [
        "node",
        i.bundle,
        "apply",
        ...planArgs,
        "--root",
        root,
        "--services",
        "exec",
        ...(o.waitReadySeconds !== undefined ? ["--wait-ready", String(o.waitReadySeconds)] : []),
        ...(o.extraArgs ?? []),
      ];
      const t0 = Date.now();
      const r = await host.exec(argv[0], argv.slice(1), { timeoutMs: 300_000 });
      return { ...r, argv, ms: Date.now() - t0 };
    },
    async runScript(script, args) {
      const argv = ["sh", script, ...args];
      const t0 = Date.now();
      const r = await host.exec(argv[0], argv.slice(1), { timeoutMs: 300_000 });
      return { ...r, argv, ms: Date.now() - t0 };
    },
    get: (urlPath) => pinnedRequest({ name: i.serverName, address: host.address, caPem: i.caPem }, { path: urlPath, timeoutMs: 5000 }),
    daemonLog: () => {
      try {
        return fs.readFileSync(sup.logPath(DAEMON_UNIT), "utf8");
      } catch {
        return "";
      }
    },
    daemonPid: () => sup.mainPid(DAEMON_UNIT),
    async stop() {
      await stopServices();
      await host.stop();
    },
  };
}
