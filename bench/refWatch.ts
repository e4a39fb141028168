/**
 * "When did this ref become visible in that repository?" — answered without spawning git:
 * an inotify watch on the ref's directory (a ref update is a rename of NAME.lock onto NAME)
 * plus a 5 ms poll as a fallback, each reading the loose ref file or packed-refs.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { performance } from "node:perf_hooks";

/** The object a ref names in a bare repository (loose ref first, then packed-refs), or undefined. */
export function readRef(gitDir: string, ref: string): string | undefined {
  try {
    const v = fs.readFileSync(path.join(gitDir, ref), "utf8").trim();
    if (/^[0-9a-f]{40,64}$/.test(v)) return v;
  } catch {
    /* not loose */
  }
  try {
    for (const line of fs.readFileSync(path.join(gitDir, "packed-refs"), "utf8").split("\n")) {
      const sp = line.indexOf(" ");
      if (sp > 0 && line.slice(sp + 1) === ref && !line.startsWith("#") && !line.startsWith("^")) return line.slice(0, sp);
    }
  } catch {
    /* no packed refs */
  }
  return undefined;
}

/**
 * Resolves with performance.now() at the first moment `ref` in `gitDir` names `oid`.
 * Start it before causing the change; rejects after timeoutMs.
 */
export function whenRefIs(gitDir: string, ref: string, oid: string, timeoutMs = 30000, pollMs = 5): Promise<number> {
  return new Promise((resolve, reject) => {
    let watcher: fs.FSWatcher | undefined;
    let settled = false;
    const done = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearInterval(poll);
      clearTimeout(timer);
      watcher?.close();
      if (err) reject(err);
      else resolve(performance.now());
    };
    const check = () => {
      if (!settled && readRef(gitDir, ref) === oid) done();
    };
    const poll = setInterval(check, pollMs);
    const timer = setTimeout(() => done(new Error(`${ref} in ${gitDir} did not become ${oid} within ${timeoutMs} ms (it is ${readRef(gitDir, ref)})`)), timeoutMs);
    try {
      watcher = fs.watch(path.dirname(path.join(gitDir, ref)), check);
      watcher.on("error", () => undefined);
    } catch {
      /* the poll still works */
    }
    check();
  });
}
