/**
 * One git upload-pack run shared by identical requests: the CI-fleet case, where dozens of
 * runners clone or fetch the same commit of the same repository at the same moment. In the
 * spirit of GitLab's pack-objects cache and GitHub's, but one level up: what is cached is the
 * whole upload-pack response (ref advertisement, ls-refs listing, or negotiation answer plus
 * pack), so a cache hit starts no git process at all.
 *
 * Key (cacheKey): the repository directory, a token of its ref state (refStateToken: the
 * daemon's fingerprint of refs and HEAD, plus packed-refs' identity), the Git-Protocol
 * header, the endpoint, and the complete decoded request body (wants, haves, capabilities,
 * shallow/deepen, filter, done). Objects are immutable, so for equal wants and haves the only
 * other inputs of a response are the refs (v0 want checks, include-tag, deepen-not) and which
 * haves the repository has — both change only through a sync, which changes the token. The
 * token is read again when a generation ends: a sync that landed meanwhile keeps the result
 * out of the cache (its readers still get it, as they would from an uncached run).
 *
 * Sharing: the first request (a miss) starts git, which writes into a file of the cache
 * directory as fast as it can — no client's speed holds it back. Every request for that key,
 * the first included, streams from that file, following the writer while it grows ("shared"),
 * or reading a finished file ("hit"). When the last reader of an unfinished generation goes
 * away, git is killed and the file discarded. A generation that fails cuts its readers the way
 * an uncached failure would (500 before any byte, a cut connection after).
 *
 * Bounds: finished files total at most maxBytes (least recently used evicted first) and are
 * used for at most maxAgeMs. An answer expected to be larger than maxBytes (a clone of a
 * repository whose packs exceed it) does not go through the cache at all; one that turns out
 * larger anyway is served to its readers and never kept. So the disk holds at most maxBytes of
 * finished files plus, while they run, one file per running generation (at most one per
 * upload-pack slot), each no bigger than about maxBytes.
 * Eviction only unlinks: readers with the file open read on. The directory is emptied at start
 * (the index lives in memory). A disk error turns the cache off for a minute (requests then run
 * git directly) instead of failing clone after clone.
 */
import { ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import type { OutgoingHttpHeaders, ServerResponse } from "node:http";
import * as path from "node:path";
import type { Readable } from "node:stream";
import { Counter, Gauge, Registry } from "prom-client";
import type { PackCacheScope } from "../../config/schema";
import { FINGERPRINT_FILE } from "../../homeLayout";
import { Log, silentLog } from "../http";
import { classify, RequestSummary } from "./pktSniffer";
import { handOff } from "./handOff";
import { refusedByGit } from "./requestCheck";
import { killGroup } from "./uploadPack";

export const PACK_CACHE_METRIC_NAMES = {
  requests: "smart_mirror_git_pack_cache_requests_total",
  bytes: "smart_mirror_git_pack_cache_bytes",
  entries: "smart_mirror_git_pack_cache_entries",
} as const;

/**
 * hit: a finished response; shared: joined a running generation; miss: started one;
 * too_large: the answer could not be kept within the budget, so git serves it directly.
 */
export type CacheOutcome = "hit" | "shared" | "miss" | "too_large";

export interface PackCacheOptions {
  /** A directory for the cache alone: emptied at start. */
  dir: string;
  /** Disk budget of finished responses. */
  maxBytes: number;
  /** A finished response is served for this long. */
  maxAgeMs: number;
  /** False while the disk is low or full (the daemon's free-space guard): requests run git directly, none fails on a cache write. */
  diskOk?: () => boolean;
  registry?: Registry;
  log?: Log;
  now?: () => number;
}

export interface KeyParts {
  repoDir: string;
  /** refStateToken() of the repository. */
  state: string;
  /** "info-refs" | "upload-pack" */
  endpoint: string;
  /** The Git-Protocol value git runs with ("" for v0). */
  protocol: string;
  /** The decoded request body (empty for info/refs). */
  body: Buffer;
}

/** sha256 over every input of an upload-pack response, each length-prefixed. Pure. */
export function cacheKey(p: KeyParts): string {
  const h = createHash("sha256");
  for (const part of [p.repoDir, p.state, p.endpoint, p.protocol]) {
    const b = Buffer.from(part, "utf8");
    h.update(`${b.length}:`).update(b);
  }
  h.update(`${p.body.length}:`).update(p.body);
  return h.digest("hex");
}

/**
 * The ref state of a served repository: the daemon's fingerprint file (refs and HEAD, written
 * after every sync) and packed-refs' inode, size and mtime. Undefined when there is no
 * fingerprint (not a repository the daemon synced): such requests are not cached.
 */
export function refStateToken(repoDir: string): string | undefined {
  let fingerprint: string;
  try {
    fingerprint = fs.readFileSync(path.join(repoDir, FINGERPRINT_FILE), "utf8").trim();
  } catch {
    return undefined;
  }
  if (!fingerprint) return undefined;
  let packed = "-";
  try {
    const st = fs.statSync(path.join(repoDir, "packed-refs"), { bigint: true });
    packed = `${st.ino}:${st.size}:${st.mtimeNs}`;
  } catch {
    /* no packed-refs: loose refs only, all covered by the fingerprint */
  }
  return `${fingerprint} ${packed}`;
}

/** Why a generation produced no (complete) response, and what its readers are told. */
export interface Failure {
  kind: "busy" | "git" | "abandoned" | "cache";
  /** What git said (kind "git"). */
  code?: number | null;
  signal?: NodeJS.Signals | null;
  stderr?: string;
}

/** A started git run: stdout is the response body. */
export interface Generation {
  child: ChildProcess;
  /** Give back the upload-pack slot. */
  release(): void;
}

export interface ServeOptions {
  /** The 200 answer's headers, sent with the first byte. */
  headers: OutgoingHttpHeaders;
  /** Written before git's output (the v0 info/refs service line); part of the cached bytes. */
  prefix?: Buffer;
  /** Written to git's stdin, then closed (POST); undefined: stdin is not used. */
  input?: Buffer;
  idleTimeoutMs: number;
  /** Start git on a miss; undefined when no upload-pack slot came in time. */
  start(signal: AbortSignal): Promise<Generation | undefined>;
  /** Still the same ref state (read when a generation ends)? */
  stillValid(): boolean;
  /** Answer with an error while no header was sent. */
  fail(failure: Failure): void;
  /**
   * An upper estimate of the answer's size (a clone's is about the repository's packs). A miss
   * estimated above the budget bypasses the cache: it could never be kept, and its file would
   * only take disk beside the budget while it ran.
   */
  expectedBytes?: () => number;
}

export interface ServeResult {
  /** bypass: the cache could not take the request (disk error); nothing was sent, serve it directly. */
  result: "ok" | "failed" | "aborted" | "bypass";
  outcome: CacheOutcome;
  /** Bytes written to this response's body. */
  bytes: number;
  /** Set when the generation this request read from failed. */
  failure?: Failure;
}

const READ_CHUNK = 256 * 1024;
/**
 * A finished answer at least this big is sent by \`cat\` with the cache file as its stdin and
 * the client's socket as its stdout (handOff.ts), so the kernel copies it instead of the event
 * loop: relayed, a 20 MB clone cost the daemon ~60-80 ms CPU on one thread that also serves
 * every other request. Below it, the spawn (a few ms of the daemon's CPU) costs more than the
 * relay, and the connection stays open for the client's next request.
 */
export const HAND_OFF_MIN_BYTES = 1 << 20;
/** Writer-side queue above which git's stdout is paused. */
const WRITE_QUEUE_BYTES = 4 * 1024 * 1024;
const DISABLE_AFTER_ERROR_MS = 60_000;

class Entry {
  state: "generating" | "complete" | "failed" = "generating";
  failure?: Failure;
  /** Bytes written to the file and readable by other descriptors. */
  bytes = 0;
  readers = 0;
  readonly abort = new AbortController();
  generation?: Generation;
  private wakers: Array<() => void> = [];

  constructor(
    readonly key: string,
    readonly file: string,
    readonly created: number,
  ) {}

  /** Resolves at the next change (more bytes, finished, failed). */
  next(): Promise<void> {
    return new Promise((resolve) => this.wakers.push(resolve));
  }

  notify(): void {
    const w = this.wakers;
    this.wakers = [];
    for (const f of w) f();
  }
}

export class PackCache {
  private readonly generating = new Map<string, Entry>();
  /** Finished entries, least recently used first. */
  private readonly complete = new Map<string, Entry>();
  private completeBytes = 0;
  private disabledUntil = 0;
  private seq = 0;
  private readonly log: Log;
  private readonly now: () => number;
  private readonly requests?: Counter<"outcome">;

  constructor(private readonly o: PackCacheOptions) {
    this.log = o.log ?? silentLog;
    this.now = o.now ?? Date.now;
    fs.rmSync(o.dir, { recursive: true, force: true });
    fs.mkdirSync(o.dir, { recursive: true, mode: 0o700 });
    const registry = o.registry;
    if (registry) {
      this.requests =
        (registry.getSingleMetric(PACK_CACHE_METRIC_NAMES.requests) as Counter<"outcome"> | undefined) ??
        new Counter({ name: PACK_CACHE_METRIC_NAMES.requests, help: "Upload-pack responses through the pack cache: hit (finished response), shared (joined a running generation), miss (started one), too_large (bigger than the budget: served by git directly).", labelNames: ["outcome"], registers: [registry] });
      if (!registry.getSingleMetric(PACK_CACHE_METRIC_NAMES.bytes)) {
        const self = () => this;
        new Gauge({ name: PACK_CACHE_METRIC_NAMES.bytes, help: "Bytes of finished responses kept in the pack cache.", registers: [registry], collect() { this.set(self().completeBytes); } });
        new Gauge({ name: PACK_CACHE_METRIC_NAMES.entries, help: "Finished responses kept in the pack cache.", registers: [registry], collect() { this.set(self().complete.size); } });
      }
    }
  }

  /** False for a while after a disk error: callers run git directly meanwhile. */
  get enabled(): boolean {
    return this.now() >= this.disabledUntil && (this.o.diskOk?.() ?? true);
  }

  /** Finished responses kept, and their bytes. */
  get size(): { entries: number; bytes: number } {
    return { entries: this.complete.size, bytes: this.completeBytes };
  }

  /** Stream the response for `key` to `res`: from the cache, a running generation, or a new one. */
  async serve(key: string, res: ServerResponse, o: ServeOptions): Promise<ServeResult> {
    let outcome: CacheOutcome;
    let entry = this.findComplete(key);
    if (entry) outcome = "hit";
    else if ((entry = this.generating.get(key))) outcome = "shared";
    else if (o.expectedBytes && o.expectedBytes() > this.o.maxBytes) {
      this.requests?.inc({ outcome: "too_large" });
      return { result: "bypass", outcome: "too_large", bytes: 0 };
    } else {
      outcome = "miss";
      entry = this.begin(key, o);
      if (!entry) return { result: "bypass", outcome, bytes: 0 };
    }
    this.requests?.inc({ outcome });
    let fd: number;
    try {
      // Synchronously, while the entry's file surely exists: once open, eviction or a failed
      // generation's unlink cannot take the bytes away from this reader.
      fd = fs.openSync(entry.file, "r");
    } catch (e) {
      this.diskError(e);
      o.fail({ kind: "cache" });
      return { result: "failed", outcome, bytes: 0, failure: { kind: "cache" } };
    }
    entry.readers++;
    try {
      if (entry.state === "complete" && entry.bytes >= HAND_OFF_MIN_BYTES) return { outcome, ...(await this.sendFinished(entry, fd, res, o)) };
      return { outcome, ...(await this.pump(entry, fd, res, o)) };
    } finally {
      fs.close(fd, () => undefined);
      entry.readers--;
      if (entry.readers === 0 && entry.state === "generating") this.abandon(entry);
    }
  }

  /** Stop every running generation (daemon stop). */
  close(): void {
    for (const e of [...this.generating.values()]) this.abandon(e);
  }

  private findComplete(key: string): Entry | undefined {
    const e = this.complete.get(key);
    if (!e) return undefined;
    if (this.now() - e.created > this.o.maxAgeMs) {
      this.evict(e);
      return undefined;
    }
    // Most recently used last.
    this.complete.delete(key);
    this.complete.set(key, e);
    return e;
  }

  /** A new generation for key, or undefined when its file cannot be made. */
  private begin(key: string, o: ServeOptions): Entry | undefined {
    const file = path.join(this.o.dir, `${key}.${process.pid}.${++this.seq}`);
    let fh: number;
    try {
      fh = fs.openSync(file, "wx", 0o600);
    } catch (e) {
      this.diskError(e);
      return undefined;
    }
    const entry = new Entry(key, file, this.now());
    this.generating.set(key, entry);
    void this.generate(entry, fh, o);
    return entry;
  }

  /** Run git into the entry's file; settles the entry. */
  private async generate(entry: Entry, fh: number, o: ServeOptions): Promise<void> {
    let writeError: unknown;
    let enqueued = 0; // bytes handed to the writer so far: the next chunk's file position
    let pending = 0; // of which not yet written
    let writing: Promise<void> = Promise.resolve();
    const writeAt = (chunk: Buffer, position: number): Promise<void> =>
      new Promise((resolve) => {
        const write = (offset: number) =>
          fs.write(fh, chunk, offset, chunk.length - offset, position + offset, (err, n) => {
            if (err) {
              writeError ??= err;
              return resolve();
            }
            if (offset + n < chunk.length) return write(offset + n);
            // Written: readable through the readers' own descriptors from now on.
            entry.bytes = position + chunk.length;
            entry.notify();
            resolve();
          });
        write(0);
      });
    // Writes run one after the other, in order; git's pace is bounded by the disk, not by clients.
    const enqueue = (chunk: Buffer) => {
      const position = enqueued;
      enqueued += chunk.length;
      pending += chunk.length;
      writing = writing.then(() => (writeError ? undefined : writeAt(chunk, position))).then(() => void (pending -= chunk.length));
    };

    // The prefix goes out with git's first bytes, as in an uncached answer: a git that fails
    // before writing anything still gets its readers a proper error status.
    let prefixed = false;
    const withPrefix = () => {
      if (!prefixed && o.prefix && o.prefix.length > 0) enqueue(o.prefix);
      prefixed = true;
    };
    try {
      const gen = await o.start(entry.abort.signal);
      if (!gen) return this.finish(entry, entry.abort.signal.aborted ? { kind: "abandoned" } : { kind: "busy" });
      if (entry.abort.signal.aborted) {
        killGroup(gen.child);
        gen.release();
        return this.finish(entry, { kind: "abandoned" });
      }
      entry.generation = gen;
      const { child } = gen;
      let stderr = "";
      child.stderr?.on("data", (b: Buffer) => (stderr = (stderr + b.toString("utf8")).slice(-4096)));
      const stdout = child.stdout as Readable;
      stdout.on("data", (chunk: Buffer) => {
        withPrefix();
        enqueue(chunk);
        if (pending > WRITE_QUEUE_BYTES && !stdout.isPaused()) {
          stdout.pause();
          void writing.then(() => stdout.resume());
        }
      });
      if (child.stdin) {
        child.stdin.on("error", () => undefined); // git stopped reading: its exit code tells
        child.stdin.end(o.input ?? Buffer.alloc(0));
      }
      const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
        child.once("close", (code, signal) => resolve({ code, signal }));
        child.once("error", (e) => {
          stderr += String(e);
          resolve({ code: null, signal: null });
        });
      });
      gen.release();
      await writing;
      if (entry.abort.signal.aborted) return this.finish(entry, { kind: "abandoned" });
      if (writeError) {
        this.diskError(writeError);
        return this.finish(entry, { kind: "cache" });
      }
      if (exit.code !== 0) return this.finish(entry, { kind: "git", code: exit.code, signal: exit.signal, stderr });
      withPrefix();
      await writing;
      if (writeError) {
        this.diskError(writeError);
        return this.finish(entry, { kind: "cache" });
      }
      this.finish(entry, undefined, o.stillValid());
    } catch (e) {
      this.log.error({ error: String(e) }, "pack cache: generation failed");
      this.finish(entry, { kind: "cache" });
    } finally {
      fs.close(fh, () => undefined);
    }
  }

  /** Settle a generation: keep the file (success, same ref state, within budget) or drop it. */
  private finish(entry: Entry, failure: Failure | undefined, keep = false): void {
    if (entry.state !== "generating") return;
    if (this.generating.get(entry.key) === entry) this.generating.delete(entry.key);
    if (failure) {
      entry.state = "failed";
      entry.failure = failure;
      fs.rm(entry.file, { force: true }, () => undefined);
    } else {
      entry.state = "complete";
      if (keep && entry.bytes <= this.o.maxBytes) {
        const old = this.complete.get(entry.key);
        if (old) this.evict(old);
        this.complete.set(entry.key, entry);
        this.completeBytes += entry.bytes;
        this.shrink();
      } else {
        fs.rm(entry.file, { force: true }, () => undefined);
      }
    }
    entry.notify();
  }

  /** Nobody reads an unfinished generation any more: stop git and forget it. */
  private abandon(entry: Entry): void {
    entry.abort.abort();
    if (entry.generation) killGroup(entry.generation.child);
    this.finish(entry, { kind: "abandoned" });
  }

  private evict(e: Entry): void {
    if (this.complete.get(e.key) !== e) return;
    this.complete.delete(e.key);
    this.completeBytes -= e.bytes;
    fs.rm(e.file, { force: true }, () => undefined);
  }

  /** Drop expired entries, then the least recently used until within budget. */
  private shrink(): void {
    const now = this.now();
    for (const e of [...this.complete.values()]) if (now - e.created > this.o.maxAgeMs) this.evict(e);
    for (const e of [...this.complete.values()]) {
      if (this.completeBytes <= this.o.maxBytes) break;
      this.evict(e);
    }
  }

  private diskError(e: unknown): void {
    this.disabledUntil = this.now() + DISABLE_AFTER_ERROR_MS;
    this.log.warn({ error: String(e), dir: this.o.dir }, "pack cache: disk error; serving without the cache for a minute");
  }

  /** A finished answer, sent by \`cat\` from the open file straight into the client's socket. */
  private async sendFinished(entry: Entry, fd: number, res: ServerResponse, o: ServeOptions): Promise<Omit<ServeResult, "outcome">> {
    const sent = await handOff({
      res,
      headers: o.headers,
      idleTimeoutMs: o.idleTimeoutMs,
      blockingWriter: true,
      // The descriptor this reader opened: eviction may unlink the file meanwhile, never its bytes.
      spawn: (stdout) => spawn("cat", [], { stdio: [fd, stdout, "pipe"], detached: true }),
    });
    // Sent whole: the file's size (/proc's count can include a byte the fork wrote before exec).
    if (sent.result === "ok") return { result: "ok", bytes: entry.bytes };
    if (sent.result === "aborted") return { result: "aborted", bytes: Math.min(sent.bytes, entry.bytes) };
    this.log.error({ code: sent.code, signal: sent.signal, stderr: sent.stderr.trim() }, "pack cache: sending a finished answer failed");
    return { result: "failed", bytes: sent.bytes, failure: { kind: "cache" } };
  }

  /** Copy the entry's bytes to the response as they become readable. */
  private async pump(entry: Entry, fd: number, res: ServerResponse, o: ServeOptions): Promise<Omit<ServeResult, "outcome">> {
    let bytes = 0;
    let gone = false;
    let wakeGone!: () => void;
    const goneP = new Promise<void>((resolve) => (wakeGone = resolve));
    const onClose = () => {
      if (!res.writableFinished) {
        gone = true;
        wakeGone();
      }
    };
    res.on("close", onClose);
    res.setTimeout(o.idleTimeoutMs, () => res.destroy());
    if (res.destroyed) gone = true;
    const start = () => {
      if (!res.headersSent) res.writeHead(200, o.headers);
    };
    try {
      while (!gone) {
        if (bytes < entry.bytes) {
          const want = Math.min(READ_CHUNK, entry.bytes - bytes);
          const buf = Buffer.allocUnsafe(want);
          const n = await new Promise<number>((resolve, reject) => fs.read(fd, buf, 0, want, bytes, (err, got) => (err ? reject(err) : resolve(got))));
          if (n === 0) throw new Error(`pack cache: ${entry.file} ended at ${bytes} of ${entry.bytes} bytes`);
          if (gone) break;
          start();
          bytes += n;
          if (!res.write(n === want ? buf : buf.subarray(0, n))) await Promise.race([new Promise((r) => res.once("drain", r)), goneP]);
          continue;
        }
        if (entry.state === "complete") {
          start();
          res.end();
          return { result: "ok", bytes };
        }
        if (entry.state === "failed") {
          const failure = entry.failure as Failure;
          if (!res.headersSent) o.fail(failure);
          // git refused the request after writing its own ERR pkt-line: let the client read it.
          else if (failure.kind === "git" && refusedByGit(failure.code ?? null, failure.signal ?? null, failure.stderr ?? "")) res.end();
          else res.destroy();
          return { result: "failed", bytes, failure };
        }
        await Promise.race([entry.next(), goneP]);
      }
      return { result: "aborted", bytes };
    } catch (e) {
      this.log.error({ error: String(e) }, "pack cache: read failed");
      if (!res.headersSent) o.fail({ kind: "cache" });
      else res.destroy();
      return { result: "failed", bytes, failure: { kind: "cache" } };
    } finally {
      res.off("close", onClose);
    }
  }
}

/**
 * Does a POST go through the pack cache under `scope`? (Pure.) "clones": ls-refs and requests
 * without haves (clones, shallow and partial ones too), which fleets repeat byte for byte; an
 * incremental fetch carries its own haves and rarely repeats. "all": every request.
 */
export function cachesTheRequest(scope: PackCacheScope, summary: RequestSummary | undefined): boolean {
  if (scope === "all") return true;
  if (!summary) return false;
  const kind = classify(summary);
  return kind === "clone" || kind === "ls-refs";
}
