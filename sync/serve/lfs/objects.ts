/**
 * GET .../info/lfs/objects/<oid>: an object from the mirror's store, or fetched from the
 * primary on a miss.
 *
 * A miss: the primary's download action (remembered from the batch, else one batch request
 * with the credentials the mirror uses upstream) is fetched, and the bytes go through
 * ObjectCheck both into a temp file and to the client. The file is renamed into the store
 * only when SHA-256 and size check out; a corrupt object is never stored and the client's
 * transfer is cut before its last bytes (git-lfs reports the failure). Concurrent requests
 * for the same oid share that one download (single flight): they wait for it and are then
 * served from the store. A client that leaves does not stop a download others wait for.
 * mirror.lfs.prefetch runs the same fetch without a client (prefetch()).
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import type { ServerResponse } from "node:http";
import { finished } from "node:stream/promises";
import type { Credentials } from "../../auth/credentials";
import type { RepoId } from "../../types";
import type { ActionCache } from "./actionCache";
import { DISK_FULL } from "./batch";
import { LfsAdmitted, LfsDeps, lfsError } from "./lfsContext";
import type { FetchFailure } from "./lfsMetrics";
import { ObjectCheck, ObjectMismatch } from "./objectCheck";
import { handOff } from "../git/handOff";

/** A client that reads nothing of a stored object for this long is cut (as for packs). */
const STORE_IDLE_MS = 10 * 60_000;
import { UpstreamUnavailable } from "./upstreamLfs";

/** Why a fetch failed, with the status a waiting client gets (before any byte went out). */
export class FetchFailed extends Error {
  constructor(
    readonly reason: FetchFailure,
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export class ObjectFetches {
  private readonly flights = new Map<string, Promise<void>>();

  constructor(
    private readonly d: LfsDeps,
    private readonly cache: ActionCache,
  ) {}

  /**
   * Being fetched now: as good as stored for a batch answer (its GET joins the fetch). Also
   * covers the moment between a client's last byte and the rename into the store.
   */
  fetching(oid: string): boolean {
    return this.flights.has(oid);
  }

  async serve(res: ServerResponse, requestId: string, a: LfsAdmitted, oid: string, headOnly: boolean): Promise<void> {
    const d = this.d;
    if (d.store.size(oid) !== undefined) return this.fromStore(res, requestId, oid, headOnly, "hit");
    if (headOnly) return lfsError(res, requestId, 404, "the mirror does not have this object yet");
    const running = this.flights.get(oid);
    if (running) {
      const failed = await running.then(
        () => undefined,
        (e: unknown) => (e instanceof FetchFailed ? e : new FetchFailed("unavailable", 502, String(e))),
      );
      if (!failed || d.store.size(oid) !== undefined) return this.fromStore(res, requestId, oid, false, "shared");
      // The fetch joined failed. It may have run with other credentials (a prefetch, another
      // user): join a newer one, or lead one with this client's own - once, not in a loop.
      const next = this.flights.get(oid);
      if (next) return next.then(() => this.fromStore(res, requestId, oid, false, "shared"), () => lfsError(res, requestId, failed.status, failed.message));
      if (failed.reason === "corrupt" || failed.reason === "too_large" || failed.reason === "disk") return lfsError(res, requestId, failed.status, failed.message);
    }
    d.metrics.object("miss");
    const f = await this.lead(res, a.repo, d.upstreamCredentials(a.creds), oid, requestId);
    if (!f) return;
    if (!res.headersSent) lfsError(res, requestId, f.status, f.message);
    else res.destroy();
  }

  /**
   * Fetch into the store without a client (mirror.lfs.prefetch), with the mirror's own
   * upstream credentials; joins a fetch already running. Resolves with what happened.
   */
  async prefetch(repo: RepoId, oid: string): Promise<"stored" | "had" | FetchFailure> {
    if (this.d.store.size(oid) !== undefined) return "had";
    const running = this.flights.get(oid);
    if (running) return running.then(() => "stored" as const, (e: unknown) => (e instanceof FetchFailed ? e.reason : "unavailable"));
    const f = await this.lead(undefined, repo, this.d.serviceCredentials, oid, "prefetch");
    return f ? f.reason : "stored";
  }

  /** Run one fetch as the flight for `oid`; the failure (counted and logged), or undefined. */
  private async lead(res: ServerResponse | undefined, repo: RepoId, creds: Credentials | undefined, oid: string, requestId: string): Promise<FetchFailed | undefined> {
    const flight = this.fetch(res, repo, creds, oid);
    this.flights.set(oid, flight);
    try {
      await flight;
      return undefined;
    } catch (e) {
      const f = e instanceof FetchFailed ? e : new FetchFailed("unavailable", 502, (e as Error).message);
      this.d.metrics.failed(f.reason);
      this.d.log.warn({ requestId, repo: `${repo.project}/${repo.slug}`, oid, reason: f.reason, error: f.message }, "lfs object fetch failed");
      return f;
    } finally {
      this.flights.delete(oid);
    }
  }

  /**
   * From the store, by `cat` writing the file straight into the client's socket (handOff.ts,
   * as the pack cache sends finished answers): the kernel moves the bytes, not the event loop.
   */
  private async fromStore(res: ServerResponse, requestId: string, oid: string, headOnly: boolean, result: "hit" | "shared"): Promise<void> {
    let fd: number;
    try {
      fd = fs.openSync(this.d.store.pathOf(oid), "r");
    } catch {
      return lfsError(res, requestId, 404, "the object left the mirror's store; ask again");
    }
    try {
      const size = fs.fstatSync(fd).size;
      const headers = { "Content-Type": "application/octet-stream", "Content-Length": size, "Cache-Control": "private, max-age=0" };
      if (headOnly) return void res.writeHead(200, headers).end();
      this.d.metrics.object(result);
      const sent = await handOff({
        res,
        headers,
        idleTimeoutMs: STORE_IDLE_MS,
        blockingWriter: true,
        spawn: (stdout) => spawn("cat", [], { stdio: [fd, stdout, "pipe"], detached: true }),
      });
      if (sent.result === "ok") this.d.metrics.sent("store", size);
      else if (sent.result === "failed") this.d.log.error({ requestId, oid, code: sent.code, stderr: sent.stderr.trim() }, "lfs: sending a stored object failed");
    } finally {
      fs.closeSync(fd);
    }
  }

  /** The leader: fetch from the primary, stream to `res` (if any) while writing the store's temp file. */
  private async fetch(res: ServerResponse | undefined, repo: RepoId, creds: Credentials | undefined, oid: string): Promise<void> {
    const d = this.d;
    const started = process.hrtime.bigint();
    let answer = this.cache.get(creds, repo, "download", oid);
    try {
      if (!answer) {
        const r = await d.upstream.batch(repo, "download", [{ oid, size: 0 }], creds);
        if (!r.ok) throw new FetchFailed(r.status === 404 ? "not_found" : "unavailable", r.status === 404 ? 404 : 502, `the primary's LFS endpoint answered ${r.status}: ${r.message}`);
        answer = r.objects.find((o) => o.oid === oid);
      }
      const action = answer?.actions?.download;
      if (!answer || !action) throw new FetchFailed("not_found", 404, answer?.error?.message ?? "the object does not exist on the primary");
      const size = answer.size;
      if (!Number.isSafeInteger(size) || size < 0) throw new FetchFailed("unavailable", 502, "the primary gave no valid size for the object");
      if (d.maxObjectBytes > 0 && size > d.maxObjectBytes) throw new FetchFailed("too_large", 422, "object larger than this mirror's limit (mirror.lfs.maxObjectSizeMb)");
      if (!d.diskRoom(size)) throw new FetchFailed("disk", 507, DISK_FULL(d.primaryUrl));

      const up = await d.upstream.request("GET", action.href, { ...d.upstream.actionHeaders(action, creds), Accept: "application/octet-stream" });
      if (up.statusCode !== 200) {
        up.resume();
        throw new FetchFailed(up.statusCode === 404 ? "not_found" : "unavailable", up.statusCode === 404 ? 404 : 502, `the primary's LFS download answered ${up.statusCode}`);
      }
      const declared = up.headers["content-length"];
      if (declared !== undefined && Number(declared) !== size) {
        up.destroy();
        throw new FetchFailed("corrupt", 502, `the primary sent ${declared} bytes for an object of ${size}; not stored`);
      }
      const temp = d.store.tempFile();
      const check = new ObjectCheck(oid, size);
      const file = fs.createWriteStream(temp, { mode: 0o640 });
      const client = res && !res.destroyed ? res : undefined;
      if (client) {
        client.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": size, "Cache-Control": "private, max-age=0" });
        check.pipe(client);
      }
      check.pipe(file);
      up.pipe(check);
      up.on("error", (e) => check.destroy(e));
      try {
        await Promise.all([finished(check), finished(file)]);
        d.store.commit(temp, oid);
      } catch (e) {
        file.destroy();
        fs.rmSync(temp, { force: true });
        if (e instanceof ObjectMismatch) throw new FetchFailed("corrupt", 502, `${e.message}: refused, not stored`);
        throw new FetchFailed("aborted", 502, `the download from the primary broke off: ${(e as Error).message}`);
      }
      d.metrics.sent("upstream", size);
      d.metrics.fetched(Number(process.hrtime.bigint() - started) / 1e9);
    } catch (e) {
      if (e instanceof UpstreamUnavailable) throw new FetchFailed("unavailable", 502, `cannot reach the primary's LFS endpoint: ${e.message}`);
      throw e;
    }
  }
}
