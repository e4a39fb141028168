/**
 * A rolling update of the farm, as the farm's SSM association runs it: node by node, apply the
 * new plan on the node (which restarts its daemon: SIGTERM, drain, start), wait until the node
 * is ready again, and stop at the first node that fails, leaving the others on the old plan.
 */
import { FarmNode } from "./farmNode";
import { drainMs } from "./drainLog";

export interface NodeUpdate {
  node: string;
  ok: boolean;
  /** The whole update of the node: apply, restart, drain included, until ready. */
  ms: number;
  /** From the daemon's drain start to its exit, from its log; undefined when it logged none. */
  drainMs?: number;
  pidBefore?: number;
  pidAfter?: number;
  error?: string;
}

export interface RollingUpdateInput {
  nodes: readonly FarmNode[];
  /** Update one node to the new plan (the node's update script or the agent); exit code 0 = done and ready. */
  update(node: FarmNode): Promise<{ code: number; stderr: string }>;
  /** Wait until the node is ready when the update cannot (agents without --wait-ready); throws when it is not. */
  waitReady?: (node: FarmNode) => Promise<void>;
  /** Before the next node: e.g. wait until the load balancer sends this one clients again. */
  afterNode?: (node: FarmNode) => Promise<void>;
  log?: (line: string) => void;
}

export async function rollingUpdate(i: RollingUpdateInput): Promise<NodeUpdate[]> {
  const done: NodeUpdate[] = [];
  for (const node of i.nodes) {
    const t0 = Date.now();
    const pidBefore = node.daemonPid();
    const logBefore = node.daemonLog().length;
    const u: NodeUpdate = { node: node.name, ok: false, ms: 0, pidBefore };
    try {
      const r = await i.update(node);
      if (r.code !== 0) throw new Error(`the update exited ${r.code}: ${r.stderr.trim().split("\n").slice(-5).join(" | ")}`);
      await i.waitReady?.(node);
      u.pidAfter = node.daemonPid();
      if (u.pidAfter === undefined || u.pidAfter === pidBefore) throw new Error(`the daemon was not restarted (pid ${pidBefore} -> ${u.pidAfter})`);
      await i.afterNode?.(node);
      u.ok = true;
    } catch (e) {
      u.error = (e as Error).message;
    }
    u.ms = Date.now() - t0;
    u.drainMs = drainMs(node.daemonLog().slice(logBefore));
    done.push(u);
    i.log?.(`${node.name}: ${u.ok ? "updated" : "FAILED"} in ${u.ms} ms${u.drainMs !== undefined ? `, drain ${u.drainMs} ms` : ""}${u.error ? `: ${u.error}` : ""}`);
    if (!u.ok) break; // first failure stops the roll: the rest keep the old plan
  }
  return done;
}
