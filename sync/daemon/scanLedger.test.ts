import { ScanLedger } from "./scanLedger";
import type { RepoKey } from "../types";

const policy = { maxPerSecond: 10, roundMs: 60_000, idleBoundMs: 3_600_000, activeWindowMs: 86_400_000 };
const k = (s: string) => s as RepoKey;

describe("ScanLedger", () => {
  test("serialize -> restore keeps each repository's times; never-touched ones are left out", () => {
    const a = new ScanLedger(policy);
    a.scanned(k("P/a"), 1000);
    a.changed(k("P/a"), 900);
    a.plan([k("P/a"), k("P/b")], 2000);
    const text = a.serialize(2000);
    // P/b joined the ledger by the plan, never compared nor changed: not written.
    expect(JSON.parse(text).repos).toEqual({ "P/a": [1000, 900] });
    const b = new ScanLedger(policy);
    expect(b.restore(text, 5000)).toEqual({ restored: 1 });
    // Restored: P/a is not "never asked" (a start does not compare it again at once).
    const round = b.plan([k("P/a"), k("P/b")], 5000);
    expect(round.unasked + round.scan.length).toBeGreaterThanOrEqual(1);
    expect(round.scan).toContain(k("P/b"));
  });

  test.each([
    ["torn JSON", "{ torn", /not JSON/],
    ["another version", JSON.stringify({ version: 99, repos: {} }), /not a version 1 scan ledger/],
    ["no repos", JSON.stringify({ version: 1 }), /not a version 1 scan ledger/],
  ])("%s is refused with the reason (the caller compares everything again)", (_n, text, why) => {
    const r = new ScanLedger(policy).restore(text, 1000);
    expect("problem" in r && r.problem).toMatch(why);
  });

  test("entries with bad shapes or times in the future are dropped, the rest kept", () => {
    const l = new ScanLedger(policy);
    const text = JSON.stringify({ version: 1, repos: { "P/ok": [10, 5], "P/future": [99_999, 1], "P/bad": ["x", 1], "P/short": [1] } });
    expect(l.restore(text, 1000)).toEqual({ restored: 1 });
    expect(JSON.parse(l.serialize(1000)).repos).toEqual({ "P/ok": [10, 5] });
  });

  test("a repository new to the ledger takes its last sync as its last change (never compared yet)", () => {
    const l = new ScanLedger(policy);
    const round = l.plan([k("P/recent"), k("P/old")], 100_000_000, (key) => (key === k("P/recent") ? 100_000_000 - 1000 : 1));
    // Both are still to be compared (never asked since the start); their last change is kept.
    expect(round.scan.sort()).toEqual([k("P/old"), k("P/recent")]);
    expect(JSON.parse(l.serialize(100_000_000)).repos).toEqual({ "P/recent": [0, 100_000_000 - 1000], "P/old": [0, 1] });
  });

  test("retain drops what left the catalog", () => {
    const l = new ScanLedger(policy);
    l.scanned(k("P/a"), 10);
    l.scanned(k("P/b"), 10);
    l.retain((key) => key === k("P/a"));
    expect(Object.keys(JSON.parse(l.serialize(20)).repos)).toEqual(["P/a"]);
  });
});
