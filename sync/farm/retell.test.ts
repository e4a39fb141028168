import * as fs from "node:fs";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { Registry } from "prom-client";
import { createCa } from "../../testbed/tls";
import { tempDir, waitFor } from "../../testbed/resources";
import { Farm, FARM_METRIC_NAMES } from "./farm";

/**
 * With shared scans a node does not scan a repository another node owns: a lost announcement
 * would leave it behind until the next push. So a reachable peer that did not acknowledge is
 * told again (a full sync of that repository) at the next probe that reaches it. The peer here
 * is a real TLS server speaking the farm routes, refusing announcements (503) until told not to.
 */
describe("Farm: an announcement a peer did not acknowledge is told again at the next probe", () => {
  let server: https.Server;
  let port: number;
  let caPem: string;
  let accept = false;
  const posted: Array<{ status: number; body: { repo: string; moves?: unknown; origin: string } }> = [];

  beforeAll(async () => {
    const ca = await createCa();
    caPem = ca.certPem;
    const cert = await ca.issueServerCert(["mirror.test"]);
    server = https.createServer({ cert: fs.readFileSync(cert.chainPath), key: fs.readFileSync(cert.keyPath) }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        if (req.method === "GET" && req.url === "/farm/announce") return res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ node: "peer-1", instance: "peer-run" }));
        if (req.method === "GET" && req.url === "/status/ready") return res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ ready: true }));
        if (req.method === "POST" && req.url === "/farm/announce") {
          const status = accept ? 200 : 503;
          posted.push({ status, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as { repo: string; origin: string } });
          return res.writeHead(status, { "Content-Type": "application/json" }).end(JSON.stringify({ node: "peer-1", recorded: accept }));
        }
        res.writeHead(404).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  test("refused once, told again (a full sync) when the peer answers, then no more", async () => {
    const dir = tempDir("farm-retell");
    fs.writeFileSync(path.join(dir, "peers"), `https://127.0.0.1:${port}\n`);
    const registry = new Registry();
    const farm = new Farm({ peersFile: path.join(dir, "peers"), token: "t", serverName: "mirror.test", caPem, nodeId: "me", catchUpWaitMs: 1000 }, { link: { syncNow: () => Promise.resolve({ ok: true }) }, registry });
    try {
      await farm.probe();
      expect(farm.status().healthyPeers).toBe(1);
      const r = await farm.announce("PROJ/app", [{ ref: "refs/heads/main", old: "a".repeat(40), new: "b".repeat(40) }]);
      expect(r).toEqual({ announced: true, acked: 0, failed: 1, skipped: 0 });
      expect((await registry.getSingleMetric(FARM_METRIC_NAMES.ackFailures)?.get())?.values[0].value).toBe(1);
      expect(farm.status().owedAnnouncements).toBe(1);
      // Still refusing: the next probe tries again and keeps it owed.
      await farm.probe();
      await waitFor("a second attempt", () => posted.length >= 2, 10_000, 10);
      accept = true;
      await waitFor("told again", async () => {
        await farm.probe();
        return posted.some((p) => p.status === 200);
      }, 10_000, 50);
      const told = posted.filter((p) => p.status === 200);
      expect(told).toEqual([{ status: 200, body: { repo: "PROJ/app", origin: "me", instance: farm.instance } }]);
      await waitFor("nothing owed", () => farm.status().owedAnnouncements === 0, 10_000, 10);
      const n = posted.length;
      await farm.probe();
      await farm.probe();
      expect(posted.length).toBe(n);
    } finally {
      farm.close();
    }
  });
});
