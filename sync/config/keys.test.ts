import { closestKey, isBitbucketOnlyKey, KEY_LIST, minimalExample, renderKeyTable, typeText, withHome } from "./keys";
import { parseProperties } from "./properties";
import { schemaKeys, validateEntries } from "./schema";

describe("the key table", () => {
  test("is exactly the set of keys the schema parses", () => {
    expect(schemaKeys().sort()).toEqual(KEY_LIST.map((k) => k.name).sort());
  });

  test("every key is documented: type, description, example; Bitbucket keys outside mirror.*, ours inside", () => {
    for (const k of KEY_LIST) {
      expect(typeText(k.value)).not.toBe("");
      expect(k.description.length).toBeGreaterThan(10);
      expect(k.example).not.toBe("");
      expect(k.name.startsWith("mirror.")).toBe(k.origin === "smart-mirror");
    }
  });

  test("every default and every example is itself valid", () => {
    // One file holding every key's example (conditional keys included), then one holding nothing
    // optional so the defaults apply: neither may produce a problem from the schema.
    const withExamples = KEY_LIST.map((k) => `${k.name}=${withHome(k.example, "/home/m")}`).join("\n") + "\nmirror.catalog=static\nmirror.serve.auth=tokens\n";
    const a = validateEntries(parseProperties(withExamples).entries, "/home/m");
    expect(a.problems).toEqual([]);
    const b = validateEntries(parseProperties(minimalExample("/home/m")).entries, "/home/m");
    expect(b.problems).toEqual([]);
    expect(b.config?.sync.reconcileIntervalMs).toBe(3 * 60_000);
    expect(b.config?.upstream.keyFile).toBe("/home/m/shared/ssh/id_ed25519");
    expect(b.config?.serve.listen).toEqual({ kind: "unix", path: "/home/m/run/smart-mirror.sock" });
  });

  test("renders one markdown row per key, pipes escaped", () => {
    const md = renderKeyTable();
    const rows = md.slice(0, md.indexOf("\n\n")).split("\n");
    expect(rows[0]).toBe("| Key | Type | Default | Required | Description | Example |");
    expect(rows).toHaveLength(KEY_LIST.length + 2);
    for (const k of KEY_LIST) expect(md).toContain(`| \`${k.name}\` |`);
    expect(md).toContain("rest \\| static");
    expect(md).toContain("when `mirror.catalog=static`");
    expect(md).toContain("&lt;sshUrl&gt;/&lt;PROJECT&gt;/&lt;slug&gt;.git");
    expect(md).toContain("Durations: a number of seconds");
    // Every row has exactly 6 cells (unescaped pipes are separators only).
    for (const r of rows.slice(2)) expect(r.replace(/\\\|/g, "").split("|")).toHaveLength(8);
  });
});

describe("closestKey", () => {
  test.each([
    ["mirror.sync.concurency", "mirror.sync.concurrency"],
    ["setup.baseurl", "setup.baseUrl"],
    ["setup.baseURL", "setup.baseUrl"],
    ["plugin.mirroring.upstream.uri", "plugin.mirroring.upstream.url"],
    ["mirror.concurrency", "mirror.sync.concurrency"],
    ["mirror.upstream.hostkey", "mirror.upstream.hostKeys"],
    ["mirror.serve.authCacheTTL", "mirror.serve.authCacheTtl"],
    ["mirror.purge.protection", "mirror.purge.protect"],
  ])("%s -> %s", (typo, want) => {
    expect(closestKey(typo)).toBe(want);
  });
  test.each(["jdbc.url", "totally.unrelated.thing", "x"])("%s -> nothing", (k) => {
    expect(closestKey(k)).toBeUndefined();
  });
  test("Bitbucket-only keys are recognised as such", () => {
    expect(isBitbucketOnlyKey("application.mode")).toBe(true);
    expect(isBitbucketOnlyKey("plugin.mirroring.upstream.type")).toBe(true);
    expect(isBitbucketOnlyKey("setup.license")).toBe(true);
    expect(isBitbucketOnlyKey("setup.baseurl")).toBe(false);
  });
});
