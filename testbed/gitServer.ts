/**
 * The daemon's HTTP serving (router + Git smart HTTP + status routes) in this process on a
 * loopback TCP port, over bare repositories the test made: for tests of serving alone, without
 * a primary or a sync. Log lines are collected so tests can check what gets logged.
 */
import * as http from "node:http";
import { Registry } from "prom-client";
import { anonymousAuthorizer } from "../sync/auth/authorizer";
import { listen } from "../sync/serve/listen";
import type { Log } from "../sync/serve/http";
import { Router } from "../sync/serve/router";
import { createServer, ServeOptions } from "../sync/serve/server";
import { catalogResolver, GitRoutes, GitServeOptions, mountGitRoutes } from "../sync/serve/git";
import { StatusBoard } from "../sync/state/statusBoard";
import { isolatedGitEnv } from "./repos";
import { onCleanup } from "./resources";
import type { Send } from "./hostileRequests";

export interface LogLine {
  level: "info" | "warn" | "error";
  obj: Record<string, unknown>;
  msg?: string;
}

export interface InProcessGitServer {
  port: number;
  base: string;
  registry: Registry;
  routes: GitRoutes;
  server: http.Server;
  board: StatusBoard;
  logs: LogLine[];
  send: Send;
  close(): Promise<void>;
}

export function collectingLog(logs: LogLine[]): Log {
  const at = (level: LogLine["level"]) => (obj: object, msg?: string) => void logs.push({ level, obj: obj as Record<string, unknown>, msg });
  return { info: at("info"), warn: at("warn"), error: at("error") };
}

/**
 * One request on a fresh connection to 127.0.0.1:port, or to a unix socket (the daemon's,
 * straight, without nginx). `timeoutMs`: a server that never answers is an error, not a hang.
 */
export function httpSend(to: number | { socketPath: string }, timeoutMs = 60_000): Send {
  const where = typeof to === "number" ? { host: "127.0.0.1", port: to } : { socketPath: to.socketPath };
  return (method, target, opts) =>
    new Promise((resolve, reject) => {
      const req = http.request({ ...where, method, path: target, headers: opts.headers, agent: false, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      });
      req.on("error", reject);
      req.on("timeout", () => req.destroy(new Error(`${method} ${target}: no answer in ${timeoutMs} ms`)));
      req.end(opts.body);
    });
}

export async function startInProcessGitServer(
  catalog: Map<string, string>,
  o: Partial<GitServeOptions> = {},
  serve: Partial<Omit<ServeOptions, "router" | "board">> = {},
): Promise<InProcessGitServer> {
  const logs: LogLine[] = [];
  const log = collectingLog(logs);
  const board = new StatusBoard({ info: { displayName: "test mirror" }, defaultMetrics: false });
  const router = new Router({ log });
  // A caller that built its options on a registry of its own (gitServeOptionsFromConfig) keeps it.
  const registry = o.registry ?? board.metrics.registry;
  const routes = mountGitRoutes(router, {
    resolve: catalogResolver((key) => catalog.get(key)),
    primaryUrl: "https://bitbucket.example.com",
    gitEnv: isolatedGitEnv() as NodeJS.ProcessEnv,
    authorizer: anonymousAuthorizer(),
    log,
    ...o,
    registry,
  });
  const server = createServer({ board, router, log, ...serve });
  const addr = await listen(server, "127.0.0.1:0");
  if (addr.kind !== "tcp") throw new Error("want tcp");
  const close = onCleanup(async () => {
    routes.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { port: addr.port, base: `http://127.0.0.1:${addr.port}`, registry, routes, server, board, logs, send: httpSend(addr.port), close };
}
