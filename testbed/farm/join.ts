/**
 * A node joining a running farm (issue #17 item 3): start it, let the farm's load balancer
 * check it, and watch, until HAProxy has it UP, that HAProxy sends it no connection while the
 * node itself answers "not ready"; then read where its first clones came from (its farm
 * metrics: bytes and repositories from peers vs from the primary).
 */
import { git } from "../repos";
import { waitFor } from "../resources";
import { Farm } from "./farm";
import { sample } from "./metricsText";

export interface JoinSample {
  /** The node's own /status/ready said 200. */
  ready: boolean;
  /** Connections HAProxy had sent it by then (read just before the readiness answer). */
  sessionsTotal: number;
  status: string;
}

export interface JoinResult {
  node: string;
  /** From the start of the node's deploy until HAProxy had it UP. */
  joinMs: number;
  samples: JoinSample[];
  notReadySamples: number;
  becameReady: boolean;
  /** Connections it got from a few requests through HAProxy once UP. */
  sessionsAfterReady: number;
  seed: { bytesFromPeers: number; bytesFromPrimary: number; reposFromPeers: number; reposFromPrimary: number };
}

export async function joinNode(farm: Farm): Promise<JoinResult> {
  const t0 = Date.now();
  const node = await farm.addNode();
  const samples: JoinSample[] = [];
  let becameReady = false;
  await waitFor(
    `${node.name} UP in HAProxy`,
    async () => {
      // HAProxy first, then the node: a node not ready now was not ready at any earlier moment
      // (it turns ready once, when synced), so every check before the HAProxy read failed and a
      // connection counted there went to a node that was not ready.
      const s = (await farm.servers()).find((x) => x.name === node.name);
      const ready = await node.get(farm.checkPath).then((r) => r.status === 200, () => false);
      samples.push({ ready, sessionsTotal: s?.sessionsTotal ?? -1, status: s?.status ?? "absent" });
      becameReady ||= ready;
      return s?.status === "UP";
    },
    300_000,
    50,
  );
  const joinMs = Date.now() - t0;
  // Round-robin over the nodes: as many connections as nodes reach every one of them.
  const before = (await farm.servers()).find((x) => x.name === node.name)?.sessionsTotal ?? 0;
  for (let i = 0; i < farm.nodes.length * 2; i++) await git([...farm.gitArgs(), "ls-remote", farm.url(farm.repos[0])], { env: farm.gitEnv() });
  const after = (await farm.servers()).find((x) => x.name === node.name)?.sessionsTotal ?? 0;
  const metrics = (await node.get("/metrics")).body;
  const read = (name: string, source: string) => sample(metrics, name, { source }) ?? 0;
  return {
    node: node.name,
    joinMs,
    samples,
    notReadySamples: samples.filter((x) => !x.ready).length,
    becameReady,
    sessionsAfterReady: after - before,
    seed: {
      bytesFromPeers: read("smart_mirror_farm_seed_bytes_total", "peer"),
      bytesFromPrimary: read("smart_mirror_farm_seed_bytes_total", "primary"),
      reposFromPeers: read("smart_mirror_farm_seed_repos_total", "peer"),
      reposFromPrimary: read("smart_mirror_farm_seed_repos_total", "primary"),
    },
  };
}
