/**
 * A properties key is spelled once, in the key table (keys.ts); everywhere else code names it
 * through KEYS.<id>.name, so a misspelling fails to compile. This scans the product sources for
 * a string literal that is exactly a key name (a key used as a key: a lookup, a `case`, an
 * object key). Keys mentioned inside prose (messages, help texts) are documentation, not lookups.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { KEY_LIST } from "./keys";

const ROOT = path.resolve(__dirname, "..", "..");
const TABLE = path.join("sync", "config", "keys.ts");

function sources(dir: string): string[] {
  return fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === "node_modules" ? [] : sources(rel);
    return /\.ts$/.test(e.name) && !/\.test\.ts$/.test(e.name) ? [rel] : [];
  });
}

/** "file:line: literal" for each string literal that is exactly a key name. */
export function keyLiterals(files: string[], read: (f: string) => string = (f) => fs.readFileSync(path.join(ROOT, f), "utf8")): string[] {
  const names = new Set(KEY_LIST.map((k) => k.name));
  const out: string[] = [];
  for (const f of files) {
    read(f)
      .split("\n")
      .forEach((line, i) => {
        if (/^\s*(\*|\/\/|\/\*)/.test(line)) return; // comments document keys; code looks them up
        for (const m of line.matchAll(/(["'`])((?:setup|plugin\.mirroring|mirror)\.[A-Za-z.]+)\1/g)) {
          if (names.has(m[2])) out.push(`${f}:${i + 1}: ${m[0]}`);
        }
      });
  }
  return out;
}

test("no product module outside the key table spells a properties key as a string literal", () => {
  const files = ["sync", "components", "infra", "scripts"].flatMap(sources).filter((f) => f !== TABLE);
  expect(files.length).toBeGreaterThan(50);
  expect(keyLiterals(files)).toEqual([]);
});

test("the scan finds a key literal (so it can fail)", () => {
  expect(keyLiterals(["x.ts"], () => 'const a = entries.get("mirror.serve.listen");\nconst b = `mirror.sync.concurrency`;\nconst ok = "mirror.concurrency";')).toEqual([
    'x.ts:1: "mirror.serve.listen"',
    "x.ts:2: `mirror.sync.concurrency`",
  ]);
});
