/**
 * Nodes of a farm that know each other (#17 items 3 and 4), every part real: two built daemons,
 * each behind its own real nginx with TLS (one bench CA, certificates for the farm's name
 * mirror.test), syncing from a real sshd primary; peers reach each other over their nginx by
 * address (127.0.0.1:PORT) and verify the certificate for mirror.test.
 *
 * - Seeding: node B starts with node A in its peers file and takes its first clones from A over
 *   A's /scm/ (A requires tokens from clients: the farm token admits B); the primary sends no
 *   pack bytes for them; B is not ready until they are synced.
 * - Announce before publish, catch up before advertise: B has no webhook, a one-hour reconcile
 *   and mirror.serve.freshness=never, so nothing but A's announcement can bring it a push; a
 *   push announced to A by webhook is, as soon as A serves it, advertised by B too.
 * - A peer that cannot be reached is skipped (counted) and does not hold A's publish.
 * - A wrong farm token is refused (401) on /farm/announce and on /scm/.
 * - The peers file is re-read on change (atomic rename), and a node finds itself in it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { FARM_METRIC_NAMES } from "../../sync/farm";
import { ensureBundle } from "../../testbed/daemonProcess";
import { MIRROR_NAME, MirrorBehindNginx, startMirrorBehindNginx } from "../../testbed/mirrorBehindNginx";
import { Primary, startPrimary } from "../../testbed/primary";
import { git, GitError, listRefs, pushSampleHistory, workingClone, WorkingClone } from "../../testbed/repos";
import { freePort, onCleanup, tempDir, waitFor } from "../../testbed/resources";
import { createCa, ServerCert, TestCa } from "../../testbed/tls";
import { farmDetail, metric, writeAtomically } from "../../testbed/farmNodeProbe";
import { refsChangedPayload } from "../../testbed/webhook";
import { startLatencyProxyProcess } from "../../testbed/latencyProxyProcess";
import { createHash } from "node:crypto";

jest.setTimeout(600_000);

const APP = { project: "PROJ", slug: "app" };
const LIB = { project: "PROJ", slug: "lib" };
const SECRET = "farm-peers-webhook-secret";
const FARM_TOKEN = "farm-token-0123456789abcdef0123456789abcdef";
const CLIENT_TOKEN = "client-token-0123456789abcdef0123456789abcd";

async function lsRemote(m: MirrorBehindNginx, slug: string, extra: Record<string, string> = {}): Promise<Map<string, string>> {
  const out = await git(["ls-remote", m.url(APP.project, slug)], { env: m.gitEnv(extra) });
  return new Map(
    out
      .split("\n")
      // The refs only: no HEAD line, no peeled tags (as for-each-ref lists them).
      .filter((l) => l !== "" && !l.endsWith("\tHEAD") && !l.endsWith("^{}"))
      .map((l) => {
        const [oid, ref] = l.split("\t");
        return [ref, oid] as [string, string];
      }),
  );
}

describe("farm peers: seeding, announce before publish, catch up before advertise", () => {
  let primary: Primary;
  let app: WorkingClone;
  let ca: TestCa;
  let cert: ServerCert;
  let a: MirrorBehindNginx;
  let b: MirrorBehindNginx;
  let dir: string;
  const peersA = () => path.join(dir, "peers-a");
  const peersB = () => path.join(dir, "peers-b");
  const farmProps = (node: string, peersFile: string): Record<string, string> => ({
    "mirror.farm.peersFile": peersFile,
    "mirror.farm.tokenFile": path.join(dir, "farm-token"),
    "mirror.farm.serverName": MIRROR_NAME,
    "mirror.farm.caCertificatesFile": ca.certPath,
    "mirror.farm.nodeId": node,
    // Only announcements can bring B a push: no webhook, no scan in the test's time, no freshness check.
    "plugin.mirroring.synchronization.interval": "1h",
    "mirror.serve.freshness": "never",
    // A catch-up on a busy 2-core machine must not meet the bound: the test asserts the refs.
    "mirror.serve.onDemandWait": "2m",
  });

  beforeAll(async () => {
    ensureBundle();
    dir = tempDir("farm");
    fs.writeFileSync(path.join(dir, "farm-token"), FARM_TOKEN + "\n", { mode: 0o600 });
    // Clients of A need a token of their own; the farm token is not in this file.
    fs.writeFileSync(path.join(dir, "client-tokens"), `ci:${createHash("sha256").update(CLIENT_TOKEN).digest("hex")}\n`, { mode: 0o600 });
    ca = await createCa();
    cert = await ca.issueServerCert([MIRROR_NAME, "127.0.0.1"]);
    primary = await startPrimary();
    for (const r of [APP, LIB]) {
      await primary.createRepo(r.project, r.slug);
      const w = await workingClone(primary.remote(r.project, r.slug));
      await pushSampleHistory(w, 5);
      if (r === APP) app = w;
    }
    fs.writeFileSync(peersA(), "");
    // A does not mirror LIB: B's first clone of it finds nothing on A and falls back to the primary.
    a = await startMirrorBehindNginx({
      primary,
      repos: [APP],
      tls: { ca, cert },
      webhookSecret: SECRET,
      properties: { ...farmProps("node-a", peersA()), "mirror.serve.auth": "tokens", "mirror.serve.tokensFile": path.join(dir, "client-tokens") },
    });
    await a.waitSynchronized();
    // A lists itself (it must find and skip its own entry).
    writeAtomically(peersA(), `# the farm\nhttps://127.0.0.1:${a.port}\n`);
    writeAtomically(peersB(), `https://127.0.0.1:${a.port}\n`);
    // B reaches the primary over a slow link (500 ms each way): its syncs take seconds, so an
    // advertisement on B right after A published finds B's announced sync still running, and
    // only the catch-up (waiting for it) can answer with the new refs.
    const slow = await startLatencyProxyProcess({ targetHost: primary.host, targetPort: primary.port, delayMs: 500 });
    onCleanup(() => slow.stop());
    b = await startMirrorBehindNginx({
      primary,
      repos: [APP, LIB],
      tls: { ca, cert },
      properties: { ...farmProps("node-b", peersB()), "mirror.upstream.sshUrl": `ssh://${primary.user}@${slow.host}:${slow.port}` },
    });
  });

  test("a joining node seeds its first clones from a ready peer, and is not ready until synced", async () => {
    // Polled from its start: whenever B said ready, both copies were complete.
    await waitFor(
      "node B ready",
      async () => {
        const st = JSON.parse((await b.request("GET", "/status")).body.toString("utf8")) as { state: string; syncedRepos: number; totalRepos: number };
        const ready = st.state === "SYNCHRONIZED" || st.state === "DEGRADED";
        if (ready) expect(st.syncedRepos).toBe(2);
        return ready;
      },
      300_000,
      50,
    );
    const farm = await farmDetail(b);
    // APP from A; the primary sent nothing for it (A was current: no delta), only LIB, which A lacks.
    expect(farm.seed.fromPeers.repos).toBe(1);
    expect(farm.seed.fromPeers.bytes).toBeGreaterThan(0);
    expect(farm.seed.fromPrimary.repos).toBe(1);
    expect(await metric(b, FARM_METRIC_NAMES.seedBytes, { source: "peer" })).toBe(farm.seed.fromPeers.bytes);
    expect(await metric(b, FARM_METRIC_NAMES.seedBytes, { source: "primary" })).toBe(farm.seed.fromPrimary.bytes);
    expect(await metric(b, FARM_METRIC_NAMES.seedRepos, { source: "primary" })).toBe(1);
    // LIB's bytes are all the primary sent: a first clone of the same history as APP's.
    expect(farm.seed.fromPrimary.bytes).toBeLessThanOrEqual(farm.seed.fromPeers.bytes * 2);
    // The clones went through A's nginx, as the farm peer (A refuses clients without a token).
    const log = fs.readFileSync(path.join(a.nginx.prefix, "logs", "site.access.log"), "utf8");
    expect(log).toMatch(/\/scm\/PROJ\/app\.git\/git-upload-pack[^\n]* 200 /);
    // Same refs as the primary.
    for (const r of [APP, LIB]) expect(await lsRemote(b, r.slug)).toEqual(await listRefs(primary.repoPath(r.project, r.slug)));
  });

  test("a wrong farm token is refused on /farm/announce and /scm/; the right one is told who the node is", async () => {
    const body = JSON.stringify({ repo: "PROJ/app", origin: "intruder" });
    const wrong = await a.request("POST", "/farm/announce", { headers: { Authorization: "Bearer not-the-farm-token", "Content-Type": "application/json" }, body });
    expect(wrong.status).toBe(401);
    const none = await a.request("POST", "/farm/announce", { headers: { "Content-Type": "application/json" }, body });
    expect(none.status).toBe(401);
    expect(await metric(a, FARM_METRIC_NAMES.received)).toBe(0);
    const who = await a.request("GET", "/farm/announce", { headers: { Authorization: `Bearer ${FARM_TOKEN}` } });
    expect(who.status).toBe(200);
    expect(JSON.parse(who.body.toString("utf8"))).toEqual({ node: "node-a", instance: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    const clone = await git(["ls-remote", a.url(APP.project, APP.slug)], { env: a.gitEnv({ GIT_CONFIG_COUNT: "2", GIT_CONFIG_KEY_1: "http.extraHeader", GIT_CONFIG_VALUE_1: "Authorization: Bearer not-the-farm-token" }) }).catch((e: GitError) => e);
    expect(clone).toBeInstanceOf(GitError);
    expect((clone as GitError).stderr).toMatch(/401|Authentication failed|could not read Username/i);
  });

  test("the peers file is re-read on change; a node finds and skips its own entry", async () => {
    const dead = await freePort();
    writeAtomically(peersA(), `https://127.0.0.1:${a.port}\nhttps://127.0.0.1:${b.port}\nhttps://127.0.0.1:${dead}  # a node that is down\n`);
    const farm = await waitFor(
      "A sees B ready and the dead peer unreachable",
      async () => {
        const f = await farmDetail(a);
        const byUrl = new Map(f.peers.map((p) => [p.url, p]));
        return byUrl.get(`https://127.0.0.1:${b.port}`)?.healthy && byUrl.get(`https://127.0.0.1:${dead}`)?.reachable === false && byUrl.get(`https://127.0.0.1:${a.port}`)?.self ? f : undefined;
      },
      60_000,
      100,
    );
    expect(farm.peers.find((p) => p.url === `https://127.0.0.1:${b.port}`)?.node).toBe("node-b");
    expect(farm.healthyPeers).toBe(1);
    expect(await metric(a, FARM_METRIC_NAMES.peersHealthy)).toBe(1);
    expect(await metric(a, FARM_METRIC_NAMES.peers)).toBe(2);
  });

  test("a push A publishes is advertised by B at once: B caught up from A's announcement; the dead peer is skipped", async () => {
    const before = await lsRemote(b, APP.slug);
    const sentBefore = await metric(a, FARM_METRIC_NAMES.sent);
    await app.commit({ "src/main.txt": "farm push\n" });
    await app.push(["main"]);
    const tip = (await git(["rev-parse", "refs/heads/main"], { env: primary.gitEnv(), cwd: primary.repoPath(APP.project, APP.slug) })).trim();
    expect(before.get("refs/heads/main")).not.toBe(tip);
    const auth = { GIT_CONFIG_COUNT: "2", GIT_CONFIG_KEY_1: "http.extraHeader", GIT_CONFIG_VALUE_1: `Authorization: Bearer ${CLIENT_TOKEN}` };
    expect(await a.postWebhook(refsChangedPayload(APP.project, APP.slug, "refs/heads/main", before.get("refs/heads/main"), tip))).toBeLessThan(300);
    // As soon as A serves the push...
    await waitFor("A serves the push", async () => (await lsRemote(a, APP.slug, auth)).get("refs/heads/main") === tip, 120_000, 20);
    // ...B does too: it recorded A's announcement before A published, and waits for that sync.
    expect((await lsRemote(b, APP.slug)).get("refs/heads/main")).toBe(tip);
    expect(await metric(b, FARM_METRIC_NAMES.catchUps, { result: "caught_up" })).toBeGreaterThanOrEqual(1);
    // And a fetch of it from B (a POST that may land on another node than the advertisement) works.
    const dest = path.join(tempDir("fetch"), "b.git");
    await git(["clone", "--quiet", "--mirror", b.url(APP.project, APP.slug), dest], { env: b.gitEnv() });
    expect((await git(["rev-parse", "refs/heads/main"], { cwd: dest })).trim()).toBe(tip);
    expect(await metric(a, FARM_METRIC_NAMES.sent)).toBe(sentBefore + 1);
    expect(await metric(b, FARM_METRIC_NAMES.received)).toBeGreaterThanOrEqual(1);
    // The dead peer was skipped (known unreachable), not waited for; B did not announce it again.
    expect(await metric(a, FARM_METRIC_NAMES.skippedPeers)).toBeGreaterThanOrEqual(1);
    expect(await metric(b, FARM_METRIC_NAMES.sent)).toBe(0);
    expect(await metric(a, FARM_METRIC_NAMES.received)).toBe(0);
  });

  test("a fetch POST landing on B for an object only announced so far waits for the announced sync, not a new one", async () => {
    const auth = { GIT_CONFIG_COUNT: "2", GIT_CONFIG_KEY_1: "http.extraHeader", GIT_CONFIG_VALUE_1: `Authorization: Bearer ${CLIENT_TOKEN}` };
    const before = (await lsRemote(a, APP.slug, auth)).get("refs/heads/main");
    await app.commit({ "src/main.txt": "farm push, fetched by id\n" });
    await app.push(["main"]);
    const tip = (await git(["rev-parse", "refs/heads/main"], { cwd: primary.repoPath(APP.project, APP.slug) })).trim();
    const caughtUp = await metric(b, FARM_METRIC_NAMES.catchUps, { result: "caught_up" });
    expect(await a.postWebhook(refsChangedPayload(APP.project, APP.slug, "refs/heads/main", before, tip))).toBeLessThan(300);
    await waitFor("A serves the push", async () => (await lsRemote(a, APP.slug, auth)).get("refs/heads/main") === tip, 120_000, 20);
    // The client read the advertisement on A; its fetch (protocol v2) lands on B.
    const pkt = (line: string) => (line.length + 4).toString(16).padStart(4, "0") + line;
    const body = pkt("command=fetch\n") + "0001" + pkt(`want ${tip}\n`) + pkt("done\n") + "0000";
    const r = await b.request("POST", "/scm/PROJ/app.git/git-upload-pack", { headers: { "Content-Type": "application/x-git-upload-pack-request", "Git-Protocol": "version=2" }, body });
    expect(r.status).toBe(200);
    const text = r.body.toString("latin1");
    expect(text).not.toMatch(/ERR /);
    expect(text).toContain("packfile\n");
    expect(await metric(b, FARM_METRIC_NAMES.catchUps, { result: "caught_up" })).toBe(caughtUp + 1);
  });
});
