import * as fs from "node:fs";
import { findLeaks, isClean, sweep } from "./leaks";
import { benchRoot, benchRunId } from "./resources";

/**
 * The suite checks itself: any process, namespace or temp dir the bench left behind fails
 * the run (after being swept, so the machine is clean either way).
 */
export default async function globalTeardown(): Promise<void> {
  const id = benchRunId();
  // Process groups get SIGKILL on stop; give the kernel a moment to reap them.
  let report = findLeaks(id);
  for (let i = 0; i < 40 && !isClean(report); i++) {
    await new Promise((r) => setTimeout(r, 100));
    report = findLeaks(id);
  }
  if (!isClean(report)) {
    sweep(report);
    fs.rmSync(benchRoot(id), { recursive: true, force: true });
    throw new Error(`testbed leaked resources:\n${JSON.stringify(report, null, 2)}`);
  }
  fs.rmSync(benchRoot(id), { recursive: true, force: true });
}
