/**
 * From the validated properties to what the daemon runs with. Pure except for reading the
 * secret files the config points at (their contents never reach a log).
 */
import * as fs from "node:fs";
import type { MirrorConfig } from "../config";
import { DaemonSettings } from "./settings";

export function settingsFromConfig(c: MirrorConfig, read: (file: string) => string = (f) => fs.readFileSync(f, "utf8")): DaemonSettings {
  return {
    home: c.home,
    upstream: {
      host: c.upstream.ssh.host,
      port: c.upstream.ssh.port,
      user: c.upstream.ssh.user,
      keyFile: c.upstream.keyFile,
      pinned: c.upstream.hostKeys.map((k) => ({ type: k.type, base64: k.base64 })),
    },
    catalog:
      c.catalog.kind === "static"
        ? { kind: "static", repos: c.catalog.repos }
        : {
            kind: "rest",
            baseUrl: c.upstream.url,
            token: c.upstream.tokenFile ? read(c.upstream.tokenFile).trim() : undefined,
            ca: c.upstream.caFile ? read(c.upstream.caFile) : undefined,
          },
    projects: c.projects,
    intervalMs: c.sync.reconcileIntervalMs,
    concurrency: c.sync.concurrency,
    timeoutMs: c.sync.timeoutMs,
    firstCloneStepBytes: c.sync.firstCloneStepBytes,
    excludeRefs: c.sync.excludeRefs,
    backoff: { baseMs: 2000, maxMs: c.sync.retryMaxMs },
    purge: c.purge,
    maintenance: c.maintenance,
    // Scans are cheap (one small exec per repo over pooled connections); keep the primary's
    // sshd well under its default MaxSessions=10 per connection.
    scanParallelism: 16,
    scanConnections: 2,
    disk: c.disk,
  };
}
