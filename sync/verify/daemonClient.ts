/**
 * `verify --resync` talking to the running daemon on its own listener (the unix socket or
 * loopback address of mirror.serve.listen), where the internal routes answer: the daemon owns
 * the repositories while it holds the home's lock, so it is the one that fetches.
 */
import * as http from "node:http";
import { formatListenAddress, ListenAddress } from "../listenAddress";
import type { ResyncResult } from "../daemon/daemon";
import { REPOS_PATH } from "../serve/mirroringRoutes";
import type { RepoKey } from "../types";

/** Where a client reaches a daemon listening on `a` (a wildcard address is reached on loopback). */
export function connectTarget(a: ListenAddress): { socketPath: string } | { host: string; port: number } {
  if (a.kind === "unix") return { socketPath: a.path };
  const host = a.host === "0.0.0.0" || a.host === "" ? "127.0.0.1" : a.host === "::" ? "::1" : a.host;
  return { host, port: a.port };
}

export function resyncPath(key: RepoKey): string {
  const [project, slug] = key.split("/");
  return `${REPOS_PATH}/${encodeURIComponent(project)}/${encodeURIComponent(slug)}/synchronization`;
}

/** Ask the daemon to sync `key` now; resolves when that sync ended (or `timeoutMs` passed). */
export function requestResync(a: ListenAddress, key: RepoKey, timeoutMs: number): Promise<ResyncResult> {
  return new Promise((resolve, reject) => {
    const req = http.request({ ...connectTarget(a), method: "POST", path: resyncPath(key), headers: { "Content-Length": 0 }, timeout: timeoutMs }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text = (text + c).slice(0, 64 * 1024)));
      res.on("end", () => {
        let body: { synced?: boolean; error?: string; message?: string } = {};
        try {
          body = JSON.parse(text) as typeof body;
        } catch {
          /* not JSON: reported below by status */
        }
        if (res.statusCode === 200 || res.statusCode === 502) resolve({ ok: body.synced === true, ...(body.error ? { error: body.error } : {}) });
        else if (res.statusCode === 404) resolve({ ok: false, error: "the running daemon does not carry this repository (a different configuration since it started? restart it)" });
        else resolve({ ok: false, error: `the daemon answered ${res.statusCode}: ${body.message ?? text.slice(0, 200)}` });
      });
    });
    req.on("timeout", () => req.destroy(new Error(`no answer from the daemon within ${Math.round(timeoutMs / 1000)} s`)));
    req.on("error", (e) => reject(new Error(`cannot reach the running daemon at ${formatListenAddress(a)} (mirror.serve.listen): ${e.message}`)));
    req.end();
  });
}
