/**
 * Prometheus metrics of LFS serving, on the daemon's one registry. Labels are small fixed
 * sets (never oids, repositories or users).
 */
import { Counter, Histogram, Registry } from "prom-client";

export const LFS_METRIC_NAMES = {
  objects: "smart_mirror_lfs_object_requests_total",
  bytes: "smart_mirror_lfs_bytes_total",
  upstreamSeconds: "smart_mirror_lfs_upstream_fetch_seconds",
  failures: "smart_mirror_lfs_fetch_failures_total",
  batches: "smart_mirror_lfs_batch_requests_total",
  relayed: "smart_mirror_lfs_relayed_requests_total",
  prefetched: "smart_mirror_lfs_prefetched_objects_total",
} as const;

/** hit: served from the store; miss: fetched from the primary by this request; shared: waited for another request's fetch. */
export type ObjectResult = "hit" | "miss" | "shared";
export type FetchFailure = "corrupt" | "unavailable" | "not_found" | "too_large" | "disk" | "aborted";

function metric<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

export class LfsMetrics {
  private readonly objects: Counter<"result">;
  private readonly bytes: Counter<"source">;
  private readonly upstream: Histogram;
  private readonly failures: Counter<"reason">;
  private readonly batches: Counter<"operation">;
  private readonly relayed: Counter<"kind" | "code">;
  private readonly prefetches: Counter<"result">;

  constructor(registry: Registry) {
    const registers = [registry];
    this.objects = metric(registry, LFS_METRIC_NAMES.objects, () => new Counter({ name: LFS_METRIC_NAMES.objects, help: "LFS object downloads from the mirror, by how they were answered (hit, miss, shared).", labelNames: ["result"], registers }));
    this.bytes = metric(
      registry,
      LFS_METRIC_NAMES.bytes,
      () => new Counter({ name: LFS_METRIC_NAMES.bytes, help: "LFS object bytes: sent to clients from the store (store), fetched from the primary (upstream).", labelNames: ["source"], registers }),
    );
    this.upstream = metric(
      registry,
      LFS_METRIC_NAMES.upstreamSeconds,
      () => new Histogram({ name: LFS_METRIC_NAMES.upstreamSeconds, help: "Time to fetch one LFS object from the primary (batch request and download).", buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 1800], registers }),
    );
    this.failures = metric(
      registry,
      LFS_METRIC_NAMES.failures,
      () => new Counter({ name: LFS_METRIC_NAMES.failures, help: "LFS objects the mirror could not fetch from the primary, by reason.", labelNames: ["reason"], registers }),
    );
    this.batches = metric(registry, LFS_METRIC_NAMES.batches, () => new Counter({ name: LFS_METRIC_NAMES.batches, help: "LFS Batch API requests answered, by operation.", labelNames: ["operation"], registers }));
    this.relayed = metric(
      registry,
      LFS_METRIC_NAMES.relayed,
      () => new Counter({ name: LFS_METRIC_NAMES.relayed, help: "LFS requests relayed to the primary (upload, verify, locks), by kind and the primary's status.", labelNames: ["kind", "code"], registers }),
    );
    this.prefetches = metric(
      registry,
      LFS_METRIC_NAMES.prefetched,
      () =>
        new Counter({
          name: LFS_METRIC_NAMES.prefetched,
          help: "LFS objects of newly synced commits (mirror.lfs.prefetch): stored, had already, failed; dropped counts syncs not scanned (queue full).",
          labelNames: ["result"],
          registers,
        }),
    );
  }

  prefetched(result: "stored" | "had" | "failed" | "dropped"): void {
    this.prefetches.inc({ result });
  }
  object(result: ObjectResult): void {
    this.objects.inc({ result });
  }
  sent(source: "store" | "upstream", n: number): void {
    if (n > 0) this.bytes.inc({ source }, n);
  }
  fetched(seconds: number): void {
    this.upstream.observe(seconds);
  }
  failed(reason: FetchFailure): void {
    this.failures.inc({ reason });
  }
  batch(operation: string): void {
    this.batches.inc({ operation: operation === "upload" ? "upload" : "download" });
  }
  relay(kind: "upload" | "verify" | "locks", code: number): void {
    this.relayed.inc({ kind, code: String(code) });
  }
}
