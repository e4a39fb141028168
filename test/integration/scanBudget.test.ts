/**
 * The reconcile's scan budget against a real OpenSSH primary: idle repositories are swept a
 * budget's share per round (oldest first), a push whose webhook was lost is still noticed within
 * one sweep (scanPlan.test.ts holds the rules on a simulated clock), and after a restart
 * the mirror says SYNCHRONIZED only once every repository on disk was compared again.
 */
import * as fs from "node:fs";
import { homePath } from "../../sync/homeLayout";
import { makeMirrorHome } from "../../testbed/mirrorHome";
import { startInProcessMirror } from "../../testbed/inProcessMirror";
import { startPrimary, Primary } from "../../testbed/primary";
import { workingClone, WorkingClone } from "../../testbed/repos";
import { RepoId, repoKey } from "../../sync/types";
import type { DaemonSettings } from "../../sync/daemon/settings";

jest.setTimeout(180_000);

const N = 12;
const ROUND_MS = 60_000;
// 0.1 scans/s x a 60 s round = 6 per round: half the catalog. Bursts of up to 64 pass at once,
// so the rounds below never wait for tokens; the budget shows in how many each round asks.
const budget: Partial<DaemonSettings> = {
  intervalMs: ROUND_MS,
  scanBudget: { maxPerSecond: 0.1, idleBoundMs: 10 * ROUND_MS, activeWindowMs: 1 },
};

describe("scan budget (mirror.scan.*)", () => {
  let primary: Primary;
  const repos: RepoId[] = [];
  const clones = new Map<string, WorkingClone>();

  beforeAll(async () => {
    primary = await startPrimary();
    for (let i = 0; i < N; i++) {
      const id = { project: "SCALE", slug: `r${i}` };
      await primary.createRepo(id.project, id.slug);
      const wc = await workingClone(primary.remote(id.project, id.slug));
      await wc.commit({ "README.md": `# ${i}\n` });
      await wc.pushAll();
      repos.push(id);
      clones.set(repoKey(id), wc);
    }
  });

  test("idle repositories are swept a share per round; a push whose webhook was lost is noticed within one sweep", async () => {
    const mh = await makeMirrorHome(primary);
    // activeWindowMs 1: everything is idle as soon as its initial sync is a millisecond old.
    const m = await startInProcessMirror(primary, repos, budget, mh);
    await m.daemon.idle();
    expect(m.board.snapshot().state).toBe("SYNCHRONIZED");
    // Past the 1 ms active window of the last initial sync.
    await new Promise((r) => setTimeout(r, 20));

    const round = async () => {
      await m.daemon.reconcile();
      return m.board.snapshot();
    };
    const r1 = await round();
    expect(r1.scan).toMatchObject({ idle: N, active: 0, asked: N / 2, overBudget: false });
    expect(r1.lastReconcile?.checked).toBe(N / 2);
    const r2 = await round();
    expect(r2.lastReconcile?.checked).toBe(N / 2);
    // The idle bound and budget, as the status document reports them.
    expect(r2.scan?.idleEveryMs).toBe(N / 0.1 * 1000);
    expect(r2.scan?.noticeIdleMs).toBeGreaterThan(r2.scan!.idleEveryMs);

    // A push with no webhook to a repository: within two rounds (one sweep of the idle set) it
    // is noticed and synced.
    const target = repos[3];
    const wc = clones.get(repoKey(target))!;
    await wc.commit({ "late.txt": "missed webhook\n" });
    await wc.pushAll();
    let noticed = 0;
    for (let i = 0; i < 2 && noticed === 0; i++) noticed += (await round()).lastReconcile?.changed ?? 0;
    expect(noticed).toBe(1);
    await m.daemon.idle();
    expect(m.board.repo(repoKey(target))?.state).toBe("synced");
    await m.stop();
  });

  /** A home a daemon without a budget synced and stopped (its scan ledger saved). */
  async function syncedAndStopped() {
    const mh = await makeMirrorHome(primary);
    const first = await startInProcessMirror(primary, repos, {}, mh);
    await first.daemon.idle();
    await first.stop();
    return mh;
  }

  test("a restart keeps the scan times: only the due share is asked, and SYNCHRONIZED after that round", async () => {
    const mh = await syncedAndStopped();
    expect(fs.existsSync(homePath(mh.home, "scanLedger"))).toBe(true);
    expect(fs.statSync(homePath(mh.home, "scanLedger")).mode & 0o777).toBe(0o600);

    const m = await startInProcessMirror(primary, repos, budget, mh);
    await m.daemon.idle();
    const s = m.board.snapshot();
    expect(s.lastReconcile?.unasked).toBeUndefined();
    expect(s.lastReconcile?.checked).toBeLessThanOrEqual(N / 2);
    expect(s.state).toBe("SYNCHRONIZED");
    await m.stop();
  });

  test("without the scan times (first start, or the file lost), SYNCHRONIZED only once every repository on disk was compared", async () => {
    const mh = await syncedAndStopped();
    fs.writeFileSync(homePath(mh.home, "scanLedger"), "{ torn");

    const m = await startInProcessMirror(primary, repos, budget, mh);
    await m.daemon.idle();
    // The start's round compared half (the budget's round); the other half is still unasked.
    const s1 = m.board.snapshot();
    expect(s1.lastReconcile?.unasked).toBe(N / 2);
    expect(s1.state).not.toBe("SYNCHRONIZED");
    await m.daemon.reconcile();
    await m.daemon.idle();
    const s2 = m.board.snapshot();
    expect(s2.lastReconcile?.unasked).toBeUndefined();
    expect(s2.state).toBe("SYNCHRONIZED");
    await m.stop();
  });
});
