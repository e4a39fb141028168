/**
 * Starts this package as a Pulumi plugin the way the engine does, and talks to it over gRPC.
 *
 * For a `runtime: nodejs` PulumiPlugin.yaml, the nodejs language host (RunPlugin) runs
 * `node <@pulumi/pulumi/cmd/run-plugin, resolved from the plugin's folder> <plugin folder>
 * <engine args...>` with the working directory of the engine (the user's project), then reads
 * the provider's port from the first line of its stdout. run-plugin registers ts-node and
 * requires the folder, i.e. package.json's `main`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { ResourceProviderClient } from "@pulumi/pulumi/proto/provider_grpc_pb";

export const PACKAGE_ROOT = path.resolve(__dirname, "..", "..");

export interface RunningPlugin {
  client: ResourceProviderClient;
  port: number;
  child: ChildProcess;
  /** Everything the plugin wrote on stderr so far (for failure messages). */
  stderr(): string;
  stop(): Promise<void>;
}

/**
 * Spawn the plugin in `pluginDir` from `cwd` (the "user's project") and connect to it.
 * `engineArgs` are what the engine appends: its own address (the Engine service the provider
 * logs to and that Construct needs), nothing for a plugin only asked for its schema.
 */
export async function startPlugin(pluginDir: string, cwd: string, engineArgs: string[] = []): Promise<RunningPlugin> {
  const runPlugin = require.resolve("@pulumi/pulumi/cmd/run-plugin", { paths: [pluginDir] });
  const child = spawn(process.execPath, [runPlugin, pluginDir, ...engineArgs], { cwd, env: process.env, stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  child.stderr?.setEncoding("utf8").on("data", (d: string) => (err += d));
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      const line = out.split("\n")[0];
      if (out.includes("\n")) {
        const n = Number(line.trim());
        if (Number.isInteger(n) && n > 0) resolve(n);
        else reject(new Error(`plugin printed ${JSON.stringify(line)} instead of its port; stderr:\n${err}`));
      }
    });
    child.once("exit", (code) => reject(new Error(`plugin exited (${code}) before printing its port; stderr:\n${err}`)));
  });
  const client = new ResourceProviderClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return {
    client,
    port,
    child,
    stderr: () => err,
    stop: async () => {
      client.close();
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** A unary call as a promise. */
export function call<Req, Res>(method: (req: Req, cb: (e: grpc.ServiceError | null, res: Res) => void) => unknown, req: Req): Promise<Res> {
  return new Promise((resolve, reject) => method(req, (e, res) => (e ? reject(e) : resolve(res))));
}
