/**
 * A path under the mirror home is spelled once, in sync/homeLayout.ts; everywhere else code
 * builds it with homePaths/homePath/repoDir. This scans the product sources (tests left out:
 * they pin the layout as users see it, independently) for a home path spelled by hand:
 *
 * - a layout directory joined to a home: `path.join(home, "shared", ...)`, `resolve(mh.home, "repos")`,
 *   `${home}/run/...`;
 * - a relative layout path written whole: "data/setup.json", "DIR/shared/ssh/id_ed25519",
 *   "unix:DIR/run/smart-mirror.sock";
 * - a name only the layout uses, alone: "bitbucket.properties", ".incoming", "daemon.pid", ...
 *   (not OpenSSH's own file names, id_ed25519 and known_hosts: other hosts' files, the test
 *   primary's for one, are called that too; nor bare words like "run" or "data").
 */
import * as path from "node:path";
import { productSources, Read, readSource, scanCode, stringLiterals } from "../testbed/sourceScan";
import { HOME_LAYOUT } from "./homeLayout";

const LAYOUT = path.join("sync", "homeLayout.ts");
const RELS: string[] = Object.values(HOME_LAYOUT).map((e) => e.rel);
const TOP = [...new Set(RELS.map((r) => r.split("/")[0]))];
const OPENSSH_NAMES = new Set(["id_ed25519", "known_hosts"]);
const OWN_NAMES = new Set(RELS.map((r) => path.posix.basename(r)).filter((n) => !TOP.includes(n) && !OPENSSH_NAMES.has(n) && /[.%-]/.test(n)));

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const top = TOP.map(esc).join("|");
// join(home, "shared"...), resolve(path.resolve(home), "data/..."), join(this.s.home, 'run', ...)
const JOINED = new RegExp(`\\b(?:join|resolve)\\(\\s*(?:path(?:\\.posix)?\\.resolve\\()?[\\w.]*home\\)?\\s*,\\s*(["'\`])(${top})(?:/|\\1)`, "i");
// `${home}/shared/...`
const TEMPLATED = new RegExp(`\\$\\{[\\w.]*home\\}/(${top})\\b`, "i");

function whole(literal: string): boolean {
  const rel = literal.replace(/^unix:/, "").replace(/^DIR\//, "");
  return RELS.some((r) => r.includes("/") && (rel === r || rel.startsWith(`${r}/`) || rel.startsWith(`${r}.`))) || (rel !== literal && RELS.includes(rel));
}

/** "file:line: what" for each home path spelled by hand. */
export function homePathLiterals(files: string[], read: Read = readSource): string[] {
  return scanCode(
    files,
    (line) => {
      const hits: string[] = [];
      const joined = JOINED.exec(line) ?? TEMPLATED.exec(line);
      if (joined) hits.push(joined[0]);
      for (const l of stringLiterals(line)) if (whole(l.text) || OWN_NAMES.has(l.text)) hits.push(l.quoted);
      return hits;
    },
    read,
  );
}

test("the names only the layout uses are its file names, not generic words", () => {
  expect([...OWN_NAMES].sort()).toEqual(expect.arrayContaining(["bitbucket.properties", ".incoming", ".trash", "daemon.pid", "setup.json", "smart-mirror.sock", "upstream-token"]));
  expect(OWN_NAMES.has("run") || OWN_NAMES.has("data") || OWN_NAMES.has("known_hosts")).toBe(false);
});

test("no product module outside the layout spells a path under the mirror home", () => {
  const files = ["sync", "components", "infra", "provider", "scripts", "testbed", "bench"].flatMap(productSources).filter((f) => f !== LAYOUT);
  expect(files.length).toBeGreaterThan(150);
  expect(homePathLiterals(files)).toEqual([]);
});

test("the scan finds a home path spelled by hand (so it can fail)", () => {
  const planted = [
    'const a = path.join(home, "shared", "bitbucket.properties");',
    'const b = path.join(path.resolve(home), "data", "setup.json");',
    "const c = path.posix.join(this.s.home, 'run');",
    "const d = `${mh.home}/repos/P/r.git`;",
    'const e = { default: "DIR/shared/ssh/id_ed25519", listen: "unix:DIR/run/smart-mirror.sock" };',
    'if (name === ".incoming") skip();',
    'const f = fs.readFileSync(path.join(dir, "daemon.pid"));',
    "// a comment may say shared/bitbucket.properties",
    'const ok1 = path.join(a.home, "git-shell-commands", name);',
    'req.on("data", onData); spawn("ssh", ["-F", "/dev/null"]); const outcome = "shared";',
    'const ok2 = path.join(dir, "known_hosts"); const ok3 = "run";',
  ].join("\n");
  expect(homePathLiterals(["x.ts"], () => planted)).toEqual([
    'x.ts:1: join(home, "shared"',
    'x.ts:1: "bitbucket.properties"',
    'x.ts:2: join(path.resolve(home), "data"',
    'x.ts:2: "setup.json"',
    "x.ts:3: join(this.s.home, 'run'",
    "x.ts:4: ${mh.home}/repos",
    'x.ts:5: "DIR/shared/ssh/id_ed25519"',
    'x.ts:5: "unix:DIR/run/smart-mirror.sock"',
    'x.ts:6: ".incoming"',
    'x.ts:7: "daemon.pid"',
  ]);
});
