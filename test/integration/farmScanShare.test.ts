/**
 * Scan sharing across a farm's nodes (#17: the primary's change-detection load must not grow
 * with the node count), every part real: two built daemons, each behind its own nginx with TLS
 * (one bench CA, certificates for mirror.test), peers of each other over their nginx, syncing
 * from a real sshd primary that counts the SSH sessions it starts (sshd's own log lines).
 *
 * - Once both are ready, each reconcile round scans only the repositories the node owns
 *   (rendezvous hashing of node id and repository): the primary's sessions per round are one
 *   scan per repository for the whole farm, not one per node.
 * - A push WITHOUT a webhook is found by its owner's scan only; the owner announces it, and the
 *   other node syncs it from the announcement (it never scanned the repository).
 * - A node stops: the survivor owns every repository at its next round and its scan finds a
 *   push to a repository the stopped node owned.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { FARM_METRIC_NAMES } from "../../sync/farm";
import { scanOwner } from "../../sync/farm/scanShare";
import { ensureBundle } from "../../testbed/daemonProcess";
import { farmDetail, metric, onSocket, writeAtomically } from "../../testbed/farmNodeProbe";
import { MIRROR_NAME, MirrorBehindNginx, startMirrorBehindNginx } from "../../testbed/mirrorBehindNginx";
import { Primary, startPrimary } from "../../testbed/primary";
import { git, pushSampleHistory, workingClone, WorkingClone } from "../../testbed/repos";
import { tempDir, waitFor } from "../../testbed/resources";
import { createCa } from "../../testbed/tls";

jest.setTimeout(900_000);

const PROJECT = "PROJ";
/** Chosen so that each node owns three of them (scanOwner over node-a and node-b; asserted below). */
const SLUGS = ["app", "web", "tools", "site", "lib", "api"];
const NODES = ["node-a", "node-b"];
const FARM_TOKEN = "farm-token-scan-share-0123456789abcdef01234567";
const ROUNDS = "smart_mirror_reconcile_duration_seconds_count";

const key = (slug: string) => `${PROJECT}/${slug}`;

async function lastReconcile(m: MirrorBehindNginx): Promise<{ checked: number; result: string }> {
  return (JSON.parse((await onSocket(m, "/status/detail")).body) as { lastReconcile: { checked: number; result: string } }).lastReconcile;
}

async function tipOn(dir: string): Promise<string> {
  return (await git(["rev-parse", "refs/heads/main"], { cwd: dir })).trim();
}

describe("farm scan sharing: each repository scanned by one node", () => {
  let primary: Primary;
  let dir: string;
  const clones = new Map<string, WorkingClone>();
  const nodes: MirrorBehindNginx[] = [];
  const peersFile = (i: number) => path.join(dir, `peers-${i}`);
  const owned = (node: string) => SLUGS.filter((s) => scanOwner(key(s), NODES) === node);

  beforeAll(async () => {
    ensureBundle();
    dir = tempDir("farm-share");
    fs.writeFileSync(path.join(dir, "farm-token"), FARM_TOKEN + "\n", { mode: 0o600 });
    const ca = await createCa();
    const cert = await ca.issueServerCert([MIRROR_NAME, "127.0.0.1"]);
    primary = await startPrimary({ countSessions: true });
    for (const slug of SLUGS) {
      await primary.createRepo(PROJECT, slug);
      const w = await workingClone(primary.remote(PROJECT, slug));
      await pushSampleHistory(w, 2);
      clones.set(slug, w);
    }
    for (const [i, node] of NODES.entries()) {
      fs.writeFileSync(peersFile(i), "");
      nodes.push(
        await startMirrorBehindNginx({
          primary,
          repos: SLUGS.map((slug) => ({ project: PROJECT, slug })),
          tls: { ca, cert },
          properties: {
            "mirror.farm.peersFile": peersFile(i),
            "mirror.farm.tokenFile": path.join(dir, "farm-token"),
            "mirror.farm.serverName": MIRROR_NAME,
            "mirror.farm.caCertificatesFile": ca.certPath,
            "mirror.farm.nodeId": node,
            // No webhook: only a reconcile scan (or a peer's announcement) can bring a push.
            "plugin.mirroring.synchronization.interval": "10s",
            // Clients' advertisements never ask the primary: every session counted is a scan or a sync.
            "mirror.serve.freshness": "never",
          },
        }),
      );
    }
    for (const m of nodes) await m.waitSynchronized();
    // Every node lists the whole farm, itself included (it finds and skips its own entry).
    const list = nodes.map((m) => `https://127.0.0.1:${m.port}`).join("\n") + "\n";
    for (const i of NODES.keys()) writeAtomically(peersFile(i), list);
  });

  test("the fixture splits the repositories between the nodes", () => {
    expect(owned("node-a")).toEqual(["web", "tools", "site"]);
    expect(owned("node-b")).toEqual(["app", "lib", "api"]);
  });

  test("each node scans its share only: the primary's sessions per round are one farm's worth, not one per node", async () => {
    // Both ready and seeing each other: each round plans only the node's own share.
    for (const [i, m] of nodes.entries()) {
      const share = await waitFor(
        `${NODES[i]} scans its share`,
        async () => {
          const f = await farmDetail(m);
          return f.scanShare?.mode === "share" && f.scanShare.counted && f.scanShare.nodes?.join(",") === NODES.join(",") ? f.scanShare : undefined;
        },
        120_000,
        200,
      );
      expect(share.repos).toBe(owned(NODES[i]).length);
      expect(share.of).toBe(SLUGS.length);
      expect(await metric(m, FARM_METRIC_NAMES.scanShare)).toBe(owned(NODES[i]).length);
      expect(m.daemon.output()).toContain("farm: this node's scan share changed");
    }
    // Whole rounds, counted from a round boundary on every node (a round in progress at either end adds at most one).
    const rounds = () => Promise.all(nodes.map((m) => metric(m, ROUNDS)));
    const r0 = await rounds();
    await waitFor("a round to end on every node", async () => (await rounds()).every((r, i) => r > r0[i]), 120_000, 100);
    const start = await rounds();
    const s0 = primary.sessionsStarted();
    await waitFor("3 more rounds on every node", async () => (await rounds()).every((r, i) => r >= start[i] + 3), 300_000, 200);
    const s1 = primary.sessionsStarted();
    const done = (await rounds()).map((r, i) => r - start[i]);
    const sessions = s1 - s0;
    // One session per owned repository per round, at most one round more per node in flight.
    const shared = done.reduce((a, d, i) => a + (d + 1) * owned(NODES[i]).length, 0);
    // Without sharing every node scans every repository each round.
    const unshared = done.reduce((a, d) => a + d * SLUGS.length, 0);
    expect(sessions).toBeGreaterThan(0);
    expect(sessions).toBeLessThanOrEqual(shared);
    expect(sessions).toBeLessThan(unshared);
    // The ledger counts as compared only what the node scanned: its share.
    for (const [i, m] of nodes.entries()) expect((await lastReconcile(m)).checked).toBe(owned(NODES[i]).length);
  });

  test("a push without a webhook is found by its owner's scan; the other node syncs it from the announcement", async () => {
    const [a, b] = nodes;
    const sent = await Promise.all(nodes.map((m) => metric(m, FARM_METRIC_NAMES.sent)));
    const received = await Promise.all(nodes.map((m) => metric(m, FARM_METRIC_NAMES.received)));
    const w = clones.get("web")!; // node-a's
    await w.commit({ "src/web.txt": "found by a scan\n" });
    await w.push(["main"]);
    const tip = await tipOn(primary.repoPath(PROJECT, "web"));
    for (const m of nodes) await waitFor(`the push on ${m.base}`, async () => (await tipOn(m.repoDir(PROJECT, "web"))) === tip, 180_000, 100);
    // A's scan found it and A announced it once; B was told (it does not scan "web") and did not announce again.
    expect(await metric(a, FARM_METRIC_NAMES.sent)).toBe(sent[0] + 1);
    expect(await metric(b, FARM_METRIC_NAMES.received)).toBe(received[1] + 1);
    expect(await metric(b, FARM_METRIC_NAMES.sent)).toBe(sent[1]);
    expect(await metric(a, FARM_METRIC_NAMES.received)).toBe(received[0]);
  });

  test("a node stops: the survivor scans its repositories at the next rounds", async () => {
    const [a, b] = nodes;
    await a.daemon.stop(30_000);
    const share = await waitFor(
      "node-b scans everything",
      async () => {
        const f = await farmDetail(b);
        return f.scanShare?.mode === "all" && f.scanShare.repos === SLUGS.length ? f.scanShare : undefined;
      },
      120_000,
      200,
    );
    expect(share.why).toBe("no_peer_up");
    await waitFor("a round of node-b over every repository", async () => (await lastReconcile(b)).checked === SLUGS.length, 120_000, 200);
    expect(await metric(b, FARM_METRIC_NAMES.scanShare)).toBe(SLUGS.length);
    // A push to a repository node-a scanned, no webhook: only node-b's own scan can find it.
    const sent = await metric(b, FARM_METRIC_NAMES.sent);
    const w = clones.get("site")!;
    await w.commit({ "src/site.txt": "found by the survivor\n" });
    await w.push(["main"]);
    const tip = await tipOn(primary.repoPath(PROJECT, "site"));
    await waitFor("node-b has the push", async () => (await tipOn(b.repoDir(PROJECT, "site"))) === tip, 180_000, 100);
    expect(await metric(b, FARM_METRIC_NAMES.sent)).toBe(sent + 1);
  });
});
