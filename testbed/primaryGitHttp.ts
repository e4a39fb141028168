/**
 * The bench primary's Git smart HTTP endpoint, as Bitbucket serves it at
 * `<url>/scm/PROJECT/repo.git`: real `git http-backend` (CGI, one process per request, spawned
 * here) with receive-pack enabled, over the Bitbucket double's real HTTPS and Basic auth
 * (testbed/bitbucketDouble.ts authenticates; this module decides read/write and runs git). It
 * serves the very repositories the SSH primary (testbed/primary.ts) serves, as the account
 * that owns them, so a push over HTTPS and one over SSH land in the same place.
 *
 *     const endpoint = primaryGitHttp({ reposRoot: primary.reposRoot, gitConfigPath: primary.dir + "/gitconfig" });
 *     const double = await startBitbucketDouble({ cert, key, scm: endpoint });
 *
 * Answers, as Bitbucket gives them to git:
 *   no credentials                       401 + WWW-Authenticate: Basic (git asks for them)
 *   wrong credentials                    401 (the double answers before this module runs)
 *   may not read the repository          404 "Repository not found" (no leak)
 *   may read, pushes (receive-pack)      403 "You are not permitted to push"
 *   else                                 git http-backend's own answer, streamed both ways
 * The repository must exist in the double's model and on disk. Hooks and receive.* settings of
 * a test repository (pre-receive, receive.denyNonFastForwards) apply as on any git server.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import * as path from "node:path";
import { pipeline } from "node:stream";

/** Who is asking, as the double authenticated them; exists/canRead/canWrite in its model. */
export interface ScmCaller {
  /** The authenticated user, or null (anonymous). */
  user: string | null;
  exists(project: string, slug: string): boolean;
  canRead(project: string, slug: string): boolean;
  canWrite(project: string, slug: string): boolean;
}

/** What the double hands every request under /scm/. */
export type ScmHandler = (req: IncomingMessage, res: ServerResponse, caller: ScmCaller) => void;

export interface PrimaryGitHttpOptions {
  /** The SSH primary's repository root: /scm/PROJECT/repo.git is reposRoot/PROJECT/repo.git. */
  reposRoot: string;
  /** The primary's git config (GIT_CONFIG_GLOBAL), as the SSH side uses; default none. */
  gitConfigPath?: string;
  /** Run git as the owner of reposRoot (default when running as root), so both doors write alike. */
  runAsOwner?: boolean;
}

const SCM = /^\/scm\/([^/]+)\/([^/]+?)(?:\.git)?\/(info\/refs|git-upload-pack|git-receive-pack)$/;

/** Which repository and service a request is for (pure); undefined for anything else. */
export function parseScmTarget(method: string, target: string): { project: string; slug: string; service: "git-upload-pack" | "git-receive-pack"; pathInfoTail: string; query: string } | undefined {
  const q = target.indexOf("?");
  const p = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? "" : target.slice(q + 1);
  const m = SCM.exec(p);
  if (!m) return undefined;
  const [, project, slug, tail] = m;
  if (!/^~?[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(project) || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(slug)) return undefined;
  let service: string | null;
  if (tail === "info/refs") {
    if (method !== "GET") return undefined;
    service = new URLSearchParams(query).get("service");
  } else {
    if (method !== "POST") return undefined;
    service = tail;
  }
  if (service !== "git-upload-pack" && service !== "git-receive-pack") return undefined;
  return { project, slug, service, pathInfoTail: tail, query };
}

/** The CGI environment for git http-backend (pure). */
export function cgiEnv(req: { method: string; headers: IncomingMessage["headers"] }, o: { reposRoot: string; pathInfo: string; query: string; user: string | null; gitConfigPath?: string }): NodeJS.ProcessEnv {
  const h = req.headers;
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: o.reposRoot,
    GIT_PROJECT_ROOT: o.reposRoot,
    GIT_HTTP_EXPORT_ALL: "1",
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_CONFIG_GLOBAL: o.gitConfigPath ?? "/dev/null",
    GATEWAY_INTERFACE: "CGI/1.1",
    REQUEST_METHOD: req.method,
    PATH_INFO: o.pathInfo,
    QUERY_STRING: o.query,
    REMOTE_ADDR: "127.0.0.1",
  };
  // http-backend enables receive-pack only for an authenticated user (http.receivepack unset).
  if (o.user !== null) env.REMOTE_USER = o.user;
  if (typeof h["content-type"] === "string") env.CONTENT_TYPE = h["content-type"];
  // Without CONTENT_LENGTH (a chunked push) http-backend reads the body to its end.
  if (typeof h["content-length"] === "string") env.CONTENT_LENGTH = h["content-length"];
  if (typeof h["content-encoding"] === "string") env.HTTP_CONTENT_ENCODING = h["content-encoding"];
  if (typeof h["git-protocol"] === "string") env.GIT_PROTOCOL = h["git-protocol"];
  return env;
}

/** Parse a CGI header block ("Status: 403 Forbidden\r\nContent-Type: ...\r\n"); pure. */
export function parseCgiHeaders(block: string): { status: number; headers: Record<string, string> } {
  let status = 200;
  const headers: Record<string, string> = {};
  for (const line of block.split(/\r?\n/)) {
    const i = line.indexOf(":");
    if (i <= 0) continue;
    const name = line.slice(0, i).trim();
    const value = line.slice(i + 1).trim();
    if (name.toLowerCase() === "status") status = Number(value.split(" ")[0]) || 500;
    else headers[name] = value;
  }
  return { status, headers };
}

function text(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "Content-Type": "text/plain;charset=UTF-8", "Content-Length": Buffer.byteLength(body), ...headers });
  res.end(body);
}

/** The endpoint: hand it to startBitbucketDouble({ scm }). */
export function primaryGitHttp(o: PrimaryGitHttpOptions): ScmHandler {
  const owner = (o.runAsOwner ?? process.getuid?.() === 0) ? fs.statSync(o.reposRoot) : undefined;
  return (req, res, caller) => {
    const method = (req.method ?? "GET").toUpperCase();
    const t = parseScmTarget(method, req.url ?? "/");
    if (!t) return text(res, 404, "Not a Git smart HTTP endpoint\n");
    // Bitbucket's clone links lowercase the project key; the disk keeps it as created.
    const project = [t.project, t.project.toUpperCase()].find((p) => caller.exists(p, t.slug) && fs.existsSync(path.join(o.reposRoot, p, `${t.slug}.git`)));
    const readable = project !== undefined && caller.canRead(project, t.slug);
    if (!readable) {
      if (caller.user === null) return text(res, 401, "Authentication required\n", { "WWW-Authenticate": 'Basic realm="Atlassian Bitbucket"' });
      return text(res, 404, `Repository not found\n`);
    }
    if (t.service === "git-receive-pack" && !caller.canWrite(project, t.slug)) {
      if (caller.user === null) return text(res, 401, "Authentication required\n", { "WWW-Authenticate": 'Basic realm="Atlassian Bitbucket"' });
      return text(res, 403, `You are not permitted to push to ${project}/${t.slug}\n`);
    }
    const env = cgiEnv({ method, headers: req.headers }, { reposRoot: o.reposRoot, pathInfo: `/${project}/${t.slug}.git/${t.pathInfoTail}`, query: t.query, user: caller.user, gitConfigPath: o.gitConfigPath });
    const child = spawn("git", ["http-backend"], { env, stdio: ["pipe", "pipe", "pipe"], uid: owner?.uid, gid: owner?.gid });
    let stderr = "";
    child.stderr.on("data", (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4096)));
    child.on("error", (e) => {
      if (!res.headersSent) text(res, 500, `git http-backend failed: ${e.message}\n`);
      else res.destroy();
    });
    // The request body streams into git (a push of any size), with backpressure.
    pipeline(req, child.stdin, () => undefined);
    // Headers first (CGI: up to an empty line), then the body is piped as it comes.
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) {
        if (head.length > 64 * 1024) child.kill("SIGKILL");
        return;
      }
      child.stdout.off("data", onData);
      child.stdout.pause();
      const { status, headers } = parseCgiHeaders(head.subarray(0, end).toString("latin1"));
      res.writeHead(status, headers);
      const rest = head.subarray(end + 4);
      if (rest.length > 0) res.write(rest);
      pipeline(child.stdout, res, () => undefined);
    };
    child.stdout.on("data", onData);
    child.on("close", (code) => {
      if (!res.headersSent) text(res, 500, `git http-backend exited ${code}: ${stderr}\n`);
    });
    res.on("close", () => {
      if (child.exitCode === null) child.kill("SIGKILL");
    });
  };
}
