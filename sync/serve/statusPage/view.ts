/**
 * What the status page says, decided once from the public /status document: a pure function
 * from (document, now) to texts, numbers and a list of reasons. The server renders its first
 * paint from it (render.ts) and the browser script runs the very same function on every poll
 * of /status (client.ts ships its source), so the live page and the first paint never disagree
 * and the wording is unit-tested in one place.
 *
 * Because its source is sent to browsers as is (Function.prototype.toString), this function is
 * self-contained: no imports at run time, no module-level helpers, syntax every current browser
 * runs. Type imports are erased and fine.
 */
import type { PublicStatusDocument } from "../statusDocument";

export interface StatusView {
  /** The raw state (STARTING, INITIAL_SYNC, ...), for the badge's data-state (colour is extra). */
  state: string;
  /** The state in words: the badge's text, so the state is readable without colour. */
  stateLabel: string;
  /** One sentence on what the state means for a person about to clone. */
  summary: string;
  /** Why the mirror is degraded (or in error); empty when nothing is wrong. */
  reasons: string[];
  /** The initial sync's progress while it runs, else null. */
  progress: { value: number; max: number; text: string } | null;
  synced: string;
  ready: string;
  primary: string;
  lag: string;
  lastReconcile: string;
  failing: string;
  delayed: string;
  skipped: string;
  disk: string;
  /** The clone URL layout, e.g. https://mirror.example.com/scm/PROJECT/repo.git (null: the page's own origin). */
  cloneExample: string | null;
  title: string;
  version: string;
}

export function statusView(doc: PublicStatusDocument, now: number): StatusView {
  const plural = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`;
  const duration = (ms: number): string => {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 1) return "under a second";
    if (s < 90) return plural(s, "second", "seconds");
    const m = Math.round(s / 60);
    if (m < 90) return plural(m, "minute", "minutes");
    const h = Math.round(m / 60);
    if (h < 48) return plural(h, "hour", "hours");
    return plural(Math.round(h / 24), "day", "days");
  };
  const ago = (iso: string | null): string => {
    if (iso === null) return "never";
    const t = Date.parse(iso);
    return Number.isNaN(t) ? "unknown" : now - t < 1000 ? "just now" : `${duration(now - t)} ago`;
  };
  const labels: Record<string, string> = {
    STARTING: "Starting",
    INITIAL_SYNC: "Initial sync",
    SYNCHRONIZED: "Synchronized",
    DEGRADED: "Degraded",
    ERROR: "Error",
  };
  const repos = doc.repos ?? { new: 0, syncing: 0, synced: 0, failing: 0, delayed: 0 };
  const failing = repos.failing ?? 0;
  const delayed = doc.delayedSync ? doc.delayedSync.count : (repos.delayed ?? 0);

  const reasons: string[] = [];
  if (doc.primary && doc.primary.reachable === false) reasons.push("The primary cannot be reached: new changes are not coming in.");
  if (failing > 0) reasons.push(`${plural(failing, "repository is", "repositories are")} failing to sync.`);
  if (delayed > 0) reasons.push(`${plural(delayed, "repository is", "repositories are")} behind the primary for longer than the tolerance.`);
  if (doc.disk === "low") reasons.push("Disk space is low: syncs that need more space are paused.");
  if (doc.disk === "full") reasons.push("The disk is full: syncs that need more space are paused.");
  if (doc.lastReconcile && doc.lastReconcile.result !== "ok") reasons.push("The last comparison with the primary (reconcile) failed.");

  const summaries: Record<string, string> = {
    STARTING: "The mirror is starting; it serves nothing yet.",
    INITIAL_SYNC: "The mirror is copying repositories from the primary. Copies already on disk are served; they may be behind.",
    SYNCHRONIZED: "The mirror is up to date with the primary. Clone and fetch from here.",
    DEGRADED: "The mirror serves its last good copies, but some may be behind the primary.",
    ERROR: "The mirror has nothing to serve and is not getting better. Operators: see the log on the host.",
  };

  const init = doc.initialSync;
  const progress =
    doc.state === "INITIAL_SYNC" && init && !init.complete
      ? {
          value: init.done,
          max: Math.max(init.total, 1),
          text: `${init.done} of ${plural(init.total, "repository", "repositories")} copied` + (init.total > 0 ? ` (${Math.floor((100 * init.done) / init.total)}%)` : ""),
        }
      : null;

  const primary =
    !doc.primary || doc.primary.reachable === null ? "Not checked yet" : `${doc.primary.reachable ? "Reachable" : "Unreachable"} (checked ${ago(doc.primary.checkedAt)})`;
  const lagMs = doc.syncLagMaxMs ?? 0;
  const rec = doc.lastReconcile;
  const lastReconcile = !rec
    ? "None yet"
    : `${rec.result === "ok" ? "Succeeded" : "Failed"} ${ago(rec.at)}, took ${duration(rec.durationMs)}`;
  const diskLabels: Record<string, string> = { ok: "OK", low: "Low: syncs that grow the disk are paused", full: "Full: syncs that grow the disk are paused" };
  const base = doc.baseUrl ? doc.baseUrl.replace(/\/+$/, "") : null;

  return {
    state: doc.state,
    stateLabel: labels[doc.state] ?? doc.state,
    summary: summaries[doc.state] ?? "",
    reasons: doc.state === "SYNCHRONIZED" ? [] : reasons,
    progress,
    synced: `${doc.syncedRepos} of ${plural(doc.totalRepos, "repository", "repositories")}`,
    ready: doc.ready ? "Yes: clients are sent here" : "No: clients are sent to another mirror or the primary",
    primary,
    lag: lagMs <= 0 ? "None: up to date" : `${duration(lagMs)} behind the primary`,
    lastReconcile,
    failing: String(failing),
    delayed: String(delayed),
    skipped: String(doc.skippedRepos ?? 0),
    disk: doc.disk === null || doc.disk === undefined ? "Not measured yet" : (diskLabels[doc.disk] ?? doc.disk),
    cloneExample: base === null ? null : `${base}/scm/PROJECT/repo.git`,
    title: doc.displayName ? `${doc.displayName}: Git mirror status` : "Git mirror status",
    version: doc.version ?? "",
  };
}
