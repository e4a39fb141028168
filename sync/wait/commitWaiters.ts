/**
 * Long-poll waiters: "tell me when repository R holds object X, or after T". Woken by the
 * daemon's sync completions (notify), never by polling: each wake runs one `git cat-file
 * --batch-check` for all of the repository's waiters, and a repository's checks never overlap
 * (a sync that lands during a check schedules one more). A waiter is registered before its
 * first check, so a sync finishing in between cannot be missed.
 */
import { Counter, Gauge, Registry } from "prom-client";
import type { Log } from "../serve/http";
import { silentLog } from "../serve/http";
import type { RepoKey } from "../types";
import { objectsPresent } from "./objectsPresent";

export interface WaitResult {
  present: boolean;
  waitedMs: number;
}

export interface CommitWaitersOptions {
  /** Waiters held at once, over all repositories; more are refused ("busy"). */
  maxWaiters: number;
  /** Which of `names` the repository in `dir` holds (default: git cat-file). */
  check?: (dir: string, names: readonly string[]) => Promise<Set<string>>;
  registry?: Registry;
  log?: Log;
  now?: () => number;
}

interface Waiter {
  name: string;
  dir: string;
  started: number;
  done: (r: WaitResult) => void;
  timer: NodeJS.Timeout;
}

export class CommitWaiters {
  private readonly byRepo = new Map<RepoKey, Set<Waiter>>();
  private readonly checking = new Map<RepoKey, { again: boolean }>();
  private held = 0;
  private readonly check: (dir: string, names: readonly string[]) => Promise<Set<string>>;
  private readonly now: () => number;
  private readonly log: Log;
  private readonly answers: Counter;

  constructor(private readonly o: CommitWaitersOptions) {
    this.check = o.check ?? ((dir, names) => objectsPresent(dir, names));
    this.now = o.now ?? Date.now;
    this.log = o.log ?? silentLog;
    const registers = o.registry ? [o.registry] : [];
    this.answers = new Counter({ name: "smart_mirror_commit_waits_total", help: "Long-poll waits for a commit, by result (present, timeout, busy, gone)", labelNames: ["result"], registers });
    const held = () => this.held;
    new Gauge({ name: "smart_mirror_commit_waiters", help: "Long-poll waiters held now", registers, collect() { this.set(held()); } });
  }

  get waiting(): number {
    return this.held;
  }

  /**
   * Wait until `dir` (repository `key`) holds `name` or `timeoutMs` passed. "busy" when
   * maxWaiters are held. `signal` (the client went away) ends the wait early.
   */
  wait(key: RepoKey, dir: string, name: string, timeoutMs: number, signal?: AbortSignal): Promise<WaitResult> | "busy" {
    if (this.held >= this.o.maxWaiters) {
      this.answers.inc({ result: "busy" });
      return "busy";
    }
    return new Promise<WaitResult>((resolve) => {
      const started = this.now();
      const w: Waiter = {
        name,
        dir,
        started,
        timer: setTimeout(() => this.finish(key, w, false, "timeout"), timeoutMs),
        done: resolve,
      };
      w.timer.unref();
      let set = this.byRepo.get(key);
      if (!set) this.byRepo.set(key, (set = new Set()));
      set.add(w);
      this.held++;
      signal?.addEventListener("abort", () => this.finish(key, w, false, "gone"), { once: true });
      this.notify(key);
    });
  }

  /** Repository `key` may hold new objects (a sync finished): check its waiters. */
  notify(key: RepoKey): void {
    if (!this.byRepo.has(key)) return;
    const running = this.checking.get(key);
    if (running) {
      running.again = true;
      return;
    }
    const state = { again: false };
    this.checking.set(key, state);
    void this.runChecks(key, state).finally(() => this.checking.delete(key));
  }

  /** Answer every waiter now as not present (shutdown). */
  close(): void {
    for (const [key, set] of this.byRepo) for (const w of [...set]) this.finish(key, w, false, "gone");
  }

  private async runChecks(key: RepoKey, state: { again: boolean }): Promise<void> {
    do {
      state.again = false;
      const set = this.byRepo.get(key);
      if (!set || set.size === 0) return;
      const waiters = [...set];
      const names = [...new Set(waiters.map((w) => w.name))];
      let present: Set<string>;
      try {
        present = await this.check(waiters[0].dir, names);
      } catch (e) {
        // Leave the waiters waiting: the next sync (or their timeout) answers them.
        this.log.warn({ repo: key, error: (e as Error).message }, "cannot check objects for waiting clients");
        continue;
      }
      for (const w of waiters) if (present.has(w.name)) this.finish(key, w, true, "present");
    } while (state.again);
  }

  private finish(key: RepoKey, w: Waiter, present: boolean, result: "present" | "timeout" | "gone"): void {
    const set = this.byRepo.get(key);
    if (!set?.delete(w)) return; // answered already
    if (set.size === 0) this.byRepo.delete(key);
    this.held--;
    clearTimeout(w.timer);
    this.answers.inc({ result });
    w.done({ present, waitedMs: this.now() - w.started });
  }
}
