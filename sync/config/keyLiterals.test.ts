/**
 * A properties key is spelled once, in the key table (keys.ts); everywhere else code names it
 * through KEYS.<id>.name, so a misspelling fails to compile. This scans the product sources for
 * a string literal that is exactly a key name (a key used as a key: a lookup, a `case`, an
 * object key). Keys mentioned inside prose (messages, help texts) are documentation, not lookups.
 */
import * as path from "node:path";
import { productSources, Read, readSource, scanCode } from "../../testbed/sourceScan";
import { KEY_LIST } from "./keys";

const TABLE = path.join("sync", "config", "keys.ts");

/** "file:line: literal" for each string literal that is exactly a key name. */
export function keyLiterals(files: string[], read: Read = readSource): string[] {
  const names = new Set(KEY_LIST.map((k) => k.name));
  return scanCode(
    files,
    (line) => [...line.matchAll(/(["'`])((?:setup|plugin\.mirroring|mirror)\.[A-Za-z.]+)\1/g)].filter((m) => names.has(m[2])).map((m) => m[0]),
    read,
  );
}

test("no product module outside the key table spells a properties key as a string literal", () => {
  const files = ["sync", "components", "infra", "scripts"].flatMap(productSources).filter((f) => f !== TABLE);
  expect(files.length).toBeGreaterThan(50);
  expect(keyLiterals(files)).toEqual([]);
});

test("the scan finds a key literal (so it can fail)", () => {
  expect(keyLiterals(["x.ts"], () => 'const a = entries.get("mirror.serve.listen");\nconst b = `mirror.sync.concurrency`;\nconst ok = "mirror.concurrency";')).toEqual([
    'x.ts:1: "mirror.serve.listen"',
    "x.ts:2: `mirror.sync.concurrency`",
  ]);
});
