/**
 * The farm's headline scenario, shared by test/integration/farm.test.ts and bench/farmBench.ts:
 * clients clone and fetch through the load balancer while pushes land on the primary, and
 * meanwhile every node is updated to a new plan, one at a time. Then the pushes stop, every
 * client fetches once more and must hold the primary's refs.
 */
import { waitFor } from "../resources";
import { Farm } from "./farm";
import { FarmNode } from "./farmNode";
import { ClientMismatch, finalCheck, OpRecord, startLoad, summarize } from "./loadGenerator";
import { FarmSettings } from "./nodePlan";
import { PushRecord, startPushLoop } from "./pushLoop";
import { NodeUpdate, rollingUpdate } from "./rollingUpdate";

export interface ScenarioOptions {
  repos: readonly string[];
  workers: number;
  /** The load runs at least this long (and until the rolling update is done). */
  minLoadMs: number;
  /** The new plan's settings. */
  next: FarmSettings;
  log?: (line: string) => void;
}

export interface ScenarioResult {
  ops: OpRecord[];
  finalOps: OpRecord[];
  mismatches: ClientMismatch[];
  pushes: PushRecord[];
  updates: NodeUpdate[];
  loadMs: number;
  counts: ReturnType<typeof summarize> & { pushes: number; failedPushes: number; clients: number };
  /** Connections HAProxy sent to each node during the scenario. */
  sessionsPerNode: Record<string, number>;
}

/** Wait until HAProxy has the node UP again (it went DOWN while the node drained). */
async function backInRotation(farm: Farm, node: FarmNode): Promise<void> {
  await waitFor(`${node.name} UP in HAProxy`, async () => (await farm.servers()).find((s) => s.name === node.name)?.status === "UP", 120_000, 100);
}

export async function loadDuringRollingUpdate(farm: Farm, o: ScenarioOptions): Promise<ScenarioResult> {
  const log = o.log ?? (() => undefined);
  const before = Object.fromEntries((await farm.servers()).map((s) => [s.name, s.sessionsTotal]));
  const t0 = Date.now();
  const pushes = await startPushLoop({
    primary: farm.primary,
    repos: o.repos,
    webhook: { target: { name: farm.name, address: farm.haproxy.host, port: farm.haproxy.port, caPem: farm.ca.certPem }, secret: farm.webhookSecret },
  });
  const load = startLoad({ target: farm, repos: o.repos, workers: o.workers });
  // Every worker is past its first clone: the update starts under load.
  await waitFor("every load worker to finish an operation", () => new Set(load.ops.map((x) => x.worker)).size === o.workers, 120_000, 50);
  log(`load running (${load.ops.length} operations so far); rolling update of ${farm.nodes.length} nodes`);

  const agentWaits = farm.agentWaitsReady;
  const updates = await rollingUpdate({
    nodes: farm.nodes,
    update: (node) => farm.update(node, o.next, "update", { waitReadySeconds: agentWaits ? 120 : undefined }),
    // Older agents cannot wait: wait for the node's readiness ourselves.
    waitReady: agentWaits ? undefined : (node) => waitFor(`${node.name} ready`, async () => (await node.get(farm.checkPath)).status === 200, 120_000, 100).then(() => undefined),
    // Like the NLB's target health in an SSM-driven roll: the next node drains only when this
    // one takes clients again, so the farm never has two nodes out at once.
    afterNode: (node) => backInRotation(farm, node),
    log,
  });
  const opsAtUpdateEnd = load.ops.length;
  const remaining = o.minLoadMs - (Date.now() - t0);
  if (remaining > 0) await new Promise((r) => setTimeout(r, remaining));
  // Some operations after the roll too, on the updated nodes.
  await waitFor("operations after the rolling update", () => load.ops.length >= opsAtUpdateEnd + o.workers, 120_000, 50);
  const pushRecords = await pushes.stop();
  const ops = await load.stop();
  const loadMs = Date.now() - t0;
  log(`load stopped after ${loadMs} ms; final fetch of every client`);
  const final = await finalCheck(load, farm, (repo) => farm.primaryRefs(repo));
  const after = await farm.servers();
  const counts = {
    ...summarize([...ops, ...final.ops]),
    pushes: pushRecords.length,
    failedPushes: pushRecords.filter((p) => !p.ok).length,
    clients: load.clients().length,
  };
  return {
    ops,
    finalOps: final.ops,
    mismatches: final.mismatches,
    pushes: pushRecords,
    updates,
    loadMs,
    counts,
    sessionsPerNode: Object.fromEntries(after.map((s) => [s.name, s.sessionsTotal - (before[s.name] ?? 0)])),
  };
}

/** The scenario's counts and failures as text (the test's and the bench's report). Pure. */
export function describeScenario(r: ScenarioResult): string {
  const failed = [...r.ops, ...r.finalOps].filter((x) => !x.ok);
  const rows = [
    ["clones", r.counts.clones, "failed", r.counts.failedClones],
    ["fetches", r.counts.fetches, "failed", r.counts.failedFetches],
    ["pushes", r.counts.pushes, "failed", r.counts.failedPushes],
  ].map((c) => `  ${String(c[0]).padEnd(8)} ${String(c[1]).padStart(6)}   ${c[2]} ${c[3]}`);
  return [
    `farm scenario: ${r.loadMs} ms of load, ${r.counts.clients} clients`,
    ...rows,
    `  connections per node (HAProxy): ${Object.entries(r.sessionsPerNode).map(([n, c]) => `${n}=${c}`).join(" ")}`,
    ...r.updates.map((u) => `  update ${u.node}: ${u.ok ? "ok" : "FAILED"} ${u.ms} ms${u.drainMs !== undefined ? `, drain ${u.drainMs} ms` : ""}${u.error ? ` (${u.error})` : ""}`),
    `  clients with refs unequal to the primary's: ${r.mismatches.length}`,
    ...r.mismatches.slice(0, 10).map((m) => `    worker ${m.worker} ${m.repo}: ${m.detail}`),
    ...failed.slice(0, 10).map((x) => `  FAILED ${x.kind} ${x.repo} (worker ${x.worker}, at ${x.at} ms, exit ${x.code}): ${x.stderr}`),
  ].join("\n");
}
