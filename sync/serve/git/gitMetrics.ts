/**
 * Prometheus metrics of Git serving, registered on the daemon's registry (board.metrics.registry).
 * Labels are small fixed sets, never repository names or users (see sync/state/metrics.ts).
 */
import { Counter, Gauge, Registry } from "prom-client";
import type { AuthResult } from "../../auth/authorizer";
import type { Verdict } from "../../auth/decisionCache";
import type { RequestKind } from "./pktSniffer";

export const GIT_METRIC_NAMES = {
  requests: "smart_mirror_git_requests_total",
  uploadPacks: "smart_mirror_git_upload_pack_requests_total",
  sentBytes: "smart_mirror_git_sent_bytes_total",
  auth: "smart_mirror_git_auth_total",
  primaryChecks: "smart_mirror_git_auth_primary_checks_total",
  running: "smart_mirror_git_upload_packs_running",
  waiting: "smart_mirror_git_upload_packs_waiting",
  slots: "smart_mirror_git_upload_pack_slots",
} as const;

export type Endpoint = "info_refs" | "upload_pack" | "receive_pack" | "invalid";
export type UploadPackResult = "ok" | "failed" | "aborted" | "too_large" | "bad_request" | "refused" | "too_slow";
export type AuthMetricResult = "allowed" | "allowed_grace" | "no_credentials" | "bad_credentials" | "forbidden" | "unavailable" | "throttled";

/** Reuse a metric of that name if this registry has one (the routes may be mounted again, e.g. in tests). */
function counter<L extends string>(registry: Registry, name: string, help: string, labelNames: L[]): Counter<L> {
  return (registry.getSingleMetric(name) as Counter<L> | undefined) ?? new Counter({ name, help, labelNames, registers: [registry] });
}

export class GitMetrics {
  private readonly requests: Counter<"endpoint" | "code">;
  private readonly uploadPacks: Counter<"kind" | "protocol" | "result">;
  private readonly sent: Counter<"endpoint">;
  private readonly auths: Counter<"mode" | "result">;
  private readonly checks: Counter<"verdict">;

  constructor(readonly registry: Registry, load?: () => { running: number; waiting: number; slots?: number }) {
    this.requests = counter(registry, GIT_METRIC_NAMES.requests, "Git smart HTTP requests answered, by endpoint and HTTP status.", ["endpoint", "code"]);
    this.uploadPacks = counter(
      registry,
      GIT_METRIC_NAMES.uploadPacks,
      "git-upload-pack POST requests by kind (clone: wants without haves; fetch: with haves; ls-refs: protocol v2 ls-remote), protocol and result.",
      ["kind", "protocol", "result"],
    );
    this.sent = counter(registry, GIT_METRIC_NAMES.sentBytes, "Bytes git upload-pack sent to clients (ref advertisements and packs).", ["endpoint"]);
    this.auths = counter(registry, GIT_METRIC_NAMES.auth, "Access decisions for Git requests, by auth mode and result.", ["mode", "result"]);
    this.checks = counter(registry, GIT_METRIC_NAMES.primaryChecks, "REST calls to the primary to check a client's access (after cache and coalescing), by verdict.", ["verdict"]);
    if (load && !registry.getSingleMetric(GIT_METRIC_NAMES.running)) {
      new Gauge({ name: GIT_METRIC_NAMES.running, help: "git upload-pack processes running.", registers: [registry], collect() { this.set(load().running); } });
      new Gauge({ name: GIT_METRIC_NAMES.waiting, help: "Git requests waiting for an upload-pack slot.", registers: [registry], collect() { this.set(load().waiting); } });
      // The capacity, so "running / slots" (saturation) needs no knowledge of the host's cores.
      new Gauge({ name: GIT_METRIC_NAMES.slots, help: "git upload-pack slots (at most this many run at once; more requests wait).", registers: [registry], collect() { this.set(load().slots ?? 0); } });
    }
  }

  request(endpoint: Endpoint, code: number): void {
    this.requests.inc({ endpoint, code: String(code) });
  }

  uploadPack(kind: RequestKind, protocol: number, result: UploadPackResult): void {
    this.uploadPacks.inc({ kind: kind.replace("-", "_"), protocol: `v${protocol}`, result });
  }

  sentBytes(endpoint: Endpoint, n: number): void {
    if (n > 0) this.sent.inc({ endpoint }, n);
  }

  auth(mode: string, r: AuthResult): void {
    const result: AuthMetricResult = r.allowed ? (r.via === "grace" ? "allowed_grace" : "allowed") : r.reason;
    this.auths.inc({ mode, result });
  }

  primaryCheck(verdict: Verdict): void {
    this.checks.inc({ verdict });
  }
}
