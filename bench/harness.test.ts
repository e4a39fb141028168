/**
 * The benchmark harness's pure parts: statistics, scale, the results README, the bench
 * layout of repository names, and the webhook payload the sync_lag benchmark sends (which
 * must be one the daemon accepts, or the benchmark would measure nothing).
 */
import { decideWebhook } from "../sync/serve/webhookEvent";
import { signBody, verifySignature } from "../sync/serve/webhookSignature";
import { benchProperties } from "./daemonRss";
import { repoIds } from "./fixtures";
import { parseBashTimes } from "./profile";
import { spreadSample } from "./reconcile";
import { commandFor, goalMet, renderReadme, renderSummary, ResultDoc } from "./results";
import { parseScale, scaled } from "./scale";
import { median, medianInterval, pairedRatio, pairedRatioInterval, quantile, ratio } from "./stats";
import { refsChangedPayload } from "../testbed/webhook";

describe("stats", () => {
  test("quantile is nearest-rank: p50 and p99 of 1..100", () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(quantile(xs, 0.5)).toBe(50);
    expect(quantile(xs, 0.99)).toBe(99);
    expect(quantile(xs, 1)).toBe(100);
    expect(quantile([7], 0.99)).toBe(7);
  });
  test("median of even and odd counts; ratio rounds", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(ratio(1000, 30)).toBe(33.3);
    expect(() => ratio(1, 0)).toThrow(/must be > 0/);
    expect(() => quantile([], 0.5)).toThrow();
  });

  test("paired ratio: the median of per-round ratios, so one slow round moves neither side alone", () => {
    // Per round: 1.11, 0.97 (a slow round for both), 1.1.
    expect(pairedRatio([100, 300, 110], [90, 310, 100])).toBe(1.1);
    expect(pairedRatio([100, 200, 100, 200], [100, 100, 200, 200])).toBe(1);
    expect(() => pairedRatio([1, 2], [1])).toThrow(/equally many rounds/);
    expect(() => pairedRatio([], [])).toThrow();
  });

  test("median interval: the sign test's order statistics (n=9: 2nd and 8th; n=15: 4th and 12th), none below n=6", () => {
    const xs = (n: number) => Array.from({ length: n }, (_, i) => n - i); // n..1
    // P(Bin(9, .5) <= 1) = 10/512 = 0.0195 <= 0.025; P(<= 2) = 46/512 = 0.0898 > 0.025.
    expect(medianInterval(xs(9))).toEqual([2, 8]);
    // P(Bin(15, .5) <= 3) = 576/32768 = 0.0176; P(<= 4) = 1941/32768 = 0.059.
    expect(medianInterval(xs(15))).toEqual([4, 12]);
    expect(medianInterval(xs(6))).toEqual([1, 6]); // P(<= 0) = 1/64 = 0.016; P(<= 1) = 7/64
    expect(medianInterval(xs(5))).toBeUndefined(); // P(<= 0) = 1/32 = 0.031 > 0.025
    // n=8: P(<= 0) = 0.004, P(<= 1) = 9/256 = 0.035, P(<= 2) = 0.145: k = 1 at 95%, 2 at 90%.
    expect(medianInterval(xs(8))).toEqual([1, 8]);
    expect(medianInterval(xs(8), 0.9)).toEqual([2, 7]);
    expect(pairedRatioInterval([110, 100, 90, 105, 95, 120, 80], [100, 100, 100, 100, 100, 100, 100])).toEqual([0.8, 1.2]);
  });
});

describe("scale", () => {
  test("default 1, accepts fractions, refuses nonsense with the variable's name", () => {
    expect(parseScale(undefined)).toBe(1);
    expect(parseScale("0.1")).toBe(0.1);
    expect(() => parseScale("0")).toThrow(/SMART_MIRROR_BENCH_SCALE/);
    expect(() => parseScale("fast")).toThrow(/SMART_MIRROR_BENCH_SCALE/);
    expect(scaled(1000, 0.1)).toBe(100);
    expect(scaled(100, 0.01, 10)).toBe(10);
  });
  test("the command in a result names the scale when it is not 1", () => {
    expect(commandFor("reconcile", 1)).toBe("npm run bench -- reconcile");
    expect(commandFor("reconcile", 0.1)).toBe("SMART_MIRROR_BENCH_SCALE=0.1 npm run bench -- reconcile");
  });
});

describe("results README", () => {
  const doc = (name: string, results: ResultDoc["results"], goals?: Record<string, string>): ResultDoc => ({
    benchmark: name,
    command: `npm run bench -- ${name}`,
    when: "2025-01-01T00:00:00.000Z",
    machine: "test machine",
    results,
    notes: `notes of ${name}`,
    goals,
  });

  test("goals: >=, <=, == N and == true/false; unknown forms undecided", () => {
    expect(goalMet(41, ">= 40")).toBe(true);
    expect(goalMet(39.9, ">= 40")).toBe(false);
    expect(goalMet(300, "<= 300")).toBe(true);
    expect(goalMet(301, "<= 300")).toBe(false);
    expect(goalMet(true, "== true")).toBe(true);
    expect(goalMet(false, "== true")).toBe(false);
    expect(goalMet(1, "== true")).toBeUndefined();
    expect(goalMet(true, ">= 1")).toBeUndefined();
    expect(goalMet("x", "<= 300")).toBeUndefined();
    expect(goalMet(0, "== 0")).toBe(true);
    expect(goalMet(2, "== 0")).toBe(false);
    expect(goalMet(false, "== 0")).toBeUndefined();
    expect(goalMet(1, "about 3")).toBeUndefined();
  });

  test("one row per metric, goals marked, notes and commands per benchmark", () => {
    const md = renderReadme([doc("reconcile", { "reconcile.speedup_vs_fetch_loop": 24.3, "reconcile.repos": 1000 }, { "reconcile.speedup_vs_fetch_loop": ">= 40" }), doc("sync_lag", { "sync_lag.p50_ms": 250 }, { "sync_lag.p50_ms": "<= 300" })]);
    expect(md).toContain("| reconcile | `reconcile.speedup_vs_fetch_loop` | 24.3 | ≥ 40 ❌ not met |");
    expect(md).toContain("| reconcile | `reconcile.repos` | 1000 |  |");
    expect(md).toContain("| sync_lag | `sync_lag.p50_ms` | 250 | ≤ 300 ✅ |");
    expect(md).toContain("Machine: test machine.");
    expect(md).toContain("`npm run bench -- sync_lag`, 2025-01-01T00:00:00.000Z.");
    expect(md).toContain("notes of reconcile");
  });

  test("no results yet says how to make them", () => {
    expect(renderReadme([])).toContain("run `npm run bench`");
  });

  test("the project README's summary: headline and goal metrics only, and a link to the full tables", () => {
    const md = renderSummary([
      doc("reconcile", { "reconcile.speedup_vs_fetch_loop": 84, "reconcile.repos": 1000 }, {}),
      doc("sync_lag", { "sync_lag.p50_ms": 53, "sync_lag.extra_ms": 7 }, { "sync_lag.extra_ms": "<= 10" }),
    ]);
    expect(md).toContain("| reconcile | `reconcile.speedup_vs_fetch_loop` | 84 |  |");
    expect(md).toContain("| sync_lag | `sync_lag.p50_ms` | 53 |  |");
    expect(md).toContain("| sync_lag | `sync_lag.extra_ms` | 7 | ≤ 10 ✅ |");
    expect(md).not.toContain("reconcile.repos");
    expect(md).toContain("[bench/results/README.md](bench/results/README.md)");
    expect(renderSummary([])).toContain("run `npm run bench`");
  });
});

describe("bench layout", () => {
  test("projects of 100 repositories, names the daemon accepts", () => {
    const ids = repoIds(250);
    expect(ids[0]).toEqual({ project: "P000", slug: "repo-000" });
    expect(ids[99]).toEqual({ project: "P000", slug: "repo-099" });
    expect(ids[100]).toEqual({ project: "P001", slug: "repo-000" });
    expect(ids[249]).toEqual({ project: "P002", slug: "repo-049" });
    expect(new Set(ids.map((i) => `${i.project}/${i.slug}`)).size).toBe(250);
  });
  test("spreadSample spreads over the whole list", () => {
    const xs = Array.from({ length: 1000 }, (_, i) => i);
    const s = spreadSample(xs, 100);
    expect(s).toHaveLength(100);
    expect(s[0]).toBe(0);
    expect(s[99]).toBe(990);
    expect(spreadSample([1, 2], 5)).toEqual([1, 2]);
  });
  test("bash times: the children's line", () => {
    expect(parseBashTimes("0m0.010s 0m0.020s\n0m1.500s 0m0.250s\n").childrenCpuMs).toBeCloseTo(1750);
    expect(() => parseBashTimes("garbage")).toThrow(/cannot parse/);
  });
});

describe("what the benchmarks feed the daemon", () => {
  test("the sync_lag webhook payload is a repo:refs_changed the daemon accepts, signed correctly", () => {
    const body = refsChangedPayload("P000", "repo-000", "refs/heads/main", "a".repeat(40), "b".repeat(40));
    const d = decideWebhook("repo:refs_changed", Buffer.from(body));
    expect(d).toEqual({ kind: "refs_changed", eventKey: "repo:refs_changed", repo: "P000/repo-000", changes: [{ refId: "refs/heads/main", fromHash: "a".repeat(40), toHash: "b".repeat(40), type: "UPDATE" }] });
    expect(verifySignature(["s3cret"], Buffer.from(body), signBody("s3cret", body))).toBe(true);
  });
  test("the daemon_rss properties list the whole catalog and listen where the bench asks", () => {
    const text = benchProperties({ user: "smgit", host: "127.0.0.1", port: 2222, hostKeyLine: "ssh-ed25519 AAAA" }, repoIds(3), 8080);
    expect(text).toContain("mirror.catalog=static\n");
    expect(text).toContain("mirror.catalog.repos=P000/repo-000,P000/repo-001,P000/repo-002\n");
    expect(text).toContain("mirror.upstream.sshUrl=ssh://smgit@127.0.0.1:2222\n");
    expect(text).toContain("mirror.serve.listen=127.0.0.1:8080\n");
  });
});

describe("scale bench: the steady-state scan ledger it starts the daemon with", () => {
  test("active repositories were compared within a round and changed recently; idle ones spread over their target; the daemon reads it back", () => {
    const { steadyLedger } = jest.requireActual<typeof import("./scaleBench")>("./scaleBench");
    const { ScanLedger } = jest.requireActual<typeof import("../sync/daemon/scanLedger")>("../sync/daemon/scanLedger");
    const p = { roundMs: 180_000, maxPerSecond: 12, idleBoundMs: 6 * 3_600_000, activeWindowMs: 86_400_000 };
    const keys = Array.from({ length: 1000 }, (_, i) => `P/r${i}`);
    const now = 10 * 86_400_000;
    const doc = JSON.parse(steadyLedger(keys, 10, now, p)) as { version: number; repos: Record<string, [number, number]> };
    const active = keys.slice(0, 10).map((k) => doc.repos[k]);
    const idle = keys.slice(10).map((k) => doc.repos[k]);
    expect(active.every(([s, c]) => now - s <= p.roundMs && c > 0 && now - c < p.activeWindowMs)).toBe(true);
    expect(idle.every(([s, c]) => c === 0 && now - s >= 0 && now - s <= p.roundMs)).toBe(true); // 1,000 fit one round's budget
    const l = new ScanLedger(p);
    expect(l.restore(JSON.stringify(doc), now)).toEqual({ restored: 1000 });
  });
});
