/**
 * Pushes landing on the primary while the farm serves: one working clone per repository,
 * a loop committing and pushing over SSH straight to the primary (as developers do), a new
 * branch now and then, and after each push the primary's signed webhook sent to the farm's
 * name through the load balancer (one node gets it, as behind an NLB).
 */
import { Primary } from "../primary";
import { pinnedWebhook, PinnedName } from "../pinnedHttps";
import { workingClone, WorkingClone } from "../repos";
import { refsChangedPayload } from "../webhook";

export interface PushLoopOptions {
  primary: Primary;
  repos: readonly string[];
  /** Where webhooks go (the farm's name pinned to HAProxy) and their secret; none when absent. */
  webhook?: { target: PinnedName; secret: string };
  /** Pause between two pushes (keeps the 2-core bench usable). */
  pauseMs?: number;
}

export interface PushRecord {
  repo: string;
  ok: boolean;
  /** The webhook's HTTP status (202 accepted), -1 when sending it failed. */
  webhookStatus?: number;
  error?: string;
}

export interface PushLoop {
  pushes: PushRecord[];
  stop(): Promise<PushRecord[]>;
}

export async function startPushLoop(o: PushLoopOptions): Promise<PushLoop> {
  const clones = new Map<string, WorkingClone>();
  for (const repo of o.repos) {
    const [project, slug] = repo.split("/");
    clones.set(repo, await workingClone(o.primary.remote(project, slug)));
  }
  const pushes: PushRecord[] = [];
  let stopped = false;
  const loop = async () => {
    for (let n = 0; !stopped; n++) {
      const repo = o.repos[n % o.repos.length];
      const [project, slug] = repo.split("/");
      const wc = clones.get(repo) as WorkingClone;
      const rec: PushRecord = { repo, ok: false };
      try {
        await wc.commit({ [`load/push-${n}.txt`]: `push ${n} at ${Date.now()}\n` });
        const refs = ["HEAD:refs/heads/main"];
        // A new branch every 5th push: new refs, not only moved ones.
        if (n % 5 === 4) refs.push(`HEAD:refs/heads/load-${n}`);
        await wc.push(refs);
        rec.ok = true;
        if (o.webhook) rec.webhookStatus = await pinnedWebhook(o.webhook.target, o.webhook.secret, refsChangedPayload(project, slug)).catch(() => -1);
      } catch (e) {
        rec.error = (e as Error).message;
      }
      pushes.push(rec);
      await new Promise((r) => setTimeout(r, o.pauseMs ?? 300));
    }
  };
  const running = loop();
  return {
    pushes,
    async stop() {
      stopped = true;
      await running;
      return pushes;
    },
  };
}
