import * as fs from "node:fs";
import { deadRuns, findLeaks, isClean, sweep } from "./leaks";
import { benchRoot } from "./resources";

/** One root per `jest` run, inherited by the workers through the environment. */
export default function globalSetup(): void {
  for (const id of deadRuns()) {
    const stale = findLeaks(id);
    if (!isClean(stale)) {
      console.warn(`[bench] sweeping leftovers of dead run ${id}: ${JSON.stringify(stale)}`);
      sweep(stale);
    }
    fs.rmSync(benchRoot(id), { recursive: true, force: true });
  }
  process.env.SMART_MIRROR_BENCH_RUN = String(process.pid);
  benchRoot();
}
