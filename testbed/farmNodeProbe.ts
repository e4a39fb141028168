/**
 * Reading a farm node started with startMirrorBehindNginx: its /status/detail farm section (on
 * the daemon's own socket: never proxied), its metrics (through nginx), and the peers file
 * written the way the node's boot script must (atomic rename). Shared by the farm tests.
 */
import * as fs from "node:fs";
import * as http from "node:http";
import type { FarmStatus } from "../sync/farm";
import type { MirrorBehindNginx } from "./mirrorBehindNginx";

/** GET on the daemon's own socket (/status/detail is never proxied by nginx). */
export function onSocket(m: MirrorBehindNginx, target: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: m.socketPath, path: target, method: "GET", timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
    });
    req.on("error", reject);
    req.end();
  });
}

export async function farmDetail(m: MirrorBehindNginx): Promise<FarmStatus> {
  const r = await onSocket(m, "/status/detail");
  return (JSON.parse(r.body) as { farm: FarmStatus }).farm;
}

/** Sum of a metric's samples (through nginx) whose labels include `labels`. */
export async function metric(m: MirrorBehindNginx, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = (await m.request("GET", "/metrics")).body.toString("utf8");
  let sum = 0;
  for (const line of text.split("\n")) {
    const match = new RegExp(`^${name}(?:\\{([^}]*)\\})? (\\S+)$`).exec(line);
    if (!match) continue;
    const have = Object.fromEntries([...(match[1] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(match[2]);
  }
  return sum;
}

/** Write a file the way the node's boot script must: a temporary file renamed over it. */
export function writeAtomically(file: string, text: string): void {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}
