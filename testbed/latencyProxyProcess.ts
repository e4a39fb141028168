/**
 * The latency proxy (latencyProxy.ts) in a process of its own. A WAN link does not stall when
 * the process under test blocks its event loop (a synchronous spawn, a file write), but an
 * in-process proxy does: its delivery timers fire late, so that time is charged twice. Latency
 * benchmarks of the in-process daemon use this one; stop() is registered with onCleanup.
 */
import * as path from "node:path";
import type { LatencyProxyOptions } from "./latencyProxy";
import { spawnTracked, waitFor } from "./resources";

export interface LatencyProxyProcess {
  host: string;
  port: number;
  stop(): Promise<void>;
}

export async function startLatencyProxyProcess(opts: LatencyProxyOptions): Promise<LatencyProxyProcess> {
  const main = path.join(__dirname, "latencyProxyMain.ts");
  const p = spawnTracked(process.execPath, ["--import", "tsx", main, JSON.stringify(opts)], { cwd: path.join(__dirname, "..") });
  const line = await waitFor("the latency proxy process to listen", () => /^listening (\S+) (\d+)$/m.exec(p.output()) ?? (p.child.exitCode !== null ? Promise.reject(new Error(`latency proxy exited: ${p.output()}`)) : undefined), 20_000, 20);
  return { host: line[1], port: Number(line[2]), stop: () => p.stop() };
}
