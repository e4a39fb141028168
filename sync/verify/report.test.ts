import { diffRefs } from "../consistency/refDiff";
import { connectTarget, resyncPath } from "./daemonClient";
import { exitCode, RepoVerdict, Summary, TEXT_LIST_LIMIT, verdictJson, verdictText } from "./report";

const A = "a".repeat(40);
const B = "b".repeat(40);
const keep = () => true;
const base: Summary = { repositories: 3, equal: 3, differs: 0, errors: 0, durationMs: 5, sshConnections: 1 };

test.each<[string, Partial<Summary>, number]>([
  ["all equal", {}, 0],
  ["some differ", { equal: 2, differs: 1 }, 1],
  ["an error wins over differences", { equal: 1, differs: 1, errors: 1 }, 2],
  ["resync repaired all", { equal: 2, differs: 1, resynced: { repaired: 1, stillDiffering: 0, failed: 0, via: "daemon" } }, 0],
  ["resync left one", { equal: 1, differs: 2, resynced: { repaired: 1, stillDiffering: 1, failed: 0, via: "local" } }, 1],
  ["resync failed", { equal: 2, differs: 1, resynced: { repaired: 0, stillDiffering: 0, failed: 1, via: "daemon" } }, 2],
])("exit code: %s", (_n, over, code) => {
  expect(exitCode({ ...base, ...over })).toBe(code);
});

test("text: nothing for an equal repository; counts exact, names cut at the limit; an absent copy in one line", () => {
  expect(verdictText({ repository: "P/a", status: "equal" })).toEqual([]);
  const many = new Map(Array.from({ length: TEXT_LIST_LIMIT + 5 }, (_, i) => [`refs/heads/b${String(i).padStart(3, "0")}`, A] as [string, string]));
  const v: RepoVerdict = { repository: "P/a", status: "differs", diff: diffRefs({ refs: many }, { refs: new Map([["refs/heads/x", B]]) }, keep) };
  const lines = verdictText(v);
  expect(lines[0]).toBe(`DIFFERS  P/a: ${TEXT_LIST_LIMIT + 5} missing, 1 extra, 0 differing`);
  expect(lines.filter((l) => l.includes("missing on mirror"))).toHaveLength(TEXT_LIST_LIMIT);
  expect(lines).toContain("    ... and 5 more");
  expect(JSON.parse(verdictJson(v)).missing).toHaveLength(TEXT_LIST_LIMIT + 5);
  expect(verdictText({ repository: "P/n", status: "differs", diff: diffRefs({ refs: many }, undefined, keep) })).toEqual([`MISSING  P/n: not on the mirror (${TEXT_LIST_LIMIT + 5} refs on the primary)`]);
});

test("the daemon is reached where it listens; a wildcard address on loopback", () => {
  expect(connectTarget({ kind: "unix", path: "/run/sm/http.sock" })).toEqual({ socketPath: "/run/sm/http.sock" });
  expect(connectTarget({ kind: "tcp", host: "0.0.0.0", port: 7990 })).toEqual({ host: "127.0.0.1", port: 7990 });
  expect(connectTarget({ kind: "tcp", host: "::", port: 7990 })).toEqual({ host: "::1", port: 7990 });
  expect(resyncPath("~JDOE/my repo")).toBe("/rest/mirroring/latest/repos/~JDOE/my%20repo/synchronization");
});
