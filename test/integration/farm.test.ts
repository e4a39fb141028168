/**
 * The mirror farm, locally (issue #17 "Must show"): three network-namespace nodes, each with
 * the built daemon and nginx laid down by the real `smart-mirror apply` agent from a plan
 * served over HTTPS, behind Debian's HAProxy in TCP mode (round-robin per connection, HTTPS
 * readiness checks) as the NLB stand-in; the primary is the real OpenSSH one.
 *
 *   1. For a bounded time, parallel clones and fetches through HAProxy with a new connection
 *      per request (so one git command's requests land on different nodes) while pushes land
 *      on the primary; meanwhile a rolling update of all three nodes to a new plan. No clone or
 *      fetch fails, and every client ends with the primary's refs.
 *   2. A fourth node joins the running farm: it seeds from its peers (bytes from peers vs from
 *      the primary, from its metrics) and HAProxy sends it no client until it reports ready.
 *
 * No timed assertion: durations are reported, never compared with a bound.
 */
import * as path from "node:path";
import { Farm, startFarm } from "../../testbed/farm/farm";
import { git, listRefs } from "../../testbed/repos";
import { tempDir } from "../../testbed/resources";
import { seedFarmRepos, SMALL_REPOS, BIG_REPO } from "../../testbed/farm/farmRepos";
import { describeScenario, loadDuringRollingUpdate } from "../../testbed/farm/scenario";
import { joinNode } from "../../testbed/farm/join";
import { startLoad, summarize } from "../../testbed/farm/loadGenerator";

jest.setTimeout(600_000);

let farm: Farm;
const REPOS = [...SMALL_REPOS, BIG_REPO];
/** Small: the big repository is there for the joining node's seeding. */
const BIG_MB = 8;

beforeAll(async () => {
  farm = await startFarm({ nodes: 3, repos: REPOS, seed: (p) => seedFarmRepos(p, BIG_MB).then(() => undefined), syncInterval: "1m" });
  await farm.waitAllUp();
});

describe("a farm of three nodes behind HAProxy", () => {
  test("one clone's requests land on different nodes (a new connection per request, round-robin)", async () => {
    const before = await farm.servers();
    const dest = path.join(tempDir("farm-one-clone"), "app.git");
    await git([...farm.gitArgs(), "clone", "--quiet", "--mirror", farm.url(SMALL_REPOS[0]), dest], { env: farm.gitEnv() });
    const after = await farm.servers();
    const got = after.map((s) => s.sessionsTotal - (before.find((b) => b.name === s.name)?.sessionsTotal ?? 0));
    // Protocol v2 clone: info/refs, ls-refs, fetch: three connections, so every node got one.
    expect(got.map((n) => n >= 1)).toEqual([true, true, true]);
    expect(await listRefs(dest)).toEqual(await farm.primaryRefs(SMALL_REPOS[0]));
  });

  test("load + pushes + a rolling update of every node: no failed clone or fetch, every client ends with the primary's refs", async () => {
    const next = farm.settings();
    next.syncInterval = "2m"; // the new plan: a changed setting restarts each daemon
    const r = await loadDuringRollingUpdate(farm, { repos: SMALL_REPOS, workers: 4, minLoadMs: 20_000, next, log: (l) => process.stdout.write(`farm: ${l}\n`) });
    process.stdout.write(describeScenario(r) + "\n");

    expect(r.updates.map((u) => [u.node, u.ok, u.error])).toEqual(farm.nodes.map((n) => [n.name, true, undefined]));
    // Every node served clients: round-robin really spread the connections.
    for (const n of farm.nodes) expect(r.sessionsPerNode[n.name]).toBeGreaterThan(0);
    expect(r.counts.clones).toBeGreaterThan(0);
    expect(r.counts.fetches).toBeGreaterThan(0);
    expect(r.counts.pushes).toBeGreaterThan(0);
    expect([...r.ops, ...r.finalOps].filter((x) => !x.ok)).toEqual([]);
    expect(r.pushes.filter((p) => !p.ok)).toEqual([]);
    expect(r.mismatches).toEqual([]);
  });

  test("a fourth node joins the running farm: seeds from its peers, and HAProxy sends it nothing until it reports ready", async () => {
    // Clients keep coming while the node joins: HAProxy has connections it could send it.
    const load = startLoad({ target: farm, repos: SMALL_REPOS, workers: 2 });
    const j = await joinNode(farm);
    const ops = await load.stop();
    process.stdout.write(`farm join: ${JSON.stringify({ ...j, samples: j.samples.length })}; ${JSON.stringify(summarize(ops))}\n`);
    expect(ops.filter((x) => !x.ok)).toEqual([]);
    // HAProxy sent the new node no connection while it answered 503 (or nothing) on /status/ready.
    expect(j.samples.filter((x) => !x.ready && x.sessionsTotal > 0)).toEqual([]);
    expect(j.becameReady).toBe(true);
    // Once UP it takes its share of new connections (round-robin over four).
    expect(j.sessionsAfterReady).toBeGreaterThan(0);
    // Seeded from its peers: every repository's first clone came from a peer, and the peers sent
    // more bytes than the primary (the primary only sent what changed since, if anything).
    expect(j.seed.reposFromPeers).toBe(REPOS.length);
    // Random content: the pack is as big as the files (give or take the pack framing).
    expect(j.seed.bytesFromPeers).toBeGreaterThan(BIG_MB * 1000 * 1000);
    expect(j.seed.bytesFromPeers).toBeGreaterThan(j.seed.bytesFromPrimary);
  });
});
