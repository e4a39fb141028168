/**
 * Git smart HTTP under /scm/: clones and fetches (protocol v0, v1 and v2, shallow, partial)
 * served by `git upload-pack` from the mirror's bare repositories; pushes refused with the
 * primary's URL.
 *
 * Order of decisions, each answered before any later work is done (steps 1-6: admission.ts;
 * 7-8 and the pack cache: execution.ts; what each request came to is counted and logged in
 * one place, record.ts):
 *   1. the path and method (gitPath.ts)            400/403/404/405, never a file from disk
 *   2. push (receive-pack)                         403 naming the primary's push URL, for any
 *                                                  well-formed name: says nothing about what exists
 *   3. credentials (unless auth=anonymous)         401 + WWW-Authenticate so git asks for them
 *   4. access to the repository                    404 when the primary says no, as for a
 *                                                  repository the mirror does not have (no leak);
 *                                                  503 when the primary cannot be asked
 *   5. the repository is served (catalog + disk)   404
 *   6. request body checks (POST)                  415 content type/encoding, 413 size; a body
 *                                                  up to MAX_WHOLE_RAW_BODY is read and decoded
 *                                                  whole here (400 not gzip, 413 too large)
 *   7. a slot (bounded concurrent upload-packs)    503 + Retry-After when none comes in time
 *   8. git upload-pack: for a POST that wants objects (read whole), with the client's socket
 *      as git's stdout (handOff.ts: the pack never passes through the daemon); for info/refs,
 *      ls-refs and bodies too big to hold, relayed through the daemon (exchange.ts)
 * With the pack cache on (packCache.ts, the default), a repository the daemon synced (it has a
 * ref-state fingerprint) and a request in the cache's scope (cachesTheRequest: by default ref
 * advertisements, ls-refs and clones), steps 7-8 become: key the request (the whole body is
 * part of the key), and stream the answer from the cache, from a run another identical
 * request started, or from a new run (which takes a slot).
 * Between 6 and 7, with a link to the primary (freshness.ts): an advertisement waits (bounded)
 * until the mirror's refs are the primary's, a request wanting objects the mirror lacks waits
 * for an on-demand fetch of them, or is answered with git's error form saying why it cannot.
 * Step 4 runs before 5 so that with credentials, too, "not on the mirror" and "not yours" look
 * the same: the primary is asked about the name as typed when the mirror does not have it.
 */
import type { Handler } from "../http";
import { clientAddress } from "../clientAddress";
import { admit, AdmissionDeps } from "./admission";
import { execute, ExecutionDeps } from "./execution";
import type { Freshness } from "./freshness";
import { GitRecord, RecordDeps } from "./record";

export type GitHandlerDeps = AdmissionDeps &
  ExecutionDeps &
  RecordDeps & {
    /** Between admission and execution: bring the repository up to the primary's state first (freshness.ts). */
    freshness?: Freshness;
  };

export function gitHandler(d: GitHandlerDeps): Handler {
  return async (ctx) => {
    const record = new GitRecord(d, ctx.res, (ctx.req.method ?? "GET").toUpperCase(), ctx.requestId, clientAddress(ctx.req));
    const admitted = await admit(d, ctx, record);
    if (!admitted) return;
    if (d.freshness && !(await d.freshness.prepare(admitted, ctx.res, record))) return;
    if (ctx.res.destroyed) return record.count(499); // the client left while the mirror caught up
    await execute(d, ctx, admitted, record);
  };
}
