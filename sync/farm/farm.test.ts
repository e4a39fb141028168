import * as fs from "node:fs";
import * as path from "node:path";
import { Registry } from "prom-client";
import { tempDir } from "../../testbed/resources";
import type { SyncResult } from "../daemon/syncWaiters";
import type { Authorizer } from "../auth/authorizer";
import { announcementBody, ANNOUNCE_MAX_MOVES, coveredBy, movesBetween, parseAnnouncement } from "./announce";
import { Farm, FARM_METRIC_NAMES, identityOf, readyFromStatus } from "./farm";
import { parsePeers, parsePeerUrl, PeersFile } from "./peersFile";
import { seedSource } from "./seed";
import { farmAuthorizer, farmTokenCheck } from "./token";

const A = "a".repeat(40);
const B = "b".repeat(40);
const C = "c".repeat(40);
const Z = "0".repeat(40);

describe("peers file", () => {
  test("one base URL per line; comments, blanks and duplicates dropped; bad lines reported", () => {
    const r = parsePeers("# farm\nhttps://10.0.1.23\n\nhttps://10.0.1.24:8443  # second\nhttps://10.0.1.23/\nhttp://10.0.1.25\nhttps://u:p@10.0.1.26\nhttps://10.0.1.27/scm\nnot a url\nhttps://[fd00::1]:8443\n");
    expect(r.peers).toEqual([
      { url: "https://10.0.1.23", host: "10.0.1.23", port: 443 },
      { url: "https://10.0.1.24:8443", host: "10.0.1.24", port: 8443 },
      { url: "https://[fd00::1]:8443", host: "fd00::1", port: 8443 },
    ]);
    expect(r.problems.map((p) => [p.line, p.problem])).toEqual([
      [6, expect.stringContaining("not https")],
      [7, expect.stringContaining("credentials")],
      [8, expect.stringContaining("without a path")],
      [9, expect.stringContaining("not a URL")],
    ]);
    expect(parsePeerUrl("https://node1.internal")).toEqual({ url: "https://node1.internal", host: "node1.internal", port: 443 });
  });

  test("re-read when replaced by an atomic rename; a missing file is no peers, said once", () => {
    const dir = tempDir("peers");
    const file = path.join(dir, "peers");
    let now = 0;
    const warnings: string[] = [];
    const pf = new PeersFile(file, { now: () => now, warn: (m) => warnings.push(m) });
    expect(pf.list()).toEqual([]);
    now += 1000;
    expect(pf.list()).toEqual([]);
    expect(warnings).toEqual([expect.stringContaining("does not exist")]);
    fs.writeFileSync(`${file}.tmp`, "https://10.0.0.1\n");
    fs.renameSync(`${file}.tmp`, file);
    // Not looked at again within the check interval...
    expect(pf.list()).toEqual([]);
    now += 1000;
    // ...then seen.
    expect(pf.list().map((p) => p.url)).toEqual(["https://10.0.0.1"]);
    const gen = pf.generation;
    fs.writeFileSync(`${file}.tmp`, "https://10.0.0.1\nhttps://10.0.0.2\n");
    fs.renameSync(`${file}.tmp`, file);
    now += 1000;
    expect(pf.list().map((p) => p.url)).toEqual(["https://10.0.0.1", "https://10.0.0.2"]);
    expect(pf.generation).toBe(gen + 1);
  });
});

describe("announcements", () => {
  test("parsed strictly: a repository key, object ids, bounded moves and an origin", () => {
    expect(parseAnnouncement(JSON.stringify({ repo: "PROJ/app", moves: [{ ref: "refs/heads/main", old: A, new: B }], origin: "n1" }))).toEqual({ repo: "PROJ/app", moves: [{ ref: "refs/heads/main", old: A, new: B }], origin: "n1" });
    expect(parseAnnouncement(JSON.stringify({ repo: "PROJ/app", origin: "n1" }))).toEqual({ repo: "PROJ/app", moves: undefined, origin: "n1" });
    expect(parseAnnouncement("{")).toEqual({ problem: "body is not JSON" });
    expect(parseAnnouncement(JSON.stringify({ repo: "../etc", origin: "n1" }))).toEqual({ problem: "repo: not PROJECT/slug" });
    expect(parseAnnouncement(JSON.stringify({ repo: "PROJ/app", moves: [{ ref: "refs/heads/main", old: "x", new: B }], origin: "n1" }))).toHaveProperty("problem");
    expect(parseAnnouncement(JSON.stringify({ repo: "PROJ/app", moves: [{ ref: "HEAD", old: A, new: B }], origin: "n1" }))).toHaveProperty("problem");
    expect(parseAnnouncement(JSON.stringify({ repo: "PROJ/app" }))).toHaveProperty("problem");
  });

  test("the moves from held refs to the advertisement: updates, creations and deletions", () => {
    const held = new Map([["refs/heads/main", A], ["refs/heads/old", B]]);
    const next = new Map([["refs/heads/main", B], ["refs/heads/new", C]]);
    expect(movesBetween(held, next)).toEqual([
      { ref: "refs/heads/main", old: A, new: B },
      { ref: "refs/heads/new", old: Z, new: C },
      { ref: "refs/heads/old", old: B, new: Z },
    ]);
    expect(movesBetween(held, held)).toEqual([]);
  });

  test("a node that was told does not tell again, unless it publishes more than it was told", () => {
    const told = [{ ref: "refs/heads/main", old: A, new: B }];
    expect(coveredBy(told, [{ ref: "refs/heads/main", old: A, new: B }])).toBe(true);
    expect(coveredBy(told, undefined)).toBe(true);
    expect(coveredBy(undefined, [{ ref: "refs/heads/x", old: A, new: C }])).toBe(true);
    expect(coveredBy(told, [{ ref: "refs/heads/main", old: B, new: C }])).toBe(false);
    expect(coveredBy(told, [{ ref: "refs/heads/main", old: A, new: B }, { ref: "refs/heads/dev", old: Z, new: C }])).toBe(false);
  });

  test("too many moves are left out: the peer then syncs fully", () => {
    const many = Array.from({ length: ANNOUNCE_MAX_MOVES + 1 }, (_, i) => ({ ref: `refs/heads/b${i}`, old: A, new: B }));
    expect(announcementBody("PROJ/app", many, "n1")).toEqual({ repo: "PROJ/app", origin: "n1" });
    expect(announcementBody("PROJ/app", [], "n1")).toEqual({ repo: "PROJ/app", origin: "n1" });
  });
});

describe("the farm token", () => {
  const TOKEN = "farm-token-0123456789abcdef";
  test("only `Bearer <token>` matches", () => {
    const is = farmTokenCheck(TOKEN);
    expect(is(`Bearer ${TOKEN}`)).toBe(true);
    expect(is(`bearer ${TOKEN}`)).toBe(true);
    expect(is(`Bearer ${TOKEN}x`)).toBe(false);
    expect(is(`Basic ${Buffer.from(`farm:${TOKEN}`).toString("base64")}`)).toBe(false);
    expect(is(undefined)).toBe(false);
    expect(is([`Bearer ${TOKEN}`, `Bearer ${TOKEN}`])).toBe(false);
  });

  test("admits a peer to every repository without asking the inner authorizer; everyone else is the inner's", async () => {
    const asked: string[] = [];
    const inner: Authorizer = {
      mode: "primary",
      authorize: async (h) => {
        asked.push(String(h));
        return { allowed: false, reason: "bad_credentials" };
      },
      close() {},
    };
    const a = farmAuthorizer(inner, TOKEN);
    expect(await a.authorize(`Bearer ${TOKEN}`, { project: "P", slug: "r" })).toEqual({ allowed: true, principal: "farm-peer", via: "token" });
    expect(asked).toEqual([]);
    expect(await a.authorize("Bearer other", { project: "P", slug: "r" })).toEqual({ allowed: false, reason: "bad_credentials" });
    expect(asked).toEqual(["Bearer other"]);
  });
});

describe("seeding from a peer", () => {
  test("the farm's name in the URL, the peer's address pinned for it, the token in the environment only", () => {
    const base = { PATH: "/usr/bin", GIT_CONFIG_COUNT: "1", GIT_CONFIG_KEY_0: "http.proxy", GIT_CONFIG_VALUE_0: "http://evil", GIT_SSL_NO_VERIFY: "1", GIT_SSH_COMMAND: "ssh -F /dev/null" };
    const s = seedSource({ url: "https://10.0.1.23:8443", host: "10.0.1.23", port: 8443 }, { project: "PROJ", slug: "app" }, { serverName: "mirror.example.com", caFile: "/etc/farm/ca.pem", token: "s3cret" }, base);
    expect(s.url).toBe("https://mirror.example.com:8443/scm/PROJ/app.git");
    expect(s.url).not.toContain("s3cret");
    expect(s.peer).toBe("https://10.0.1.23:8443");
    const config = Object.fromEntries(Array.from({ length: Number(s.env.GIT_CONFIG_COUNT) }, (_, i) => [s.env[`GIT_CONFIG_KEY_${i}`], s.env[`GIT_CONFIG_VALUE_${i}`]]));
    expect(config).toEqual({ "http.extraHeader": "Authorization: Bearer s3cret", "http.curloptResolve": "mirror.example.com:8443:10.0.1.23", "http.followRedirects": "false", "http.sslCAInfo": "/etc/farm/ca.pem" });
    expect(s.env.GIT_SSL_NO_VERIFY).toBeUndefined();
    expect(s.env.PATH).toBe("/usr/bin");
    const v6 = seedSource({ url: "https://[fd00::1]", host: "fd00::1", port: 443 }, { project: "PROJ", slug: "app" }, { serverName: "m.example.com", token: "t" }, {});
    expect(v6.url).toBe("https://m.example.com/scm/PROJ/app.git");
    expect(v6.env.GIT_CONFIG_VALUE_1).toBe("m.example.com:443:[fd00::1]");
  });
});

describe("peer answers", () => {
  test("ready: /status/ready's flag when present, else the state and not draining", () => {
    expect(readyFromStatus(JSON.stringify({ ready: true, state: "INITIAL_SYNC" }))).toBe(true);
    expect(readyFromStatus(JSON.stringify({ ready: false, state: "SYNCHRONIZED" }))).toBe(false);
    expect(readyFromStatus(JSON.stringify({ state: "SYNCHRONIZED" }))).toBe(true);
    expect(readyFromStatus(JSON.stringify({ state: "DEGRADED", draining: false }))).toBe(true);
    expect(readyFromStatus(JSON.stringify({ state: "SYNCHRONIZED", draining: true }))).toBe(false);
    expect(readyFromStatus(JSON.stringify({ state: "INITIAL_SYNC" }))).toBe(false);
    expect(readyFromStatus("<html>")).toBe(false);
    expect(identityOf(JSON.stringify({ node: "n2", instance: "i2" }))).toEqual({ node: "n2", instance: "i2" });
    expect(identityOf(JSON.stringify({ node: "n2" }))).toEqual({ node: "n2" });
    // What a peer says about itself is bounded before it is logged, shown or hashed.
    expect(identityOf(JSON.stringify({ node: "n".repeat(129) }))).toBeUndefined();
    expect(identityOf(JSON.stringify({ node: "n2", instance: "i".repeat(65) }))).toEqual({ node: "n2" });
    expect(identityOf("{}")).toBeUndefined();
  });
});

describe("Farm: recorded announcements and the catch-up", () => {
  function farmWith(syncNow: (key: string) => Promise<SyncResult>) {
    const dir = tempDir("farm-unit");
    const registry = new Registry();
    const farm = new Farm({ peersFile: path.join(dir, "peers"), token: "t", serverName: "m.example.com", nodeId: "me", catchUpWaitMs: 1000 }, { link: { syncNow }, registry });
    const metric = async (name: string, labels: Record<string, string> = {}) => ((await registry.getSingleMetric(name)?.get())?.values ?? []).filter((v) => Object.entries(labels).every(([k, x]) => (v.labels as Record<string, string>)[k] === x)).reduce((n, v) => n + v.value, 0);
    return { farm, metric };
  }

  test("an advertisement waits for the sync an announcement started; nothing outstanding: no wait", async () => {
    let finish!: (r: SyncResult) => void;
    const asked: string[] = [];
    const { farm, metric } = farmWith((key) => {
      asked.push(key);
      return new Promise((r) => (finish = r));
    });
    expect(await farm.catchUp("PROJ/app", 10_000)).toBe("none");
    farm.receive({ repo: "PROJ/app", moves: [{ ref: "refs/heads/main", old: A, new: B }], origin: "n2" });
    expect(asked).toEqual(["PROJ/app"]);
    expect(farm.status().pendingAnnouncements).toEqual([expect.objectContaining({ repo: "PROJ/app", origin: "n2", moves: 1 })]);
    const waiting = farm.catchUp("PROJ/app", 60_000);
    let settled = false;
    void waiting.then(() => (settled = true));
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false);
    finish({ ok: true });
    expect(await waiting).toBe("caught_up");
    expect(farm.hasPending("PROJ/app")).toBe(false);
    expect(await metric(FARM_METRIC_NAMES.catchUps, { result: "caught_up" })).toBe(1);
    expect(await metric(FARM_METRIC_NAMES.received)).toBe(1);
    farm.close();
  });

  test("past the bound the node serves what it has, counted", async () => {
    const { farm, metric } = farmWith(() => new Promise<SyncResult>(() => undefined));
    farm.receive({ repo: "PROJ/app", origin: "n2" });
    expect(await farm.catchUp("PROJ/app", 10)).toBe("timeout");
    expect(await metric(FARM_METRIC_NAMES.catchUpTimeouts)).toBe(1);
    farm.close();
  });

  test("the announced sync's own publish is not announced again; a newer one is", async () => {
    const { farm, metric } = farmWith(() => new Promise<SyncResult>(() => undefined));
    farm.receive({ repo: "PROJ/app", moves: [{ ref: "refs/heads/main", old: A, new: B }], origin: "n2" });
    expect(await farm.announce("PROJ/app", [{ ref: "refs/heads/main", old: A, new: B }])).toEqual({ announced: false, acked: 0, failed: 0, skipped: 0 });
    expect(await metric(FARM_METRIC_NAMES.sent)).toBe(0);
    // No peers listed: announced (counted), nobody to tell.
    expect(await farm.announce("PROJ/app", [{ ref: "refs/heads/main", old: B, new: C }])).toEqual({ announced: true, acked: 0, failed: 0, skipped: 0 });
    expect(await metric(FARM_METRIC_NAMES.sent)).toBe(1);
    farm.close();
  });
});
