/**
 * clonePhases (clientTrace.ts) on a trace git itself wrote, and cloneFetchRequest
 * (serveOnly.ts) answered by a real git upload-pack: the two new measurements of the clone
 * benchmark must read what git really does.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { git, isolatedGitEnv } from "../testbed/repos";
import { tempDir } from "../testbed/resources";
import { clonePhases } from "./clientTrace";
import { allRefObjects, answerProblem, cloneFetchRequest } from "./serveOnly";

async function smallRepo(): Promise<string> {
  const dir = path.join(tempDir("trace"), "src");
  await git(["init", "-q", "-b", "main", dir]);
  for (let i = 0; i < 3; i++) {
    fs.writeFileSync(path.join(dir, `f${i}`), `content ${i}\n`.repeat(100));
    await git(["-C", dir, "add", "."]);
    await git(["-C", dir, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", `c${i}`]);
  }
  await git(["-C", dir, "tag", "-a", "-m", "v1", "v1"]);
  return dir;
}

describe("clonePhases", () => {
  test("a real file:// clone: the transfer ends (upload-pack exits) before the clone does", async () => {
    const src = await smallRepo();
    const trace = path.join(path.dirname(src), "trace.json");
    await git(["clone", "--mirror", "--quiet", "--no-local", `file://${src}`, path.join(path.dirname(src), "dest.git")], { env: isolatedGitEnv({ GIT_TRACE2_EVENT: trace }) });
    const p = clonePhases(fs.readFileSync(trace, "utf8"));
    expect(p.receivedMs).toBeGreaterThan(0);
    expect(p.receivedMs).toBeLessThanOrEqual(p.totalMs);
  });

  test("https: the last exit of git-remote-https marks the last byte; other children do not count", () => {
    const ev = (sid: string, event: string, ms: number, argv?: string[]) => JSON.stringify({ event, sid, time: new Date(Date.UTC(2026, 0, 1, 0, 0, 0, ms)).toISOString(), ...(argv ? { argv } : {}) });
    const trace = [
      ev("top", "version", 0),
      ev("top", "start", 1, ["git", "clone", "--mirror", "https://m/x.git"]),
      ev("top/a", "start", 5, ["/usr/lib/git-core/git", "remote-https", "origin", "https://m/x.git"]),
      ev("top/a/b", "start", 7, ["/usr/lib/git-core/git-remote-https", "origin", "https://m/x.git"]),
      ev("top/c", "start", 100, ["/usr/lib/git-core/git", "index-pack", "--stdin"]),
      ev("top/a/b", "exit", 900),
      ev("top/a", "exit", 904),
      ev("top/c", "exit", 2900),
      ev("top", "exit", 2910),
    ].join("\n");
    expect(clonePhases(trace)).toEqual({ receivedMs: 904, totalMs: 2910 });
    expect(() => clonePhases(trace.split("\n").filter((l) => !l.includes("remote-https") && !l.includes('"top/a')).join("\n"))).toThrow(/no remote-https or upload-pack/);
    expect(() => clonePhases("")).toThrow(/empty trace/);
  });
});

describe("cloneFetchRequest", () => {
  test("git upload-pack (protocol v2, stateless RPC) answers it with the whole repository's pack", async () => {
    const src = await smallRepo();
    const wants = await allRefObjects(path.join(src, ".git"));
    expect(wants).toHaveLength(2); // main and the annotated tag
    const r = spawnSync("git", ["upload-pack", "--stateless-rpc", path.join(src, ".git")], { input: cloneFetchRequest(wants), env: { ...isolatedGitEnv(), GIT_PROTOCOL: "version=2" } });
    expect(r.status).toBe(0);
    const out = r.stdout as Buffer;
    expect(out.subarray(0, 13).toString("latin1")).toBe("000dpackfile\n");
    // The pack: sideband 1 after the section header, PACK with 3 commits, 3 trees, 3 blobs and the tag.
    const at = out.indexOf("PACK");
    expect(at).toBeGreaterThan(0);
    expect(out.readUInt32BE(at + 8)).toBe(10);
    expect(() => cloneFetchRequest([])).toThrow(/nothing to want/);
  });
});

describe("answerProblem", () => {
  test("only a 200 of at least the pack's size from a curl that exited 0 passes", () => {
    expect(answerProblem(0, "200 5000", 4000)).toBeUndefined();
    expect(answerProblem("0", "200 4000\n", 4000)).toBeUndefined();
    expect(answerProblem(0, "200 120", 4000)).toBe("curl exit 0, HTTP 200, 120 bytes (want >= 4000)");
    expect(answerProblem(0, "503 80", 4000)).toMatch(/HTTP 503/);
    expect(answerProblem(56, "200 4500", 4000)).toMatch(/curl exit 56/);
  });
});
