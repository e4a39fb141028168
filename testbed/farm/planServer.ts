/**
 * The farm's plan store in the bench: an HTTPS server (bench CA) that serves deploy plans by
 * name, the stand-in for the S3 object the farm's nodes read (`smart-mirror apply --plan-url
 * https://... --plan-sha256 ...`). Each published plan gets a new URL and its SHA-256, which
 * the node checks before it parses anything, as with the component's recorded digest.
 *
 * It listens on the bench bridge's root-side address, so nodes in their namespaces reach it;
 * plans hold secrets (the mirror's key, the TLS key), so it answers only GET of a published
 * name and nothing else.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as https from "node:https";
import { AddressInfo } from "node:net";
import { onCleanup } from "../resources";
import { TestCa } from "../tls";

export interface PublishedPlan {
  url: string;
  sha256: string;
}

export interface PlanServer {
  /** Serve `text` under a new URL; the returned digest is what `--plan-sha256` must name. */
  publish(name: string, text: string): PublishedPlan;
  /** Serve a file (the daemon bundle) under a new URL, streamed from disk; digest of its content now. */
  publishFile(name: string, file: string): PublishedPlan;
  /** GETs answered so far, by plan name (how many nodes fetched it). */
  fetches(name: string): number;
  stop(): Promise<void>;
}

const NAME = /^[a-z0-9][a-z0-9.-]{0,63}$/;

export async function startPlanServer(ca: TestCa, address: string): Promise<PlanServer> {
  const cert = await ca.issueServerCert([address]);
  const plans = new Map<string, Buffer>();
  const files = new Map<string, string>();
  const counts = new Map<string, number>();
  const server = https.createServer({ cert: fs.readFileSync(cert.chainPath), key: fs.readFileSync(cert.keyPath) }, (req, res) => {
    const f = /^\/files\/([a-z0-9][a-z0-9.-]{0,63})$/.exec(req.url ?? "");
    const file = f ? files.get(f[1]) : undefined;
    if (req.method === "GET" && f && file) {
      counts.set(f[1], (counts.get(f[1]) ?? 0) + 1);
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": fs.statSync(file).size });
      fs.createReadStream(file).pipe(res);
      return;
    }
    const m = /^\/plans\/([a-z0-9][a-z0-9.-]{0,63})\.json$/.exec(req.url ?? "");
    const body = m ? plans.get(m[1]) : undefined;
    if (req.method !== "GET" || !m || !body) {
      res.writeHead(404, { "content-type": "text/plain" }).end("no such plan\n");
      return;
    }
    counts.set(m[1], (counts.get(m[1]) ?? 0) + 1);
    res.writeHead(200, { "content-type": "application/json", "content-length": body.length }).end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, address, resolve);
  });
  const port = (server.address() as AddressInfo).port;
  const stop = onCleanup(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return {
    publish(name, text) {
      if (!NAME.test(name)) throw new Error(`plan name must match ${NAME}: ${JSON.stringify(name)}`);
      if (plans.has(name)) throw new Error(`plan ${name} is already published; publish a new name (URLs are immutable, like S3 object versions)`);
      const body = Buffer.from(text, "utf8");
      plans.set(name, body);
      return { url: `https://${address}:${port}/plans/${name}.json`, sha256: createHash("sha256").update(body).digest("hex") };
    },
    publishFile(name, file) {
      if (!NAME.test(name)) throw new Error(`file name must match ${NAME}: ${JSON.stringify(name)}`);
      if (files.has(name)) throw new Error(`file ${name} is already published; publish a new name`);
      files.set(name, file);
      return { url: `https://${address}:${port}/files/${name}`, sha256: createHash("sha256").update(fs.readFileSync(file)).digest("hex") };
    },
    fetches: (name) => counts.get(name) ?? 0,
    stop: () => stop(),
  };
}
