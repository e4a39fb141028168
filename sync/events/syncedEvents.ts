/**
 * The daemon's sync completions -> "repository synchronized" events for the configured URLs.
 *
 * Sent after each sync that changed refs (a first clone included: every ref is an ADD), not
 * after every sync as Bitbucket does: our reconcile only runs a sync job when the primary
 * differs, so the other jobs are maintenance runs and duplicate webhooks whose fetch brought
 * nothing, and an event with no changes would tell a receiver nothing it can act on. A sync
 * whose changes exceed MAX_EVENT_CHANGES is still sent, with refLimitExceeded=true.
 */
import type { Registry } from "prom-client";
import type { SyncedNotice } from "../daemon/daemon";
import type { EventsSettings } from "../runtimeOptions";
import type { Log } from "../serve/http";
import { EventDelivery } from "./delivery";
import { SyncedEvent, syncedEvent } from "./payload";

/** The event for one sync, or undefined when it changed no ref (pure). */
export function eventForSync(n: SyncedNotice, mirror: EventsSettings["mirror"]): SyncedEvent | undefined {
  const o = n.outcome;
  if (!o.fetched || !o.refChanges || o.refChanges.length === 0) return undefined;
  return syncedEvent({
    mirror: { id: mirror.id, name: mirror.name },
    repo: n.id,
    at: n.at,
    syncType: o.created || o.recloned ? "snapshot" : "incremental",
    changes: o.refChanges,
    cloneUrl: `${mirror.baseUrl.replace(/\/+$/, "")}/scm/${n.id.project}/${n.id.slug}.git`,
  });
}

export interface SyncSource {
  onSynced(listener: (n: SyncedNotice) => void): () => void;
}

/** Subscribe the delivery to the daemon's syncs; `close` unsubscribes and stops delivering. */
export function startSyncedEvents(source: SyncSource, s: EventsSettings, deps: { registry?: Registry; log?: Log }): { delivery: EventDelivery; close(graceMs?: number): Promise<void> } {
  const delivery = new EventDelivery({ urls: s.urls, secret: s.secret, queueSize: s.queueSize, maxAttempts: s.maxAttempts, timeoutMs: s.timeoutMs, registry: deps.registry, log: deps.log });
  const off = source.onSynced((n) => {
    const event = eventForSync(n, s.mirror);
    if (event) delivery.enqueue(event);
  });
  return {
    delivery,
    close: async (graceMs) => {
      off();
      await delivery.close(graceMs);
    },
  };
}
