/**
 * A large first clone killed after it made progress continues from what it received: the
 * second attempt transfers less than a whole clone (counted in pack bytes, not time), and the
 * result is an exact, fsck-clean copy.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { ensureBundle, killTree9, runDaemon, waitForState } from "../../testbed/daemonProcess";
import { leftoverTempFiles } from "../../testbed/killCampaign";
import { makeMirrorHome, writeMirrorProperties } from "../../testbed/mirrorHome";
import { Primary, startPrimary } from "../../testbed/primary";
import { assertSameRefsAndObjects, workingClone } from "../../testbed/repos";
import { startLatencyProxy } from "../../testbed/latencyProxy";
import { freePort, tempDir, waitFor } from "../../testbed/resources";

jest.setTimeout(300_000);

function packBytes(dir: string): number {
  const packDir = path.join(dir, "objects", "pack");
  if (!fs.existsSync(packDir)) return 0;
  return fs.readdirSync(packDir).filter((f) => f.endsWith(".pack")).reduce((n, f) => n + fs.statSync(path.join(packDir, f)).size, 0);
}

/** The daemon's "synced" log line for a repository (pino JSON on stdout). */
function syncedLine(output: string, repo: string): Record<string, unknown> | undefined {
  for (const line of output.split("\n").reverse()) {
    if (!line.startsWith("{")) continue;
    try {
      const o = JSON.parse(line) as Record<string, unknown>;
      if (o.repo === repo && o.msg === "synced") return o;
    } catch {
      /* not JSON */
    }
  }
  return undefined;
}

describe("resumable first clone", () => {
  let primary: Primary;
  beforeAll(async () => {
    ensureBundle();
    primary = await startPrimary({ label: "resume-primary" });
    // 24 commits each replacing a 512 KiB incompressible file: ~12 MB of history, a small tip.
    await primary.createRepo("BIG", "hist");
    const wc = await workingClone(primary.remote("BIG", "hist"));
    for (let i = 0; i < 24; i++) await wc.commit({ "blob.bin": randomBytes(512 * 1024), "n.txt": `${i}\n` });
    await wc.tag("v1", { message: "one" });
    await wc.pushAll();
  });

  test("kill -9 after some steps: the restart keeps the incoming copy and transfers less than a full clone", async () => {
    // What one full clone transfers: the single pack of a fresh mirror clone.
    const full = path.join(tempDir("full-clone"), "full.git");
    execFileSync("git", ["clone", "--quiet", "--mirror", primary.sshUrl("BIG", "hist"), full], { env: { ...process.env, ...primary.gitEnv() } as NodeJS.ProcessEnv });
    const fullBytes = packBytes(full);

    const mh = await makeMirrorHome(primary);
    const port = await freePort();
    const repos = [{ project: "BIG", slug: "hist" }];
    // A slow link (about 8 MB/s: 128 KiB in flight per 16 ms), as a WAN is: the 1 MiB switch
    // to steps is seen long before the whole clone could arrive, on any machine.
    const link = await startLatencyProxy({ targetHost: primary.host, targetPort: primary.port, delayMs: 8, maxInFlightBytes: 128 * 1024 });
    const sshUrl = `ssh://${primary.user}@${link.host}:${link.port}`;
    writeMirrorProperties(mh, primary, { repos, listen: `127.0.0.1:${port}`, extra: { "mirror.sync.firstCloneStepMb": "1", "mirror.upstream.sshUrl": sshUrl } });
    const incoming = path.join(mh.home, "repos", ".incoming", "BIG.hist.git");

    const first = runDaemon(mh.home);
    // Progress: the tips and at least one --deepen step are in the incoming copy, still shallow.
    await waitFor("a first clone with kept steps", () => fs.existsSync(path.join(incoming, "shallow")) && packBytes(incoming) >= 2 * 1024 * 1024, 120_000, 5);
    killTree9(first.child.pid!);
    await first.exited;
    const kept = packBytes(incoming);
    expect(kept).toBeGreaterThan(0);
    expect(fs.existsSync(path.join(mh.home, "repos", "BIG", "hist.git"))).toBe(false);

    const second = runDaemon(mh.home);
    try {
      await waitForState(port, ["SYNCHRONIZED"], 120_000);
      const line = await waitFor("the synced log line", () => syncedLine(second.output(), "BIG/hist"), 10_000);
      // The second attempt started from the kept packs and fetched only the rest.
      console.log(`resume: full clone ${fullBytes} B; kept at the kill ${kept} B; second attempt ${String(line.bytes)} B (steps ${JSON.stringify(line.steps)})`);
      // At least what was measured at the kill (an index-pack of the killed step may still finish
      // its pack in the moments after the kill; that is kept too).
      expect(line.resumedFromBytes as number).toBeGreaterThanOrEqual(kept);
      expect(line.bytes as number).toBeLessThan(fullBytes);
      expect((line.bytes as number) + kept).toBeGreaterThanOrEqual(fullBytes * 0.9);
    } finally {
      second.child.kill("SIGTERM");
      await second.exited;
    }
    const dir = path.join(mh.home, "repos", "BIG", "hist.git");
    execFileSync("git", ["fsck", "--strict", "--no-dangling"], { cwd: dir, stdio: "pipe" });
    expect(fs.existsSync(path.join(dir, "shallow"))).toBe(false);
    await assertSameRefsAndObjects(primary.repoPath("BIG", "hist"), dir);
    expect(leftoverTempFiles(mh.home)).toEqual([]);
  });
});
