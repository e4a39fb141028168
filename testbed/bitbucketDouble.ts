/**
 * A Bitbucket Data Center REST double for the primary (Bitbucket itself cannot run here):
 * the catalog endpoints a mirror lists repositories with, the SSH access-key endpoints that
 * "approve" a mirror's key, Basic/Bearer auth with per-user read permission, and switches for
 * outages. Served over real HTTPS, so clients verify it with the bench CA like a real primary.
 *
 * Shapes follow Atlassian's documentation:
 * - Paged APIs `{size, limit, isLastPage, values, start, nextPageStart}`; limit defaults to 25,
 *   nextPageStart only when isLastPage is false:
 *   https://docs.atlassian.com/bitbucket-server/rest/5.16.0/bitbucket-rest.html (section "Paged APIs")
 *   Hard limit 1000: https://confluence.atlassian.com/bitbucketserverkb/how-to-apply-the-limit-filter-in-bitbucket-server-and-datacenter-rest-api-and-query-more-than-the-max-limit-of-1000-results-1142440445.html
 * - Project, Repository and RestErrors `{errors: [{context, message, exceptionName}]}` schemas:
 *   Bitbucket Data Center OpenAPI 9.2 (https://developer.atlassian.com/server/bitbucket/rest/v819/intro/;
 *   copy at https://github.com/coderabbitai/bitbucket/blob/main/src/server/openapi/swagger.v3.json)
 * - GET repository: 401 "insufficient permissions to see the specified repository", 404 when it
 *   does not exist (same pattern as the access-key resources below), per the 1.0 reference
 *   https://docs.atlassian.com/bitbucket-server/rest/5.16.0/bitbucket-rest.html
 *   (404 for hidden resources, which hides their existence, can be chosen with `hiddenStatus`).
 * - SSH access keys, `POST /rest/keys/1.0/projects/{key}/repos/{slug}/ssh` with
 *   `{key: {text}, permission: "REPO_READ"}` answering the access key `{key, repository, permission}`
 *   (200 in the 1.0 docs; 401 without REPO_ADMIN; 404 for a missing repository), and the
 *   project-level `/rest/keys/1.0/projects/{key}/ssh` with PROJECT_READ/PROJECT_WRITE:
 *   https://docs.atlassian.com/bitbucket-server/rest/5.6.2/bitbucket-ssh-rest.html
 *   https://developer.atlassian.com/server/bitbucket/rest/v803/api-group-ssh
 * - Auth: HTTP Basic (OpenAPI securitySchemes.basic) or an HTTP access token as
 *   `Authorization: Bearer <token>` (e.g. https://jira.atlassian.com/browse/BSERV-12818).
 *
 * Bodies are a few kilobytes at most, so each response is one JSON.stringify + end().
 */
import * as https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { ScmHandler } from "./primaryGitHttp";
import { onCleanup } from "./resources";

// ---- model -----------------------------------------------------------------------------

export interface ProjectModel {
  id: number;
  key: string;
  name: string;
  description?: string;
}

export interface RepoModel {
  id: number;
  projectKey: string;
  slug: string;
  name: string;
}

/** Who may read what: a predicate (slug undefined = "may see the project at all"), or lists. */
export type ReadRule = ((projectKey: string, slug?: string) => boolean) | { projects?: string[]; repos?: string[] };

export interface UserSpec {
  /** An HTTP access token: accepted as `Bearer <token>` and as the Basic password. */
  token?: string;
  /** Default: reads everything. */
  canRead?: ReadRule;
  /** May push (REPO_WRITE) over the `scm` endpoint. Default: nothing. */
  canWrite?: ReadRule;
  /** REPO_ADMIN / PROJECT_ADMIN, needed for access keys. Default false. */
  admin?: boolean | ((projectKey: string, slug?: string) => boolean);
}

export interface LoggedRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  query: string;
  /** The authenticated user, null for anonymous or failed authentication. */
  user: string | null;
  status: number;
}

export interface AccessKey {
  /** One id per distinct public key, shared by all grants of that key (as in Bitbucket). */
  id: number;
  /** `type base64` (the comment is kept in label). */
  text: string;
  label: string;
  algorithmType: string;
  bitLength: number;
  projectKey: string;
  /** Undefined for a project-level key. */
  slug?: string;
  permission: string;
}

export type DownMode = false | true | "refused" | "503";

export interface BitbucketDoubleOptions {
  /** Server certificate (PEM; leaf, optionally followed by the chain) and its key. */
  cert: string;
  key: string;
  /** Listen address; default 127.0.0.1. Use a bridge address to serve namespace hosts. */
  host?: string;
  /** Default 0 (a free port). */
  port?: number;
  /** Host name used in `url` and in links; default "localhost" (must be in the certificate). */
  publicHost?: string;
  /** Default page size (Bitbucket: 25) and hard cap (Bitbucket: 1000). */
  defaultLimit?: number;
  maxLimit?: number;
  /** Status for resources that exist but the caller may not see: 401 (documented) or 404. */
  hiddenStatus?: 401 | 404;
  /** The `ssh` clone link; default `ssh://git@<publicHost>:7999/<project lowercased>/<slug>.git`. */
  sshCloneUrl?: (projectKey: string, slug: string) => string;
  /** Git smart HTTP under /scm/ (testbed/primaryGitHttp.ts), given the authenticated caller. */
  scm?: ScmHandler;
  /** Endpoints served beside the REST API (e.g. primaryLfs.ts), asked first, in order. */
  mounts?: DoubleMount[];
}

/** What a mounted endpoint may ask about the caller: authenticated by the double's own rules. */
export interface DoubleAccess {
  /** The authenticated user; undefined for anonymous (bad credentials never get here: 401). */
  user: string | undefined;
  /** The per-repository read rule (anonymous reads nothing, as for the REST API). */
  canRead(projectKey: string, slug: string): boolean;
  exists(projectKey: string, slug: string): boolean;
}

/** An extra endpoint: answers the request and returns true, or returns false to pass it on. */
export type DoubleMount = (req: IncomingMessage, res: ServerResponse, access: DoubleAccess) => boolean | Promise<boolean>;

export interface BitbucketDouble {
  /** `https://<publicHost>:<port>`, without a trailing slash. */
  url: string;
  port: number;
  addProject(key: string, name?: string, description?: string): ProjectModel;
  /** Adds the project too if it does not exist yet. */
  addRepo(projectKey: string, slug: string, name?: string): RepoModel;
  removeRepo(projectKey: string, slug: string): void;
  /** Keeps the repository id, as a Bitbucket rename does. */
  renameRepo(projectKey: string, slug: string, newSlug: string, newName?: string): void;
  addUser(name: string, password: string, spec?: UserSpec): void;
  /** Every request answered so far, oldest first (mutable: tests may clear it). */
  requests: LoggedRequest[];
  /** Access keys registered on a repository, or on the project when slug is omitted. */
  accessKeys(projectKey: string, slug?: string): AccessKey[];
  /**
   * Simulate an outage. true/"refused": stop listening (connections refused, open ones cut);
   * "503": answer every request 503; false: back to normal on the same port.
   */
  setDown(mode: DownMode): Promise<void>;
  /** Add an endpoint after start (see BitbucketDoubleOptions.mounts). */
  mount(m: DoubleMount): void;
  close(): Promise<void>;
}

// ---- pure helpers ------------------------------------------------------------------------

export interface Page<T> {
  size: number;
  limit: number;
  isLastPage: boolean;
  values: T[];
  start: number;
  nextPageStart?: number;
}

/** One page of `items` the way Bitbucket pages: nextPageStart only when more exist. */
export function paginate<T>(items: T[], start: number, limit: number): Page<T> {
  const values = items.slice(start, start + limit);
  const isLastPage = start + values.length >= items.length;
  const page: Page<T> = { size: values.length, limit, isLastPage, values, start };
  if (!isLastPage) page.nextPageStart = start + values.length;
  return page;
}

/** start/limit from a query string; throws a message for a 400 on anything not a number. */
export function parsePaging(q: URLSearchParams, defaultLimit: number, maxLimit: number): { start: number; limit: number } {
  const num = (name: string, dflt: number): number => {
    const raw = q.get(name);
    if (raw === null || raw === "") return dflt;
    if (!/^\d{1,9}$/.test(raw)) throw new BadRequest(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
    return Number(raw);
  };
  const start = num("start", 0);
  const limit = num("limit", defaultLimit);
  if (limit < 1) throw new BadRequest("limit must be at least 1");
  return { start, limit: Math.min(limit, maxLimit) };
}

export interface ParsedSshKey {
  type: string;
  base64: string;
  comment: string;
  algorithmType: string;
  bitLength: number;
}

/**
 * Parse an OpenSSH public key line and check that the blob really is a key of the named type
 * (the wire format starts with the type string), so junk is a 400 like Bitbucket's.
 */
export function parseSshPublicKey(line: string): ParsedSshKey | undefined {
  const m = /^\s*(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521))\s+([A-Za-z0-9+/]+={0,2})(?:\s+(.*?))?\s*$/.exec(line);
  if (!m) return undefined;
  const [, type, base64, comment = ""] = m;
  const blob = Buffer.from(base64, "base64");
  let off = 0;
  const field = (): Buffer | undefined => {
    if (off + 4 > blob.length) return undefined;
    const len = blob.readUInt32BE(off);
    if (off + 4 + len > blob.length) return undefined;
    const b = blob.subarray(off + 4, off + 4 + len);
    off += 4 + len;
    return b;
  };
  if (field()?.toString() !== type) return undefined;
  if (type === "ssh-ed25519") return field()?.length === 32 ? { type, base64, comment, algorithmType: "ED25519", bitLength: 256 } : undefined;
  if (type === "ssh-rsa") {
    const e = field();
    const n = field();
    if (!e || !n) return undefined;
    let i = 0;
    while (i < n.length && n[i] === 0) i++;
    const bits = n.length > i ? (n.length - i - 1) * 8 + (32 - Math.clz32(n[i])) : 0;
    return bits >= 1024 ? { type, base64, comment, algorithmType: "RSA", bitLength: bits } : undefined;
  }
  return field() && field() ? { type, base64, comment, algorithmType: "EC", bitLength: Number(type.slice(-3)) } : undefined;
}

// ---- errors --------------------------------------------------------------------------------

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly exceptionName: string | null,
    readonly context: string | null = null,
  ) {
    super(message);
  }
}
class BadRequest extends HttpError {
  constructor(message: string, context: string | null = null) {
    super(400, message, null, context);
  }
}

const EX = {
  badCredentials: "com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException",
  notPermitted: "com.atlassian.bitbucket.AuthorisationException",
  noProject: "com.atlassian.bitbucket.project.NoSuchProjectException",
  noRepo: "com.atlassian.bitbucket.repository.NoSuchRepositoryException",
};

// ---- the server ----------------------------------------------------------------------------

interface UserModel {
  name: string;
  password: string;
  token?: string;
  canRead: (projectKey: string, slug?: string) => boolean;
  canWrite: (projectKey: string, slug?: string) => boolean;
  admin: (projectKey: string, slug?: string) => boolean;
}

function readPredicate(rule: ReadRule | undefined, dflt = true): (p: string, s?: string) => boolean {
  if (rule === undefined) return () => dflt;
  if (typeof rule === "function") return rule;
  const projects = new Set(rule.projects ?? []);
  const repos = new Set(rule.repos ?? []);
  return (p, s) => projects.has(p) || (s === undefined ? [...repos].some((r) => r.startsWith(`${p}/`)) : repos.has(`${p}/${s}`));
}

const byName = <T extends { name: string }>(a: T, b: T) => a.name.localeCompare(b.name, "en", { sensitivity: "base" }) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

const MAX_BODY = 64 * 1024;

export async function startBitbucketDouble(opts: BitbucketDoubleOptions): Promise<BitbucketDouble> {
  const listenHost = opts.host ?? "127.0.0.1";
  const publicHost = opts.publicHost ?? "localhost";
  const defaultLimit = opts.defaultLimit ?? 25;
  const maxLimit = opts.maxLimit ?? 1000;
  const hiddenStatus = opts.hiddenStatus ?? 401;

  const projects = new Map<string, ProjectModel>();
  const repos = new Map<string, RepoModel>(); // "KEY/slug"
  const users = new Map<string, UserModel>();
  const keyIds = new Map<string, number>(); // "type base64" -> id
  const grants: AccessKey[] = [];
  const requests: LoggedRequest[] = [];
  const mounts: DoubleMount[] = [...(opts.mounts ?? [])];
  let nextId = 1;
  let mode: "up" | "refused" | "503" = "up";
  let base = "";

  const sshCloneUrl = opts.sshCloneUrl ?? ((p: string, s: string) => `ssh://git@${publicHost}:7999/${p.toLowerCase()}/${s}.git`);

  const projectJson = (p: ProjectModel) => ({
    key: p.key,
    id: p.id,
    name: p.name,
    ...(p.description !== undefined ? { description: p.description } : {}),
    public: false,
    type: "NORMAL",
    links: { self: [{ href: `${base}/projects/${p.key}` }] },
  });
  const repoJson = (r: RepoModel) => ({
    slug: r.slug,
    id: r.id,
    name: r.name,
    hierarchyId: r.id.toString(16).padStart(20, "0"),
    scmId: "git",
    state: "AVAILABLE",
    statusMessage: "Available",
    forkable: true,
    project: projectJson(projects.get(r.projectKey) as ProjectModel),
    public: false,
    archived: false,
    links: {
      clone: [
        { href: sshCloneUrl(r.projectKey, r.slug), name: "ssh" },
        { href: `${base}/scm/${r.projectKey.toLowerCase()}/${r.slug}.git`, name: "http" },
      ],
      self: [{ href: `${base}/projects/${r.projectKey}/repos/${r.slug}/browse` }],
    },
  });
  const accessKeyJson = (g: AccessKey) => ({
    key: { id: g.id, text: g.label ? `${g.text} ${g.label}` : g.text, label: g.label, algorithmType: g.algorithmType, bitLength: g.bitLength },
    ...(g.slug === undefined
      ? { project: projectJson(projects.get(g.projectKey) as ProjectModel) }
      : { repository: repoJson(repos.get(`${g.projectKey}/${g.slug}`) as RepoModel) }),
    permission: g.permission,
  });

  // -- auth --

  /** undefined = anonymous; throws 401 for credentials that do not check out. */
  function authenticate(req: IncomingMessage): UserModel | undefined {
    const h = req.headers.authorization;
    if (!h) return undefined;
    const fail = () => new HttpError(401, "Authentication failed. Please check your credentials and try again.", EX.badCredentials);
    const [scheme, value = ""] = h.trim().split(/\s+/, 2);
    if (/^bearer$/i.test(scheme)) {
      const u = [...users.values()].find((x) => x.token !== undefined && x.token === value);
      if (!u) throw fail();
      return u;
    }
    if (/^basic$/i.test(scheme)) {
      const decoded = Buffer.from(value, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      if (colon < 0) throw fail();
      const u = users.get(decoded.slice(0, colon));
      const secret = decoded.slice(colon + 1);
      if (!u || (secret !== u.password && secret !== u.token)) throw fail();
      return u;
    }
    throw fail();
  }

  // Anonymous callers see only public resources, and the double has none.
  const canRead = (u: UserModel | undefined, p: string, s: string) => !!u && u.canRead(p, s);
  const canSeeProject = (u: UserModel | undefined, p: string) =>
    !!u && (u.canRead(p) || [...repos.values()].some((r) => r.projectKey === p && u.canRead(p, r.slug)));
  const hidden = () =>
    hiddenStatus === 401
      ? new HttpError(401, "You are not permitted to access this resource", EX.notPermitted)
      : undefined;

  function project(u: UserModel | undefined, key: string): ProjectModel {
    const p = projects.get(key);
    const missing = () => new HttpError(404, `Project ${key} does not exist.`, EX.noProject);
    if (!p) throw missing();
    if (!canSeeProject(u, key)) throw hidden() ?? missing();
    return p;
  }
  function repo(u: UserModel | undefined, key: string, slug: string): RepoModel {
    const r = repos.get(`${key}/${slug}`);
    const missing = () => new HttpError(404, `Repository ${key}/${slug} does not exist.`, EX.noRepo);
    if (!r) throw missing();
    if (!canRead(u, key, slug)) throw hidden() ?? missing();
    return r;
  }
  function requireAdmin(u: UserModel | undefined, key: string, slug?: string): void {
    if (!u || !u.admin(key, slug)) {
      const what = slug === undefined ? `project ${key}` : `repository ${key}/${slug}`;
      throw new HttpError(401, `You are not permitted to manage access keys of ${what}`, EX.notPermitted);
    }
  }

  // -- access keys --

  function addAccessKey(body: unknown, projectKey: string, slug: string | undefined): AccessKey {
    const b = body as { key?: { text?: unknown }; permission?: unknown } | null;
    const text = b?.key?.text;
    if (typeof text !== "string") throw new BadRequest("key.text is required", "text");
    const parsed = parseSshPublicKey(text);
    if (!parsed) throw new BadRequest("The SSH key is not a valid OpenSSH public key", "text");
    const allowed = slug === undefined ? ["PROJECT_READ", "PROJECT_WRITE"] : ["REPO_READ", "REPO_WRITE"];
    const permission = b?.permission ?? allowed[0];
    if (typeof permission !== "string" || !allowed.includes(permission)) throw new BadRequest(`permission must be one of ${allowed.join(", ")}`, "permission");
    const normalized = `${parsed.type} ${parsed.base64}`;
    let id = keyIds.get(normalized);
    if (id === undefined) keyIds.set(normalized, (id = nextId++));
    const existing = grants.find((g) => g.id === id && g.projectKey === projectKey && g.slug === slug);
    if (existing) {
      existing.permission = permission; // registering again updates the grant, never duplicates it
      return existing;
    }
    const g: AccessKey = { id, text: normalized, label: parsed.comment, algorithmType: parsed.algorithmType, bitLength: parsed.bitLength, projectKey, slug, permission };
    grants.push(g);
    return g;
  }

  // -- routing --

  type Handler = (ctx: { user: UserModel | undefined; params: string[]; query: URLSearchParams; body: () => Promise<unknown> }) => Promise<[number, unknown]> | [number, unknown];
  interface Route {
    pattern: RegExp;
    methods: Record<string, Handler>;
  }
  const SEG = "([^/]+)";
  const api = (p: string) => new RegExp(`^/rest/api/(?:1\\.0|latest)${p}/?$`);
  const keys = (p: string) => new RegExp(`^/rest/keys/(?:1\\.0|latest)${p}/?$`);
  const page = <T>(items: T[], q: URLSearchParams) => {
    const { start, limit } = parsePaging(q, defaultLimit, maxLimit);
    return paginate(items, start, limit);
  };
  const routes: Route[] = [
    {
      pattern: api("/projects"),
      methods: {
        GET: ({ user, query }) => [200, page([...projects.values()].filter((p) => canSeeProject(user, p.key)).sort(byName).map(projectJson), query)],
      },
    },
    { pattern: api(`/projects/${SEG}`), methods: { GET: ({ user, params }) => [200, projectJson(project(user, params[0]))] } },
    {
      pattern: api(`/projects/${SEG}/repos`),
      methods: {
        GET: ({ user, params, query }) => {
          const key = project(user, params[0]).key;
          const list = [...repos.values()].filter((r) => r.projectKey === key && canRead(user, key, r.slug)).sort(byName);
          return [200, page(list.map(repoJson), query)];
        },
      },
    },
    { pattern: api(`/projects/${SEG}/repos/${SEG}`), methods: { GET: ({ user, params }) => [200, repoJson(repo(user, params[0], params[1]))] } },
    {
      pattern: api("/repos"),
      methods: {
        GET: ({ user, query }) => {
          const list = [...repos.values()]
            .filter((r) => canRead(user, r.projectKey, r.slug))
            .sort((a, b) => byName(projects.get(a.projectKey) as ProjectModel, projects.get(b.projectKey) as ProjectModel) || byName(a, b));
          return [200, page(list.map(repoJson), query)];
        },
      },
    },
    {
      pattern: keys(`/projects/${SEG}/ssh`),
      methods: {
        GET: ({ user, params, query }) => {
          const key = project(user, params[0]).key;
          requireAdmin(user, key);
          return [200, page(grants.filter((g) => g.projectKey === key && g.slug === undefined).map(accessKeyJson), query)];
        },
        POST: async ({ user, params, body }) => {
          const key = project(user, params[0]).key;
          requireAdmin(user, key);
          return [200, accessKeyJson(addAccessKey(await body(), key, undefined))];
        },
      },
    },
    {
      pattern: keys(`/projects/${SEG}/ssh/(\\d+)`),
      methods: {
        DELETE: ({ user, params }) => {
          const key = project(user, params[0]).key;
          requireAdmin(user, key);
          removeGrant(key, undefined, Number(params[1]));
          return [204, undefined];
        },
      },
    },
    {
      pattern: keys(`/projects/${SEG}/repos/${SEG}/ssh`),
      methods: {
        GET: ({ user, params, query }) => {
          const r = repo(user, params[0], params[1]);
          requireAdmin(user, r.projectKey, r.slug);
          return [200, page(grants.filter((g) => g.projectKey === r.projectKey && g.slug === r.slug).map(accessKeyJson), query)];
        },
        POST: async ({ user, params, body }) => {
          const r = repo(user, params[0], params[1]);
          requireAdmin(user, r.projectKey, r.slug);
          return [200, accessKeyJson(addAccessKey(await body(), r.projectKey, r.slug))];
        },
      },
    },
    {
      pattern: keys(`/projects/${SEG}/repos/${SEG}/ssh/(\\d+)`),
      methods: {
        DELETE: ({ user, params }) => {
          const r = repo(user, params[0], params[1]);
          requireAdmin(user, r.projectKey, r.slug);
          removeGrant(r.projectKey, r.slug, Number(params[2]));
          return [204, undefined];
        },
      },
    },
  ];

  function removeGrant(projectKey: string, slug: string | undefined, id: number): void {
    const i = grants.findIndex((g) => g.id === id && g.projectKey === projectKey && g.slug === slug);
    if (i >= 0) grants.splice(i, 1);
  }

  function readBody(req: IncomingMessage): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on("data", (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY) {
          reject(new BadRequest(`request body larger than ${MAX_BODY} bytes`));
          req.destroy();
          return;
        }
        chunks.push(c);
      });
      req.on("error", reject);
      req.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        if (text.trim() === "") return reject(new BadRequest("a JSON request body is required"));
        try {
          resolve(JSON.parse(text));
        } catch {
          reject(new BadRequest("the request body is not valid JSON"));
        }
      });
    });
  }

  function send(req: IncomingMessage, res: ServerResponse, status: number, body: unknown, user: UserModel | undefined, extraHeaders: Record<string, string> = {}): void {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    requests.push({ method: req.method ?? "", path: q < 0 ? url : url.slice(0, q), query: q < 0 ? "" : url.slice(q), user: user?.name ?? null, status });
    const payload = body === undefined ? "" : JSON.stringify(body);
    res.writeHead(status, { ...(payload ? { "content-type": "application/json;charset=UTF-8", "content-length": Buffer.byteLength(payload) } : {}), ...extraHeaders });
    res.end(payload);
  }

  const errorBody = (e: HttpError) => ({ errors: [{ context: e.context, message: e.message, exceptionName: e.exceptionName }] });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let user: UserModel | undefined;
    try {
      if (mode === "503") throw new HttpError(503, "Bitbucket is unavailable (simulated outage)", null);
      let url: URL;
      try {
        url = new URL(req.url ?? "/", "https://double.invalid");
      } catch {
        throw new BadRequest("malformed request URL");
      }
      user = authenticate(req);
      const u = user;
      const access: DoubleAccess = { user: u?.name, canRead: (p, s) => canRead(u, p, s), exists: (p, s) => repos.has(`${p}/${s}`) };
      for (const m of mounts) if (await m(req, res, access)) return;
      const method = req.method ?? "GET";
      if (opts.scm && url.pathname.startsWith("/scm/")) return scm(opts.scm, req, res, user);
      for (const route of routes) {
        const m = route.pattern.exec(url.pathname);
        if (!m) continue;
        const handler = route.methods[method];
        if (!handler) {
          const allow = Object.keys(route.methods).join(", ");
          send(req, res, 405, errorBody(new HttpError(405, `${method} is not supported here; use ${allow}`, null)), user, { allow });
          return;
        }
        let params: string[];
        try {
          params = m.slice(1).map((s) => decodeURIComponent(s));
        } catch {
          throw new BadRequest("malformed percent-encoding in the path");
        }
        const [status, body] = await handler({ user, params, query: url.searchParams, body: () => readBody(req) });
        send(req, res, status, body, user);
        return;
      }
      throw new HttpError(404, `No REST resource at ${url.pathname}`, null);
    } catch (e) {
      const err = e instanceof HttpError ? e : new HttpError(500, String(e), null);
      const headers: Record<string, string> = err.status === 401 ? { "www-authenticate": 'Basic realm="Atlassian Bitbucket"' } : {};
      if (res.headersSent) res.destroy();
      else send(req, res, err.status, errorBody(err), user, headers);
    }
  }

  function scm(handler: ScmHandler, req: IncomingMessage, res: ServerResponse, u: UserModel | undefined): void {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    res.once("finish", () => requests.push({ method: req.method ?? "", path: q < 0 ? url : url.slice(0, q), query: q < 0 ? "" : url.slice(q), user: u?.name ?? null, status: res.statusCode }));
    handler(req, res, {
      user: u?.name ?? null,
      exists: (p, s) => repos.has(`${p}/${s}`),
      canRead: (p, s) => canRead(u, p, s),
      canWrite: (p, s) => !!u && u.canWrite(p, s),
    });
  }

  // -- lifecycle --

  const sockets = new Set<Socket>();
  const server = https.createServer({ cert: opts.cert, key: opts.key }, (req, res) => void handle(req, res));
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  // A client that hangs up mid-handshake must not become an unhandled error.
  server.on("tlsClientError", () => undefined);

  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, listenHost, () => {
        server.off("error", reject);
        resolve((server.address() as { port: number }).port);
      });
    });
  const stopListening = () =>
    new Promise<void>((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });

  const port = await listen(opts.port ?? 0);
  base = `https://${publicHost}:${port}`;
  const close = onCleanup(async () => {
    mode = "refused";
    await stopListening();
  });

  const double: BitbucketDouble = {
    url: base,
    port,
    requests,
    addProject(key, name = key, description) {
      // Personal projects: "~" + the user's slug, which may hold "." and "-" (~JOHN.DOE).
      if (!/^(?:[A-Za-z][A-Za-z0-9_]*|~[A-Za-z0-9_][A-Za-z0-9._-]*)$/.test(key)) throw new Error(`invalid project key ${key}`);
      const existing = projects.get(key);
      if (existing) return existing;
      const p: ProjectModel = { id: nextId++, key, name, description };
      projects.set(key, p);
      return p;
    },
    addRepo(projectKey, slug, name = slug) {
      if (!/^[a-z0-9][a-z0-9._-]*$/i.test(slug)) throw new Error(`invalid repository slug ${slug}`);
      double.addProject(projectKey);
      const id = `${projectKey}/${slug}`;
      if (repos.has(id)) throw new Error(`repository ${id} exists already`);
      const r: RepoModel = { id: nextId++, projectKey, slug, name };
      repos.set(id, r);
      return r;
    },
    removeRepo(projectKey, slug) {
      if (!repos.delete(`${projectKey}/${slug}`)) throw new Error(`no repository ${projectKey}/${slug}`);
      for (let i = grants.length - 1; i >= 0; i--) if (grants[i].projectKey === projectKey && grants[i].slug === slug) grants.splice(i, 1);
    },
    renameRepo(projectKey, slug, newSlug, newName = newSlug) {
      const r = repos.get(`${projectKey}/${slug}`);
      if (!r) throw new Error(`no repository ${projectKey}/${slug}`);
      if (repos.has(`${projectKey}/${newSlug}`)) throw new Error(`repository ${projectKey}/${newSlug} exists already`);
      repos.delete(`${projectKey}/${slug}`);
      r.slug = newSlug;
      r.name = newName;
      repos.set(`${projectKey}/${newSlug}`, r);
      for (const g of grants) if (g.projectKey === projectKey && g.slug === slug) g.slug = newSlug;
    },
    addUser(name, password, spec = {}) {
      const admin = spec.admin;
      users.set(name, {
        name,
        password,
        token: spec.token,
        canRead: readPredicate(spec.canRead),
        canWrite: readPredicate(spec.canWrite, false),
        admin: typeof admin === "function" ? admin : () => admin === true,
      });
    },
    accessKeys: (projectKey, slug) => grants.filter((g) => g.projectKey === projectKey && g.slug === slug).map((g) => ({ ...g })),
    async setDown(m) {
      const next = m === false ? "up" : m === "503" ? "503" : "refused";
      if (next === "refused") await stopListening();
      else if (!server.listening) await listen(port);
      mode = next;
    },
    mount: (m) => void mounts.push(m),
    close: () => close(),
  };
  return double;
}
