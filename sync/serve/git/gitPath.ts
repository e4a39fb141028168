/**
 * Which Git smart HTTP request a request target is, in Bitbucket's URL layout, or why it is none.
 * Pure: the only place a client's path is turned into a repository name, and the name is never
 * joined to a filesystem path here (the resolver maps a validated RepoId to a directory).
 *
 *     GET  /scm/PROJECT/repo.git/info/refs?service=git-upload-pack
 *     POST /scm/PROJECT/repo.git/git-upload-pack
 *     (".git" optional, as Bitbucket accepts; receive-pack is parsed so it can be refused nicely)
 *
 * What is refused, and how:
 *   400  characters outside [A-Za-z0-9._~/-] after decoding percent-encoded unreserved characters
 *        (RFC 3986 6.2.2.2: "%2e" is "."), so "%2e%2e", "%2f", "%00", "\", spaces never pass;
 *        empty segments ("//", trailing "/"); names isValidRepoId rejects ("..", ".git" inside, ...)
 *   404  anything but the three endpoints: no dumb HTTP (HEAD, objects/..., info/packs), no file
 *        is ever served from a repository directory
 *   403  info/refs without exactly one known service (dumb-HTTP clients, "git-foo"), like
 *        git-http-backend's "Unsupported service"
 *   405  wrong method, with Allow
 */
import { isValidRepoId } from "../../repoName";
import type { RepoId } from "../../types";

export type GitService = "git-upload-pack" | "git-receive-pack";

export type GitRequest =
  | { ok: true; repo: RepoId; endpoint: "info-refs" | "rpc"; service: GitService }
  | { ok: false; status: 400 | 403 | 404 | 405 | 414; message: string; allow?: string };

export const GIT_PREFIX = "/scm/";
const MAX_TARGET = 2048;
const SERVICES: readonly string[] = ["git-upload-pack", "git-receive-pack"];

/** Decode %XX only where XX is an unreserved character; undefined if any other escape is present. */
export function decodeUnreserved(path: string): string | undefined {
  let bad = false;
  const out = path.replace(/%(..)?/g, (_m, hex: string | undefined) => {
    if (hex === undefined || !/^[0-9A-Fa-f]{2}$/.test(hex)) {
      bad = true;
      return "";
    }
    const c = String.fromCharCode(parseInt(hex, 16));
    if (/^[A-Za-z0-9._~-]$/.test(c)) return c;
    bad = true;
    return "";
  });
  return bad ? undefined : out;
}

export function parseGitRequest(method: string, target: string): GitRequest {
  if (target.length > MAX_TARGET) return { ok: false, status: 414, message: "request target too long" };
  const q = target.indexOf("?");
  const rawPath = q < 0 ? target : target.slice(0, q);
  const query = new URLSearchParams(q < 0 ? "" : target.slice(q + 1));

  const path = decodeUnreserved(rawPath);
  if (path === undefined || !/^[A-Za-z0-9._~/-]+$/.test(path)) return { ok: false, status: 400, message: "malformed repository path" };
  if (!path.startsWith(GIT_PREFIX)) return { ok: false, status: 404, message: "not a repository path" };
  const segs = path.slice(1).split("/");
  if (segs.some((s) => s === "")) return { ok: false, status: 400, message: "malformed repository path (empty segment)" };
  if (segs.length < 4) return { ok: false, status: 404, message: "not a Git smart HTTP endpoint" };

  const [, project, repoSeg, ...rest] = segs;
  const slug = repoSeg.endsWith(".git") ? repoSeg.slice(0, -4) : repoSeg;
  const repo = { project, slug };
  if (!isValidRepoId(repo)) return { ok: false, status: 400, message: "not a valid PROJECT/repository name" };

  const tail = rest.join("/");
  const m = method.toUpperCase();
  if (tail === "info/refs") {
    if (m !== "GET" && m !== "HEAD") return { ok: false, status: 405, message: `${m} is not allowed on info/refs`, allow: "GET, HEAD" };
    const services = query.getAll("service");
    if (services.length === 0) return { ok: false, status: 403, message: "this mirror serves Git smart HTTP only (dumb HTTP is not supported); use git 1.6.6 or later" };
    if (services.length !== 1 || !SERVICES.includes(services[0])) return { ok: false, status: 403, message: "unsupported service" };
    return { ok: true, repo, endpoint: "info-refs", service: services[0] as GitService };
  }
  if (SERVICES.includes(tail)) {
    if (m !== "POST") return { ok: false, status: 405, message: `${m} is not allowed on ${tail}`, allow: "POST" };
    return { ok: true, repo, endpoint: "rpc", service: tail as GitService };
  }
  return { ok: false, status: 404, message: "not a Git smart HTTP endpoint (this mirror serves no repository files)" };
}
