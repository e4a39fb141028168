import * as fs from "node:fs";
import * as path from "node:path";
import { loadConfig } from "./load";
import { MirrorConfig } from "./schema";
import { applySetup, decideSetup, inspectSetup, readSetupRecord, sameBaseUrl, SetupRecord, setupRecordPath } from "./setupRecord";
import { freshPublicKey, makeHome, minimalProperties, writeProperties } from "../../testbed/configHome";

const T0 = new Date("2025-01-02T03:04:05.000Z");
const T1 = new Date("2025-02-03T04:05:06.000Z");
const REC: SetupRecord = { baseUrl: "https://old.example.com", displayName: "Old", setupAt: T0.toISOString(), updatedAt: T0.toISOString() };

describe("decideSetup (pure)", () => {
  test.each([
    ["no record: create it", undefined, { baseUrl: "https://new.example.com", displayName: "New" }, "create"],
    ["same values: nothing to do", REC, { baseUrl: "https://old.example.com", displayName: "Old" }, "unchanged"],
    ["trailing slash / host case are the same URL", REC, { baseUrl: "https://OLD.example.com/", displayName: "Old" }, "unchanged"],
    ["display name changed: update with a warning", REC, { baseUrl: "https://old.example.com", displayName: "New" }, "update"],
    ["base URL changed: refuse", REC, { baseUrl: "https://new.example.com", displayName: "Old" }, "refuse"],
    ["both changed: refuse (the URL decides)", REC, { baseUrl: "https://new.example.com", displayName: "New" }, "refuse"],
    ["path changed: refuse", REC, { baseUrl: "https://old.example.com/mirror", displayName: "Old" }, "refuse"],
  ] as const)("%s", (_name, recorded, configured, action) => {
    expect(decideSetup(recorded, configured, T1, "/h/data/setup.json").action).toBe(action);
  });

  test("create records both values and the time", () => {
    expect(decideSetup(undefined, { baseUrl: "https://m.example.com", displayName: "M" }, T1, "/x")).toEqual({
      action: "create",
      record: { baseUrl: "https://m.example.com", displayName: "M", setupAt: T1.toISOString(), updatedAt: T1.toISOString() },
    });
  });

  test("refusal: what was recorded, what is configured, and both ways out", () => {
    const d = decideSetup(REC, { baseUrl: "https://new.example.com", displayName: "Old" }, T1, "/h/data/setup.json");
    if (d.action !== "refuse") throw new Error(d.action);
    expect(d.problem.key).toBe("setup.baseUrl");
    expect(d.problem.value).toBe("https://new.example.com");
    expect(d.problem.message).toContain("https://old.example.com");
    expect(d.problem.message).toContain("https://new.example.com");
    expect(d.problem.message).toContain(T0.toISOString());
    expect(d.problem.fix).toContain("setup.baseUrl=https://old.example.com");
    expect(d.problem.fix).toContain("delete /h/data/setup.json");
  });

  test("display name change keeps the first setup time", () => {
    const d = decideSetup(REC, { baseUrl: REC.baseUrl, displayName: "New" }, T1, "/x");
    if (d.action !== "update") throw new Error(d.action);
    expect(d.record).toEqual({ ...REC, displayName: "New", updatedAt: T1.toISOString() });
    expect(d.warning).toMatchObject({ key: "setup.displayName", message: expect.stringContaining('from "Old" to "New"') });
  });

  test.each([
    ["https://a.example.com", "https://a.example.com/", true],
    ["https://a.example.com", "https://A.EXAMPLE.COM", true],
    ["https://a.example.com", "https://a.example.com:443", true],
    ["https://a.example.com", "https://a.example.com:8443", false],
    ["https://a.example.com/x", "https://a.example.com/y", false],
  ])("sameBaseUrl(%s, %s) = %s", (a, b, same) => {
    expect(sameBaseUrl(a, b)).toBe(same);
  });
});

describe("applySetup / inspectSetup (on disk)", () => {
  let hostKey: string;
  beforeAll(() => {
    hostKey = freshPublicKey();
  });

  function configFor(home: string, changes: Record<string, string> = {}): MirrorConfig {
    writeProperties(home, minimalProperties(hostKey, changes));
    const r = loadConfig(home);
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    return r.config;
  }

  test("first start writes data/setup.json (0644, atomically: no temp file left); later starts keep it", () => {
    const home = makeHome();
    const config = configFor(home);
    const first = applySetup(config, T0);
    expect(first).toEqual({ ok: true, warnings: [], record: expect.objectContaining({ baseUrl: "https://mirror-syd.example.com", displayName: "Sydney mirror" }) });
    const file = setupRecordPath(home);
    expect(fs.statSync(file).mode & 0o777).toBe(0o644);
    expect(fs.readdirSync(path.dirname(file))).toEqual(["setup.json"]);
    expect(readSetupRecord(home).record).toEqual({ baseUrl: "https://mirror-syd.example.com", displayName: "Sydney mirror", setupAt: T0.toISOString(), updatedAt: T0.toISOString() });

    const before = fs.readFileSync(file, "utf8");
    expect(applySetup(config, T1)).toMatchObject({ ok: true, warnings: [] });
    expect(fs.readFileSync(file, "utf8")).toBe(before);
  });

  test("the mode is 0644 whatever the umask", () => {
    const home = makeHome();
    const old = process.umask(0o077);
    try {
      applySetup(configFor(home), T0);
    } finally {
      process.umask(old);
    }
    expect(fs.statSync(setupRecordPath(home)).mode & 0o777).toBe(0o644);
  });

  test("a changed base URL is refused and the record is left alone", () => {
    const home = makeHome();
    applySetup(configFor(home), T0);
    const before = fs.readFileSync(setupRecordPath(home), "utf8");
    const r = applySetup(configFor(home, { "setup.baseUrl": "https://elsewhere.example.com" }), T1);
    expect(r).toEqual({ ok: false, problems: [expect.objectContaining({ key: "setup.baseUrl", fix: expect.stringContaining("setup.baseUrl=https://mirror-syd.example.com") })] });
    expect(fs.readFileSync(setupRecordPath(home), "utf8")).toBe(before);
  });

  test("deleting the record deliberately re-runs setup with the new URL", () => {
    const home = makeHome();
    applySetup(configFor(home), T0);
    fs.rmSync(setupRecordPath(home));
    expect(applySetup(configFor(home, { "setup.baseUrl": "https://elsewhere.example.com" }), T1).ok).toBe(true);
    expect(readSetupRecord(home).record?.baseUrl).toBe("https://elsewhere.example.com");
  });

  test("a changed display name is applied with a warning", () => {
    const home = makeHome();
    applySetup(configFor(home), T0);
    const r = applySetup(configFor(home, { "setup.displayName": "Sydney mirror 2" }), T1);
    expect(r).toMatchObject({ ok: true, warnings: [expect.objectContaining({ key: "setup.displayName" })] });
    expect(readSetupRecord(home).record).toMatchObject({ displayName: "Sydney mirror 2", setupAt: T0.toISOString(), updatedAt: T1.toISOString() });
  });

  test("a damaged record is a problem, not silently replaced", () => {
    const home = makeHome();
    fs.mkdirSync(path.join(home, "data"));
    fs.writeFileSync(setupRecordPath(home), "{ not json");
    const r = applySetup(configFor(home), T0);
    expect(r).toEqual({ ok: false, problems: [expect.objectContaining({ key: "data/setup.json", fix: expect.stringContaining("delete it deliberately") })] });
    expect(fs.readFileSync(setupRecordPath(home), "utf8")).toBe("{ not json");
  });

  test("inspectSetup reports what run would decide, and writes nothing", () => {
    const home = makeHome();
    const config = configFor(home);
    expect(inspectSetup(config)).toMatchObject({ problems: [], summary: expect.stringContaining("none yet") });
    expect(fs.existsSync(path.join(home, "data"))).toBe(false);
    applySetup(config, T0);
    expect(inspectSetup(configFor(home, { "setup.baseUrl": "https://elsewhere.example.com" })).problems).toHaveLength(1);
    expect(inspectSetup(configFor(home, { "setup.displayName": "X" })).warnings).toHaveLength(1);
    expect(readSetupRecord(home).record?.displayName).toBe("Sydney mirror");
  });
});
