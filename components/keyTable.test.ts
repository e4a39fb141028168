/**
 * The one key table (sync/config/keys.ts) and the four things derived from it: the daemon's
 * schema, the properties renderer, the component's validator and the README reference. For
 * every key they agree with the table, and a key added to the table shows up in all four.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { argOfKey, KEY_ENTRIES, KEY_LIST, KeySpec, KEYS, renderKeyTable, typeText } from "../sync/config/keys";
import { parseValue, schemaKeys, schemaOf } from "../sync/config/schema";
import { Invalid } from "../sync/config/problems";
import type { SmartMirrorArgs } from "./args";
import { managedKeys, MANAGED_KEYS, propertyEntries, PropertiesValues } from "./render/properties";
import { validateSmartMirrorArgs } from "./validate";

const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMLSLrCXW0pcoxGUW/EJTuGUPZLoE6StPXIw8GBCqaZE";

function args(mirror: SmartMirrorArgs["mirror"]): SmartMirrorArgs {
  return {
    displayName: "Sydney mirror",
    domainName: "mirror-syd.example.com",
    primary: { url: "https://bitbucket.example.com", sshUrl: "ssh://git@bitbucket.example.com:7999", hostKeys: [HOST_KEY], repos: ["PROJ/app"] },
    host: { kind: "existing", address: "mirror.internal.example.com", privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----\n", hostKey: HOST_KEY },
    tls: { kind: "acme" },
    dns: { zoneId: "Z0123456789ABCDEFGHIJ" },
    mirror,
  };
}

const BASE: PropertiesValues = {
  displayName: "Sydney mirror",
  baseUrl: "https://mirror-syd.example.com",
  upstreamUrl: "https://bitbucket.example.com",
  sshUrl: "ssh://git@bitbucket.example.com:7999",
  hostKeys: [HOST_KEY],
};

describe("every key agrees with the table", () => {
  const readme = fs.readFileSync(path.resolve(__dirname, "..", "README.md"), "utf8");

  test.each(KEY_LIST.map((k) => [k.name, k] as const))("%s", (name, k) => {
    // schema: parses the key, and its example
    expect(schemaKeys()).toContain(name);
    const r = schemaOf(KEY_LIST, { home: "/h" }).safeParse({ [name]: k.example.replace(/^DIR/, "/h") });
    const issues = r.success ? [] : r.error.issues.filter((i) => i.path[0] === name);
    expect(issues).toEqual([]);
    // docs: one README row with the table's type and default
    const row = readme.split("\n").find((l) => l.startsWith(`| \`${name}\` |`));
    expect(row).toBeDefined();
    expect(row).toContain(typeText(k.value).replace(/\|/g, "\\|"));
    if (k.default !== undefined) expect(row).toContain(`\`${k.default}\``);
    // renderer and validator: a key with an argument is managed and named by that argument
    expect(MANAGED_KEYS.includes(name)).toBe(k.arg !== undefined);
    expect(argOfKey().get(name)).toBe(k.arg);
  });

  // The keys the component checks before rendering: one value past each end of the table's range.
  test.each([
    ["syncInterval", "1d1s", "9s"],
    ["concurrency", 65, 0],
  ] as const)("the validator checks %s with the table's range, under the argument's name", (id, tooBig, tooSmall) => {
    const spec = KEYS[id];
    for (const v of [tooBig, tooSmall]) {
      const problems = validateSmartMirrorArgs(args({ [spec.arg.split(".")[1]]: v }));
      const expected = parseValue(spec, String(v), spec.arg, { home: "/h" });
      expect(expected).toBeInstanceOf(Invalid);
      expect(problems).toEqual([expect.stringContaining(`${spec.arg}: ${(expected as Invalid).message}`)]);
    }
    expect(validateSmartMirrorArgs(args({ [spec.arg.split(".")[1]]: id === "concurrency" ? 64 : "1d" }))).toEqual([]);
  });

  test("auth modes and log levels are the table's values", () => {
    const problems = validateSmartMirrorArgs(args({ auth: "ldap" as never }));
    expect(problems.join("\n")).toContain(KEYS.auth.value.values.map((v) => `"${v}"`).slice(0, -1).join(", "));
    const bad = validateSmartMirrorArgs(args({ logLevel: "loud" as never }));
    expect(bad.join("\n")).toMatch(/mirror\.logLevel: must be one of fatal, error, warn, info, debug, trace, silent/);
  });
});

describe("a key added to the table", () => {
  const extra: KeySpec = {
    name: "mirror.sync.extraKnob",
    origin: "smart-mirror",
    value: { kind: "int", min: 2, max: 9 },
    default: "3",
    required: false,
    description: "A knob that exists only in this test.",
    example: "4",
    arg: "mirror.extraKnob",
  };
  const table = [...KEY_LIST, extra];

  test("is parsed by the schema, with its range", () => {
    expect(schemaKeys(table)).toContain(extra.name);
    const schema = schemaOf(table, { home: "/h" });
    const bad = schema.safeParse({ [extra.name]: "12" });
    expect(bad.success ? [] : bad.error.issues.filter((i) => i.path[0] === extra.name).map((i) => i.message)).toEqual(["must be from 2 to 9"]);
    const ok = schema.safeParse({});
    expect(ok.success ? [] : ok.error.issues.filter((i) => i.path[0] === extra.name)).toEqual([]);
  });

  test("is rendered from its argument and refused as an extra property", () => {
    expect(managedKeys(table)).toContain(extra.name);
    const entries = [...KEY_ENTRIES, ["extraKnob", extra] as [string, KeySpec]];
    const v = { ...BASE, extraKnob: 5 } as PropertiesValues;
    expect(propertyEntries(v, entries).get(extra.name)).toBe("5");
    expect(() => propertyEntries({ ...BASE, extra: { [extra.name]: "5" } }, entries)).toThrow(/extraKnob|set from the typed values/);
  });

  test("is named by its argument in the validator's messages", () => {
    expect(argOfKey(table).get(extra.name)).toBe("mirror.extraKnob");
  });

  test("appears in the README reference with its type and default", () => {
    expect(renderKeyTable(table)).toContain("| `mirror.sync.extraKnob` | integer (2..9) | `3` | no | A knob that exists only in this test. | `4` |");
  });
});
