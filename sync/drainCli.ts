/**
 * `smart-mirror drain --home DIR [--timeout S] [--cancel]`: ask the running daemon (on its own
 * listener, mirror.serve.listen, like `verify --resync`) to drain, and wait until it has: readiness
 * 503 at once, then the quiet period and the requests in flight (serve/drain.ts). The daemon
 * stays up and not ready afterwards (serve/drainRoute.ts says why); stop it, or `--cancel`.
 * Prints the daemon's JSON answer; exit 0 drained, 1 otherwise (bound reached, no daemon).
 */
import * as http from "node:http";
import * as path from "node:path";
import { formatProblems, loadConfig } from "./config";
import { homePath } from "./homeLayout";
import { formatListenAddress } from "./listenAddress";
import { DRAIN_PATH } from "./serve/drain";
import { MAX_DRAIN_TIMEOUT_SECONDS } from "./serve/drainRoute";
import { connectTarget } from "./verify/daemonClient";

export interface DrainCliOptions {
  home: string;
  /** Seconds; default mirror.drain.timeout. */
  timeout?: number;
  cancel?: boolean;
}

export async function runDrainCli(o: DrainCliOptions, out: (l: string) => void = (l) => process.stdout.write(l + "\n"), err: (l: string) => void = (l) => process.stderr.write(l + "\n")): Promise<number> {
  const home = path.resolve(o.home);
  if (o.timeout !== undefined && (!Number.isInteger(o.timeout) || o.timeout < 1 || o.timeout > MAX_DRAIN_TIMEOUT_SECONDS)) {
    err(`smart-mirror drain: --timeout must be a whole number of seconds from 1 to ${MAX_DRAIN_TIMEOUT_SECONDS} (got ${o.timeout})`);
    return 1;
  }
  const loaded = loadConfig(home);
  if (!loaded.ok) {
    err(`smart-mirror drain: cannot read the configuration, ${loaded.problems.length} problem(s) in ${homePath(home, "properties")}:\n${formatProblems(loaded.problems)}`);
    return 1;
  }
  // Only the listener and the bound: the daemon's secret files are not this command's business.
  const listen = loaded.config.serve.listen;
  const boundMs = o.timeout !== undefined ? o.timeout * 1000 : loaded.config.drain.timeoutMs;
  const target = `${DRAIN_PATH}${o.timeout !== undefined ? `?timeout=${o.timeout}` : ""}`;
  try {
    const r = await request(connectTarget(listen), o.cancel ? "DELETE" : "POST", target, boundMs + 60_000);
    out(r.text.trim());
    if (r.status === 200) return 0;
    err(o.cancel ? `smart-mirror drain: the daemon refused to cancel (${r.status}): ${r.text.trim()}` : r.status === 504 ? `smart-mirror drain: the drain bound (${boundMs / 1000} s) passed with requests still running; they are cut if the daemon stops now (the daemon stays up and not ready)` : `smart-mirror drain: the daemon answered ${r.status}`);
    return 1;
  } catch (e) {
    err(`smart-mirror drain: cannot reach the running daemon at ${formatListenAddress(listen)} (mirror.serve.listen): ${(e as Error).message}`);
    return 1;
  }
}

function request(target: ReturnType<typeof connectTarget>, method: string, urlPath: string, timeoutMs: number): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ ...target, method, path: urlPath, headers: { "Content-Length": 0 }, timeout: timeoutMs }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text = (text + c).slice(0, 64 * 1024)));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${Math.round(timeoutMs / 1000)} s`)));
    req.on("error", reject);
    req.end();
  });
}
