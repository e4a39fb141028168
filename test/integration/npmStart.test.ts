/**
 * `npm start` (scripts/start.ts, run by tsx as npm does) stops cleanly whatever the terminal
 * does: Ctrl-C under a pipe (SIGINT to the whole pipeline; the pipe's reader dies first),
 * SIGHUP (terminal closed), SIGTERM; and a next start stops what a killed earlier run left.
 * "Cleanly" means: no daemon, nginx or demo sshd of that run is left, checked in /proc.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { leftoverProcesses } from "../../scripts/start/leftovers";
import { listProcesses, ProcInfo } from "../../testbed/processes";
import { ensureBundle } from "../../testbed/daemonProcess";
import { freePort, onCleanup, tempDir, waitFor } from "../../testbed/resources";
import { createHash } from "node:crypto";

jest.setTimeout(300_000);

const REPO = path.resolve(__dirname, "../..");
const TSX = path.join(REPO, "node_modules/.bin/tsx");

interface StartRun {
  pgid: number;
  root: string;
  output(): string;
  exited: Promise<number | null>;
}

/** The demo primary's dir for a root (scripts/start.ts: a bench run id fixed per root). */
function demoRoot(root: string): string {
  return path.join("/tmp/smart-mirror-bench", `run-local-${createHash("sha256").update(root).digest("hex").slice(0, 8)}`);
}

/** The processes of a run: what must be gone after it stopped. */
function runProcesses(root: string): ProcInfo[] {
  return leftoverProcesses(listProcesses(), [root, demoRoot(root)], new Set([process.pid]));
}

/** `tsx scripts/start.ts` in its own process group, as a terminal's foreground job is; optionally `| cat`. */
function startRun(root: string, port: number, piped: boolean): StartRun {
  const cmd = `${TSX} scripts/start.ts --port ${port}${piped ? " | cat" : ""}`;
  const child = spawn("sh", ["-c", cmd], { cwd: REPO, detached: true, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, SMART_MIRROR_LOCAL_ROOT: root } });
  let out = "";
  child.stdout!.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr!.on("data", (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  onCleanup(async () => {
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      /* gone */
    }
    for (const p of runProcesses(root)) {
      try {
        process.kill(p.pid, "SIGKILL");
      } catch {
        /* gone */
      }
    }
  });
  return { pgid: child.pid!, root, output: () => out, exited };
}

async function running(run: StartRun): Promise<ProcInfo[]> {
  await waitFor(
    "npm start to say the mirror is running",
    () => {
      if (/npm start:|apply failed/.test(run.output())) throw new Error(run.output());
      return run.output().includes("smart-mirror is running");
    },
    180_000,
    100,
  );
  const procs = runProcesses(run.root);
  const has = (re: RegExp) => procs.some((p) => re.test(p.cmdline));
  // The three kinds of process a run starts, so "none left" below is not vacuous.
  expect([has(/smart-mirror\.js run/), has(/nginx/), has(/sshd/)]).toEqual([true, true, true]);
  return procs;
}

async function noneLeft(run: StartRun, what: string): Promise<void> {
  await waitFor(`no process of the run left after ${what}`, () => runProcesses(run.root).length === 0, 60_000, 100).catch((e: Error) => {
    throw new Error(`${e.message}\nleft: ${runProcesses(run.root).map((p) => `${p.pid} ${p.cmdline}`).join("\n")}\noutput:\n${run.output()}`);
  });
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("npm start stops cleanly", () => {
  beforeAll(() => ensureBundle());

  test.each<[string, boolean, NodeJS.Signals]>([
    ["Ctrl-C under `| cat` (SIGINT to the whole pipeline; the reader dies first)", true, "SIGINT"],
    ["SIGHUP to the job (terminal closed)", false, "SIGHUP"],
    ["SIGTERM to the job", true, "SIGTERM"],
  ])("%s: no daemon, nginx or sshd of the run is left", async (_name, piped, sig) => {
    const root = path.join(tempDir("npm-start"), "local");
    const run = startRun(root, await freePort(), piped);
    await running(run);
    process.kill(-run.pgid, sig);
    await noneLeft(run, sig);
    await waitFor("the start job to exit", () => !groupAlive(run.pgid), 60_000, 100);
    expect(fs.existsSync(path.join(root, "run/smart-mirror-exec/nginx.service.pid"))).toBe(false);
  });

  test("a next start stops what a killed (kill -9) earlier run left, then runs", async () => {
    const root = path.join(tempDir("npm-start"), "local");
    const first = startRun(root, await freePort(), false);
    const before = await running(first);
    process.kill(-first.pgid, "SIGKILL"); // the start script dies; its services live on
    await first.exited;
    await waitFor("the start job to be gone", () => !groupAlive(first.pgid), 30_000, 50);
    const alive = new Set(listProcesses().map((p) => p.pid));
    // The services run in sessions of their own: they outlive the killed start script.
    const survivors = before.filter((p) => alive.has(p.pid)).map((p) => p.cmdline);
    expect([survivors.some((c) => /smart-mirror\.js run/.test(c)), survivors.some((c) => /nginx/.test(c))]).toEqual([true, true]);

    const second = startRun(root, await freePort(), true);
    const now = await running(second);
    const stillThere = before.filter((p) => alive.has(p.pid) && now.some((q) => q.pid === p.pid));
    expect(stillThere).toEqual([]);
    process.kill(-second.pgid, "SIGINT");
    await noneLeft(second, "SIGINT");
  });
});
