/**
 * The catalog from the primary's Bitbucket Data Center REST API: every repository the
 * mirror's token can read, via the paged `GET /rest/api/1.0/repos` resource
 * (https://developer.atlassian.com/server/bitbucket/rest/v811/api-group-repository/ ,
 * paging: https://developer.atlassian.com/server/bitbucket/rest/v811/intro/#paged-apis).
 * TLS is always verified, against the system CAs plus an optional extra CA bundle.
 */
import * as https from "node:https";
import * as tls from "node:tls";
import { RepoId } from "../types";

export interface RestCatalogOptions {
  /** The primary's base URL, `https://...` (plugin.mirroring.upstream.url). */
  baseUrl: string;
  token?: string;
  /** Extra CA certificates (PEM) trusted in addition to the system store. */
  ca?: string;
  pageSize?: number;
  timeoutMs?: number;
}

interface Page<T> {
  values: T[];
  isLastPage: boolean;
  nextPageStart?: number;
}

interface RestRepo {
  slug: string;
  project: { key: string };
  state?: string;
}

export class RestError extends Error {
  override name = "RestError";
  constructor(message: string, readonly status?: number) {
    super(message);
  }
}

export async function listRepos(o: RestCatalogOptions): Promise<RepoId[]> {
  const out: RepoId[] = [];
  let start = 0;
  for (let pages = 0; pages < 100000; pages++) {
    const page = await getJson<Page<RestRepo>>(o, `/rest/api/1.0/repos?start=${start}&limit=${o.pageSize ?? 1000}`);
    for (const r of page.values) {
      // Repositories still being created or that failed to initialise have nothing to mirror yet.
      if (r.state === undefined || r.state === "AVAILABLE") out.push({ project: r.project.key, slug: r.slug });
    }
    if (page.isLastPage || page.nextPageStart === undefined) return out;
    start = page.nextPageStart;
  }
  throw new RestError("the primary's repository list did not end after 100000 pages");
}

function getJson<T>(o: RestCatalogOptions, pathAndQuery: string): Promise<T> {
  const url = new URL(pathAndQuery, o.baseUrl.endsWith("/") ? o.baseUrl : o.baseUrl + "/");
  // The base URL may carry a context path (https://host/bitbucket): keep it.
  const base = new URL(o.baseUrl);
  url.pathname = base.pathname.replace(/\/$/, "") + pathAndQuery.split("?")[0];
  return new Promise((resolve, reject) => {
    const ca = o.ca ? [...tls.rootCertificates, o.ca] : undefined;
    const req = https.get(
      url,
      {
        ca,
        headers: { Accept: "application/json", ...(o.token ? { Authorization: `Bearer ${o.token}` } : {}) },
        timeout: o.timeoutMs ?? 30000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > 32 * 1024 * 1024) req.destroy(new RestError("response from the primary is over 32 MiB"));
          else chunks.push(c);
        });
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          if (res.statusCode === 401 || res.statusCode === 403) {
            return reject(new RestError(`the primary refused the mirror's token (HTTP ${res.statusCode}) for ${url.pathname}: check mirror.upstream.tokenFile holds a valid token with read access`, res.statusCode));
          }
          if (res.statusCode !== 200) return reject(new RestError(`the primary answered HTTP ${res.statusCode} for ${url.pathname}: ${text.slice(0, 200)}`, res.statusCode));
          try {
            resolve(JSON.parse(text) as T);
          } catch {
            reject(new RestError(`the primary sent invalid JSON for ${url.pathname}`));
          }
        });
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new RestError(`the primary did not answer ${url.pathname} within ${o.timeoutMs ?? 30000} ms`)));
    req.on("error", (e) => reject(e instanceof RestError ? e : new RestError(`cannot reach the primary's REST API at ${url.origin}: ${e.message}`)));
  });
}
