import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { tempDir } from "../../testbed/resources";
import { acquireHomeLock, HomeLockedError } from "./lock";

// On a full disk the pid cannot be written: the lock is the empty pid file plus an empty marker
// whose name holds the pid (diskFull.test.ts fills a real file system).
test("an empty pid file with a live marker is held; with a dead one it is stale", async () => {
  const home = tempDir("lock");
  const run = path.join(home, "run");
  fs.mkdirSync(run);
  fs.writeFileSync(path.join(run, "daemon.pid"), "");
  const other = spawn("sleep", ["600"]);
  try {
    fs.writeFileSync(path.join(run, `daemon.pid.${other.pid}`), "");
    expect(() => acquireHomeLock(home)).toThrow(HomeLockedError);
    expect(() => acquireHomeLock(home)).toThrow(new RegExp(`pid ${other.pid}`));
  } finally {
    other.kill("SIGKILL");
    await new Promise((r) => other.once("close", r));
  }
  const release = acquireHomeLock(home);
  expect(fs.readFileSync(path.join(run, "daemon.pid"), "utf8")).toBe(`${process.pid}\n`);
  expect(fs.readdirSync(run)).toEqual(["daemon.pid"]);
  release();
  expect(fs.readdirSync(run)).toEqual([]);
});
