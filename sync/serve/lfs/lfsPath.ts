/**
 * Which Git LFS request a request target is, in the layout git-lfs derives from a Bitbucket
 * clone URL (docs/api/server-discovery.md: <clone URL>/info/lfs), or undefined when it is not
 * an LFS path at all (the Git routes then answer it). Pure; the repository name goes through
 * the same parser as clones (gitPath.ts), and an object id is accepted only as 64 lowercase hex
 * digits, the one piece of client input that ever becomes part of a file name (lfsStore.ts).
 *
 *     POST /scm/PROJECT/repo.git/info/lfs/objects/batch       Batch API
 *     GET  /scm/PROJECT/repo.git/info/lfs/objects/<oid>       download (href the mirror hands out)
 *     PUT  /scm/PROJECT/repo.git/info/lfs/objects/<oid>       upload, relayed to the primary
 *     POST /scm/PROJECT/repo.git/info/lfs/objects/<oid>/verify  verify, relayed to the primary
 *     *    /scm/PROJECT/repo.git/info/lfs/locks[/...]         locking API, relayed to the primary
 */
import { isValidRepoId } from "../../repoName";
import type { RepoId } from "../../types";
import { decodeUnreserved } from "../git/gitPath";

export const LFS_MEDIA_TYPE = "application/vnd.git-lfs+json";
const OID_RE = /^[0-9a-f]{64}$/;
const LFS_MARK = /^\/scm\/[^/]+\/[^/]+\/info\/lfs(?:\/|$)/;

export type LfsRequest =
  | { ok: true; repo: RepoId; kind: "batch" }
  | { ok: true; repo: RepoId; kind: "object"; oid: string }
  | { ok: true; repo: RepoId; kind: "verify"; oid: string }
  | { ok: true; repo: RepoId; kind: "locks"; rest: string }
  | { ok: false; status: 400 | 404 | 405; message: string; allow?: string };

export function isValidOid(oid: string): boolean {
  return OID_RE.test(oid);
}

/** Cheap test for the router: does this target belong to the LFS routes? */
export function isLfsTarget(target: string): boolean {
  return LFS_MARK.test(target.split("?")[0]);
}

export function parseLfsRequest(method: string, target: string): LfsRequest {
  const m = method.toUpperCase();
  const path = decodeUnreserved(target.split("?")[0]);
  if (path === undefined || !/^[A-Za-z0-9._~/-]+$/.test(path)) return { ok: false, status: 400, message: "malformed repository path" };
  const segs = path.slice(1).split("/");
  if (segs.some((s) => s === "" || s === "." || s === "..")) return { ok: false, status: 400, message: "malformed repository path (empty or dot segment)" };
  const [scm, project, repoSeg, info, lfs, ...rest] = segs;
  if (scm !== "scm" || info !== "info" || lfs !== "lfs" || !project || !repoSeg) return { ok: false, status: 404, message: "not a Git LFS endpoint" };
  const slug = repoSeg.endsWith(".git") ? repoSeg.slice(0, -4) : repoSeg;
  const repo = { project, slug };
  if (!isValidRepoId(repo)) return { ok: false, status: 400, message: "not a valid PROJECT/repository name" };
  const not = (allow: string) => ({ ok: false as const, status: 405 as const, message: `${m} is not allowed here`, allow });

  if (rest[0] === "locks") return { ok: true, repo, kind: "locks", rest: rest.join("/") };
  if (rest[0] !== "objects" || rest.length < 2 || rest.length > 3) return { ok: false, status: 404, message: "not a Git LFS endpoint" };
  if (rest.length === 2 && rest[1] === "batch") return m === "POST" ? { ok: true, repo, kind: "batch" } : not("POST");
  const oid = rest[1];
  if (!isValidOid(oid)) return { ok: false, status: 404, message: "not an LFS object id (64 lowercase hex digits)" };
  if (rest.length === 3) {
    if (rest[2] !== "verify") return { ok: false, status: 404, message: "not a Git LFS endpoint" };
    return m === "POST" ? { ok: true, repo, kind: "verify", oid } : not("POST");
  }
  return m === "GET" || m === "HEAD" || m === "PUT" ? { ok: true, repo, kind: "object", oid } : not("GET, HEAD, PUT");
}
