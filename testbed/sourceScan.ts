/**
 * Reading the product's own sources as text, for the tests that keep a fact in one place
 * (sync/config/keyLiterals.test.ts: properties keys; sync/homeLayoutLiterals.test.ts: paths
 * under the mirror home). Comment lines are skipped: they document a name, code spells it.
 */
import * as fs from "node:fs";
import * as path from "node:path";

export const REPO_ROOT = path.resolve(__dirname, "..");

/** The .ts files under `dir` (relative to the repository), tests left out. */
export function productSources(dir: string): string[] {
  return fs.readdirSync(path.join(REPO_ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === "node_modules" ? [] : productSources(rel);
    return /\.ts$/.test(e.name) && !/\.test\.ts$/.test(e.name) ? [rel] : [];
  });
}

export type Read = (file: string) => string;
export const readSource: Read = (f) => fs.readFileSync(path.join(REPO_ROOT, f), "utf8");

/** "file:line: what" for each finding `find` reports on a code line (comment lines skipped). */
export function scanCode(files: string[], find: (line: string) => string[], read: Read = readSource): string[] {
  const out: string[] = [];
  for (const f of files) {
    read(f)
      .split("\n")
      .forEach((line, i) => {
        if (/^\s*(\*|\/\/|\/\*)/.test(line)) return;
        for (const hit of find(line)) out.push(`${f}:${i + 1}: ${hit}`);
      });
  }
  return out;
}

/** The string literals of a line ('...', "...", `...`), with their quotes. */
export function stringLiterals(line: string): Array<{ text: string; quoted: string }> {
  return [...line.matchAll(/(["'`])((?:\\.|(?!\1)[^\\])*)\1/g)].map((m) => ({ text: m[2], quoted: m[0] }));
}
