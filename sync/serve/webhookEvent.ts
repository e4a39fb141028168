/**
 * What a (verified) Bitbucket Data Center webhook asks of the mirror. Pure: body in, decision out.
 *
 * Payloads per Atlassian's "Event payload" page (Bitbucket Data Center,
 * confluence.atlassian.com/bitbucketserver089/event-payload-1236435931.html):
 * - `repo:refs_changed` (push): `{eventKey, date, actor, repository: {slug, project: {key}},
 *   changes: [{ref: {id, displayId, type}, refId, fromHash, toHash, type}]}` -> sync that repo.
 * - `repo:modified` (name changed, so the slug may have), `repo:forked` (a new repo exists),
 *   `proj:modified` (project renamed; the key may have changed) -> the set of repos changed:
 *   refresh the catalog.
 * - `diagnostics:ping`: the "Test connection" button -> 200, nothing to do.
 * - anything else (pull requests, comments, mirror:repo_synchronized, ...) -> ignored.
 * Bitbucket has no webhook for repository creation or deletion: new repos show up by their
 * first push (refs_changed for a repo the catalog does not know yet is passed on all the same)
 * and by the periodic catalog reconcile, which also notices deletions.
 *
 * The event key is taken from the body when it has one, else from the X-Event-Key header:
 * the signature covers the body only, so the body is the authenticated source.
 */
import { isValidRepoId } from "../repoName";
import { parseRepoKey, RepoKey, repoKey } from "../types";

export interface RefChange {
  refId: string;
  fromHash?: string;
  toHash?: string;
  /** ADD | UPDATE | DELETE as Bitbucket spells it. */
  type?: string;
}

export type WebhookDecision =
  | { kind: "ping" }
  | { kind: "refs_changed"; eventKey: string; repo: RepoKey; changes: RefChange[] }
  | { kind: "catalog"; eventKey: string; repos: RepoKey[] }
  | { kind: "ignored"; eventKey: string }
  | { kind: "malformed"; message: string };

export const CATALOG_EVENTS: readonly string[] = ["repo:modified", "repo:forked", "proj:modified"];

/** More changes than this in one push are cut: the sync fetches everything anyway. */
const MAX_CHANGES = 1000;


export function decideWebhook(headerEventKey: string | undefined, body: Buffer): WebhookDecision {
  let json: unknown;
  try {
    json = JSON.parse(body.toString("utf8"));
  } catch {
    // Bitbucket's test request is answered whatever its body looks like.
    if (headerEventKey === "diagnostics:ping") return { kind: "ping" };
    return { kind: "malformed", message: "body is not valid JSON" };
  }
  const obj = isObject(json) ? json : undefined;
  const eventKey = typeof obj?.eventKey === "string" ? obj.eventKey : headerEventKey;
  if (eventKey === "diagnostics:ping") return { kind: "ping" };
  if (!obj) return { kind: "malformed", message: "body must be a JSON object" };
  if (!eventKey) return { kind: "malformed", message: "no event key (X-Event-Key header or eventKey field)" };

  if (eventKey === "repo:refs_changed") {
    const repo = repoOf(obj.repository);
    if (!repo) return { kind: "malformed", message: "repo:refs_changed needs repository.slug and repository.project.key" };
    return { kind: "refs_changed", eventKey, repo, changes: changesOf(obj.changes) };
  }
  if (CATALOG_EVENTS.includes(eventKey)) {
    const repos = [obj.old, obj.new, obj.repository].map(repoOf).filter((r): r is RepoKey => r !== undefined);
    return { kind: "catalog", eventKey, repos: [...new Set(repos)] };
  }
  return { kind: "ignored", eventKey };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function repoOf(v: unknown): RepoKey | undefined {
  if (!isObject(v) || !isObject(v.project)) return undefined;
  const { slug } = v;
  const { key } = v.project;
  // The rule the catalog and the store use (sync/repoName.ts), personal "~user" keys included.
  if (typeof slug !== "string" || typeof key !== "string" || !isValidRepoId({ project: key, slug })) return undefined;
  const k = repoKey({ project: key, slug });
  parseRepoKey(k); // the one shape check shared with the rest of the daemon
  return k;
}

function changesOf(v: unknown): RefChange[] {
  if (!Array.isArray(v)) return [];
  const out: RefChange[] = [];
  for (const c of v.slice(0, MAX_CHANGES)) {
    if (!isObject(c)) continue;
    const refId = typeof c.refId === "string" ? c.refId : isObject(c.ref) && typeof c.ref.id === "string" ? c.ref.id : undefined;
    if (!refId) continue;
    const ch: RefChange = { refId };
    if (typeof c.fromHash === "string") ch.fromHash = c.fromHash;
    if (typeof c.toHash === "string") ch.toHash = c.toHash;
    if (typeof c.type === "string") ch.type = c.type;
    out.push(ch);
  }
  return out;
}
