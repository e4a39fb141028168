import * as fs from "node:fs";
import { findLeaks } from "./leaks";
import { benchRunId, cleanupAll, spawnTracked, tempDir } from "./resources";

// The leak check must be able to fail: a process naming the run root and a temp dir are
// found while they exist and gone after cleanup.
test("leak check sees a live bench process and temp dir, and nothing after cleanup", async () => {
  const dir = tempDir("leakprobe");
  const script = `${dir}/sleeper.sh`;
  fs.writeFileSync(script, "#!/bin/sh\nsleep 60\n", { mode: 0o755 });
  const p = spawnTracked(script, []);
  await new Promise((r) => setTimeout(r, 100));
  const during = findLeaks(benchRunId());
  expect(during.processes.some((l) => l.includes("sleeper.sh"))).toBe(true);
  expect(during.dirs).toContain(dir);
  await cleanupAll();
  expect(p.child.exitCode !== null || p.child.signalCode !== null).toBe(true);
  const after = findLeaks(benchRunId());
  expect(after.processes.filter((l) => l.includes("sleeper.sh"))).toEqual([]);
  expect(after.dirs).not.toContain(dir);
});
