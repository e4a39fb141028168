/**
 * Consistency you can check (issue 14, item 3), with real parts: a real sshd primary, the built
 * daemon as a subprocess, real git. `smart-mirror verify` finds exactly what was made
 * inconsistent on purpose in the mirror's bare copy, `--resync` repairs it (through the running
 * daemon, and without one), the repo-hashes API agrees with a hash computed from
 * `git for-each-ref` by shell tools, and the delayed-sync list shows a repository whose sync
 * keeps failing past the tolerance and drops it once it syncs.
 */
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { ensureBundle, getJson, runDaemon, StatusDoc, waitForState } from "../../testbed/daemonProcess";
import { makeMirrorHome, MirrorHome, writeMirrorProperties } from "../../testbed/mirrorHome";
import { Primary, startPrimary } from "../../testbed/primary";
import { workingClone, WorkingClone } from "../../testbed/repos";
import { freePort, TrackedProcess, waitFor } from "../../testbed/resources";
import { processesOn } from "../../testbed/processes";

jest.setTimeout(300_000);

const REPOS = [
  { project: "PROJ", slug: "a" },
  { project: "PROJ", slug: "b" },
  { project: "TEAM", slug: "c" },
];
/** In the catalog, not on the primary until the delayed-list test creates it: its sync keeps failing. */
const LATE = { project: "PROJ", slug: "late" };

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The CLI as an operator runs it (async: the test process keeps serving nothing, but must not block). */
function cli(args: string[]): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn("node", [ensureBundle(), ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

function jsonLines(text: string): Array<Record<string, unknown>> {
  return text.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The content hash as documented, computed by git and shell tools alone. */
function shellContentHash(bare: string): string {
  return execFileSync("sh", ["-c", `git -c safe.directory='*' --git-dir "$1" for-each-ref --format='%(objectname) %(refname)' | LC_ALL=C sort | sha256sum | cut -d' ' -f1`, "sh", bare], { encoding: "utf8" }).trim();
}

function git(bare: string, args: string[]): string {
  return execFileSync("git", ["-c", "safe.directory=*", "--git-dir", bare, ...args], { encoding: "utf8" }).trim();
}

let primary: Primary;
let mh: MirrorHome;
let port: number;
let daemon: TrackedProcess | undefined;
const clones: WorkingClone[] = [];
const mirrorBare = (p: string, s: string) => path.join(mh.home, "repos", p, `${s}.git`);

/** Make PROJ/a inconsistent on purpose: main rewritten to its parent, tag v1 deleted, an extra branch. */
function tamper(): { main: string; parent: string } {
  const bare = mirrorBare("PROJ", "a");
  const main = git(bare, ["rev-parse", "refs/heads/main"]);
  const parent = git(bare, ["rev-parse", "refs/heads/main~1"]);
  git(bare, ["update-ref", "refs/heads/main", parent]);
  git(bare, ["update-ref", "-d", "refs/tags/v1"]);
  git(bare, ["update-ref", "refs/heads/extra", parent]);
  return { main, parent };
}

beforeAll(async () => {
  ensureBundle();
  primary = await startPrimary({ label: "verify-primary" });
  for (const r of REPOS) {
    await primary.createRepo(r.project, r.slug);
    const wc = await workingClone(primary.remote(r.project, r.slug));
    await wc.commit({ "README.md": `${r.slug}\n` });
    await wc.commit({ "more.txt": `${r.slug} two\n` });
    await wc.tag("v1", { message: "one" });
    await wc.branch("dev");
    await wc.pushAll();
    clones.push(wc);
  }
  mh = await makeMirrorHome(primary);
  port = await freePort();
  writeMirrorProperties(mh, primary, {
    repos: [...REPOS, LATE],
    listen: `127.0.0.1:${port}`,
    extra: { "mirror.status.delayedSyncTolerance": "1s", "mirror.sync.retryMax": "2s" },
  });
  daemon = runDaemon(mh.home);
  await waitForState(port, ["DEGRADED", "SYNCHRONIZED"], 120_000).catch((e: Error) => {
    throw new Error(`${e.message}\ndaemon output:\n${daemon?.output()}`);
  });
});

afterAll(async () => {
  if (daemon && daemon.child.exitCode === null) {
    daemon.child.kill("SIGTERM");
    await daemon.exited;
  }
});

test("delayed-sync list: a repository whose sync keeps failing joins it past the tolerance (named on /status/detail only) and drops it once synced", async () => {
  type Detail = { delayedSync: { count: number; toleranceMs: number; repos: Array<{ repository: string; reason: string; since: string }> } };
  const detail = await waitFor(
    "PROJ/late in the delayed list",
    async () => {
      const d = (await getJson(port, "/status/detail")).body as Detail;
      return d.delayedSync.repos.some((r) => r.repository === "PROJ/late") ? d : undefined;
    },
    60_000,
    100,
  );
  expect(detail.delayedSync).toMatchObject({ count: 1, toleranceMs: 1000, repos: [{ repository: "PROJ/late", reason: "failing", since: expect.any(String) }] });
  const pub = await getJson(port, "/status");
  expect(pub.body).toMatchObject({ state: "DEGRADED", delayedSync: { count: 1, toleranceMs: 1000 } });
  expect(JSON.stringify(pub.body)).not.toContain("late");

  // The primary gets the repository, whole at once (made under another name, then renamed: a
  // retry must not clone it empty between its creation and the push, with no webhook to follow).
  await primary.createRepo(LATE.project, "late-staging");
  const wc = await workingClone(primary.remote(LATE.project, "late-staging"));
  await wc.commit({ "README.md": "late\n" });
  await wc.pushAll();
  fs.renameSync(primary.repoPath(LATE.project, "late-staging"), primary.repoPath(LATE.project, LATE.slug));
  await waitFor("PROJ/late synced and out of the list", async () => ((await getJson(port, "/status/detail")).body as Detail).delayedSync.count === 0, 60_000, 100);
  const after = (await waitForState(port, ["SYNCHRONIZED"], 60_000)) as StatusDoc & { delayedSync: { count: number } };
  expect(after.delayedSync.count).toBe(0);
});

test("verify: all equal -> exit 0; one repository tampered -> exactly its missing, extra and differing refs, exit 1", async () => {
  const clean = await cli(["verify", "--home", mh.home]);
  expect([clean.code, clean.stderr]).toEqual([0, ""]);
  expect(clean.stdout).toMatch(/verified 4 repositories in \d+ ms over 1 SSH connection\(s\) to the primary: 4 equal, 0 out of sync, 0 error\(s\)/);

  const { main, parent } = tamper();
  const r = await cli(["verify", "--home", mh.home, "--json"]);
  expect(r.code).toBe(1);
  const lines = jsonLines(r.stdout);
  const byRepo = new Map(lines.filter((l) => l.type === "repository").map((l) => [l.repository, l]));
  expect(byRepo.size).toBe(4);
  for (const k of ["PROJ/b", "TEAM/c", "PROJ/late"]) expect(byRepo.get(k)).toMatchObject({ status: "equal" });
  expect(byRepo.get("PROJ/a")).toEqual({
    type: "repository",
    phase: "verify",
    repository: "PROJ/a",
    status: "differs",
    absent: false,
    counts: { missing: 1, extra: 1, differing: 1 },
    missing: ["refs/tags/v1"],
    extra: ["refs/heads/extra"],
    differing: [{ ref: "refs/heads/main", primary: main, mirror: parent }],
  });
  expect(lines[lines.length - 1]).toMatchObject({ type: "summary", repositories: 4, equal: 3, differs: 1, errors: 0, sshConnections: 1 });

  const text = await cli(["verify", "--home", mh.home, "--repo", "PROJ/a", "--repo", "PROJ/b"]);
  expect(text.code).toBe(1);
  expect(text.stdout).toContain("DIFFERS  PROJ/a: 1 missing, 1 extra, 1 differing");
  expect(text.stdout).toContain("missing on mirror  refs/tags/v1");
  expect(text.stdout).toContain("extra on mirror    refs/heads/extra");
  expect(text.stdout).toContain(`differs            refs/heads/main  primary ${main.slice(0, 12)}  mirror ${parent.slice(0, 12)}`);
  expect(text.stdout).not.toContain("PROJ/b:");
  expect(text.stdout).toMatch(/verified 2 repositories .*: 1 equal, 1 out of sync/);
});

test("repo-hashes API: the content hash equals `for-each-ref | LC_ALL=C sort | sha256sum` of the copy served; internal only", async () => {
  type Page = { size: number; start: number; limit: number; isLastPage: boolean; nextPageStart?: number; values: Array<{ projectKey: string; slug: string; contentHash: string; metadataHash: string; defaultBranch: string }> };
  const all = (await getJson(port, "/rest/mirroring/latest/repo-hashes")).body as Page;
  expect(all).toMatchObject({ size: 4, start: 0, isLastPage: true });
  expect(all.values.map((v) => `${v.projectKey}/${v.slug}`)).toEqual(["PROJ/a", "PROJ/b", "PROJ/late", "TEAM/c"]);
  for (const v of all.values) {
    expect([v.slug, v.contentHash]).toEqual([v.slug, shellContentHash(mirrorBare(v.projectKey, v.slug))]);
    expect(v.defaultBranch).toBe("refs/heads/main");
    expect(v.metadataHash).toMatch(/^[0-9a-f]{64}$/);
  }
  // The tampered copy's hash differs from the primary's; the others equal it.
  const a = all.values.find((v) => v.slug === "a")!;
  expect(a.contentHash).not.toBe(shellContentHash(primary.repoPath("PROJ", "a")));
  expect(all.values.find((v) => v.slug === "b")!.contentHash).toBe(shellContentHash(primary.repoPath("PROJ", "b")));

  const paged = (await getJson(port, "/rest/mirroring/latest/repo-hashes?start=1&limit=2")).body as Page;
  expect(paged).toMatchObject({ size: 2, start: 1, limit: 2, isLastPage: false, nextPageStart: 3 });
  expect((await getJson(port, "/rest/mirroring/latest/repo-hashes/TEAM/c")).body).toMatchObject({ projectKey: "TEAM", slug: "c", contentHash: all.values[3].contentHash });
  expect((await getJson(port, "/rest/mirroring/latest/repo-hashes/NOPE/x")).status).toBe(404);
  expect((await getJson(port, "/rest/mirroring/latest/repo-hashes?limit=0")).status).toBe(400);
});

test("verify --resync with the daemon running: the daemon re-fetches PROJ/a (its fingerprint file said all was well), verify finds it equal", async () => {
  const r = await cli(["verify", "--home", mh.home, "--resync"]);
  expect([r.code, r.stderr]).toEqual([0, ""]);
  expect(r.stdout).toContain("DIFFERS  PROJ/a");
  expect(r.stdout).toContain("resync: OK       PROJ/a: now equal to the primary");
  expect(r.stdout).toContain("resync (by the running daemon): 1 repaired, 0 still out of sync, 0 failed");
  expect(shellContentHash(mirrorBare("PROJ", "a"))).toBe(shellContentHash(primary.repoPath("PROJ", "a")));
  expect((await cli(["verify", "--home", mh.home])).code).toBe(0);
});

test("verify --resync without a daemon: fetches itself under the home lock, leaves no lock and no ssh master behind", async () => {
  daemon!.child.kill("SIGTERM");
  expect(await daemon!.exited).toBe(0);
  tamper();
  const r = await cli(["verify", "--home", mh.home, "--resync", "--json"]);
  expect([r.code, r.stderr.trim()]).toEqual([0, "no daemon is running: fetching here (the home's lock is held meanwhile)"]);
  const lines = jsonLines(r.stdout);
  expect(lines.filter((l) => l.phase === "after-resync")).toEqual([{ type: "repository", phase: "after-resync", repository: "PROJ/a", status: "equal" }]);
  expect(lines[lines.length - 1]).toMatchObject({ type: "summary", differs: 1, resynced: { repaired: 1, stillDiffering: 0, failed: 0, via: "local" } });
  expect(fs.existsSync(path.join(mh.home, "run", "daemon.pid"))).toBe(false);
  expect(processesOn(mh.home, /ssh/)).toEqual([]);
  expect((await cli(["verify", "--home", mh.home])).code).toBe(0);
});

test("errors exit 2 with a message naming the fix: an unknown --repo, a primary that is down", async () => {
  const unknown = await cli(["verify", "--home", mh.home, "--repo", "NOPE/x"]);
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toContain("not a repository this mirror carries: NOPE/x");
  expect(unknown.stderr).toContain("PROJECT/slug");
  await primary.stop();
  try {
    const down = await cli(["verify", "--home", mh.home]);
    expect(down.code).toBe(2);
    expect(down.stderr).toMatch(/cannot reach the primary at .*\n\(check mirror\.upstream\.sshUrl/);
  } finally {
    await primary.restart();
  }
});
