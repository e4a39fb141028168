/**
 * Debian's HAProxy as a foreground master-worker process (`-W -db`), configured by
 * haproxyConfig.ts: the farm's load balancer in the bench. The config is
 * checked with `haproxy -c` first. A node joining a running farm is added through the admin
 * socket (addServer), without a reload: the other servers keep their health state.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { runCommand } from "../netnsHost";
import { spawnTracked, tempDir, TrackedProcess, waitFor, waitForPort } from "../resources";
import { addServerCommand, HaproxyConfigInput, HaproxyNode, HaproxyServerStat, parseShowStat, renderHaproxyConfig } from "./haproxyConfig";

export const HAPROXY_BIN = "/usr/sbin/haproxy";

export type HaproxyInput = Omit<HaproxyConfigInput, "statsSocket">;

export interface Haproxy {
  host: string;
  port: number;
  confPath: string;
  /** Add a server at run time: DOWN (sent nothing) until its readiness checks pass. */
  addServer(node: HaproxyNode): Promise<void>;
  /** The backend's servers as HAProxy sees them now. */
  servers(): Promise<HaproxyServerStat[]>;
  process: TrackedProcess;
  stop(): Promise<void>;
}

async function checkConfig(file: string): Promise<void> {
  const r = await runCommand(HAPROXY_BIN, ["-c", "-q", "-f", file]);
  if (r.code !== 0) throw new Error(`haproxy rejected ${file}:\n${(r.stdout + r.stderr).trim()}`);
}

/** One command on the admin socket; HAProxy closes the connection after answering. */
function adminCommand(socket: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socket);
    let out = "";
    s.setEncoding("utf8");
    s.on("connect", () => s.write(`${command}\n`));
    s.on("data", (d: string) => (out += d));
    s.on("end", () => resolve(out));
    s.on("error", reject);
    s.setTimeout(5000, () => s.destroy(new Error(`no answer to ${command} on ${socket}`)));
  });
}

export async function startHaproxy(input: HaproxyInput): Promise<Haproxy> {
  const dir = tempDir("haproxy");
  const confPath = path.join(dir, "haproxy.cfg");
  const statsSocket = path.join(dir, "admin.sock");
  const write = async (i: HaproxyInput) => {
    const next = `${confPath}.next`;
    fs.writeFileSync(next, renderHaproxyConfig({ ...i, statsSocket }));
    await checkConfig(next);
    fs.renameSync(next, confPath);
  };
  await write(input);
  // The config path (under the run root) is on the command line: the leak check sees it.
  const proc = spawnTracked(HAPROXY_BIN, ["-W", "-db", "-f", confPath]);
  const servers = async () => parseShowStat(await adminCommand(statsSocket, "show stat"));
  try {
    await Promise.race([
      waitForPort(input.bind.port, input.bind.host, 15000),
      proc.exited.then((code) => {
        throw new Error(`haproxy exited (${code}) at startup: ${proc.output().trim()}`);
      }),
    ]);
    await waitFor("haproxy's admin socket", () => servers().then((s) => s.length > 0), 15000);
  } catch (e) {
    await proc.stop();
    throw e;
  }
  return {
    host: input.bind.host,
    port: input.bind.port,
    confPath,
    process: proc,
    servers,
    async addServer(node) {
      const out = await adminCommand(statsSocket, addServerCommand(input, node));
      // Each command answers a line (empty when fine); anything but the registration is an error.
      const problems = out.split("\n").filter((l) => l.trim() !== "" && l.trim() !== "New server registered.");
      if (problems.length > 0 || !out.includes("New server registered.")) throw new Error(`haproxy refused to add ${node.name}: ${out.trim()}`);
    },
    stop: () => proc.stop(),
  };
}
