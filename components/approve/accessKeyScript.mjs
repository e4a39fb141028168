// "Approve the mirror": register (or revoke) the mirror's SSH public key as a READ-ONLY access
// key on the primary's projects or repositories, through Bitbucket's REST API
// (POST /rest/keys/1.0/projects/{key}/ssh with PROJECT_READ, .../repos/{slug}/ssh with REPO_READ).
//
// Run by a command.local.Command during `pulumi up` (register) and `pulumi destroy` (revoke):
//   node --input-type=module -e "$SMART_MIRROR_ACCESS_KEY_SCRIPT" register|revoke
// Everything comes from the environment, so the token never appears in a command line:
//   BITBUCKET_URL        the primary's https base URL
//   BITBUCKET_TOKEN      HTTP access token with PROJECT_ADMIN / REPO_ADMIN on the targets (secret)
//   MIRROR_PUBLIC_KEY    "ssh-ed25519 AAAA... comment"
//   ACCESS_KEY_PROJECTS  "ALL" (every project the token sees), "PROJ,OPS", or empty
//   ACCESS_KEY_REPOS     "PROJ/repo,OPS/tools", or empty
//   PRIMARY_CA_PEM       extra CA certificates for the primary's HTTPS (optional)
// Plain node (>= 18), no dependencies. Idempotent: a key already granted is left alone.
// Prints a JSON summary on stdout; errors on stderr, never the token.
import * as https from "node:https";
import * as tls from "node:tls";

const action = process.argv[process.argv.length - 1];
const env = process.env;

function fail(message) {
  process.stderr.write(`smart-mirror access key: ${message}\n`);
  process.exit(1);
}

function required(name) {
  const v = (env[name] ?? "").trim();
  if (v === "") fail(`${name} is not set`);
  return v;
}

if (action !== "register" && action !== "revoke") fail(`unknown action ${JSON.stringify(action)}; use register or revoke`);
const base = required("BITBUCKET_URL").replace(/\/+$/, "");
if (!base.startsWith("https://")) fail(`BITBUCKET_URL must be https:// (got ${base}): the token is never sent over plain HTTP`);
const token = required("BITBUCKET_TOKEN");
const keyText = required("MIRROR_PUBLIC_KEY");
const keyId = keyText.split(/\s+/).slice(0, 2).join(" ");
const list = (v) =>
  (v ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
const projectSpec = (env.ACCESS_KEY_PROJECTS ?? "").trim();
const repos = list(env.ACCESS_KEY_REPOS).map((r) => {
  const [project, slug, extra] = r.split("/");
  if (!project || !slug || extra !== undefined) fail(`ACCESS_KEY_REPOS entry ${JSON.stringify(r)} is not PROJECT/slug`);
  return { project, slug };
});
const extraCa = (env.PRIMARY_CA_PEM ?? "").trim();
const ca = extraCa ? [...tls.rootCertificates, extraCa] : undefined;

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function request(method, path, body) {
  const url = new URL(base + path);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method,
        ca,
        timeout: 30000,
        headers: {
          authorization: `Bearer ${token}`,
          accept: "application/json",
          ...(payload ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } : {}),
        },
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolve(json);
          const why = json?.errors?.map((e) => e.message).join("; ") || text.slice(0, 200) || res.statusMessage;
          reject(new HttpError(status, `${method} ${url.pathname}: HTTP ${status}: ${why}`));
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${url.pathname}: no answer within 30 s`)));
    req.on("error", reject);
    if (payload) req.write(payload);
    req.end();
  });
}

/** Every value of a Bitbucket paged API. */
async function paged(path) {
  const out = [];
  let start = 0;
  for (;;) {
    const sep = path.includes("?") ? "&" : "?";
    const page = await request("GET", `${path}${sep}start=${start}&limit=100`);
    out.push(...(page?.values ?? []));
    if (!page || page.isLastPage !== false || page.nextPageStart === undefined) return out;
    start = page.nextPageStart;
  }
}

const enc = encodeURIComponent;
const sameKey = (text) => typeof text === "string" && text.split(/\s+/).slice(0, 2).join(" ") === keyId;

const repoTargets = () => repos.map((r) => ({ what: `${r.project}/${r.slug}`, path: `/rest/keys/1.0/projects/${enc(r.project)}/repos/${enc(r.slug)}/ssh`, permission: "REPO_READ" }));

async function projectKeys() {
  if (projectSpec === "ALL") return (await paged("/rest/api/1.0/projects")).map((p) => p.key);
  return list(projectSpec);
}

function explain(e, what) {
  if (e instanceof HttpError && e.status === 401) {
    return `${e.message} — the token must have PROJECT_ADMIN (REPO_ADMIN for a repository) on ${what}, or is not valid`;
  }
  return e instanceof Error ? e.message : String(e);
}

async function main() {
  const all = [
    ...(await projectKeys()).map((p) => ({ what: p, path: `/rest/keys/1.0/projects/${enc(p)}/ssh`, permission: "PROJECT_READ" })),
    ...repoTargets(),
  ];
  const summary = { action, key: keyId.slice(0, 24) + "...", granted: [], alreadyGranted: [], revoked: [], notFound: [] };
  const errors = [];
  for (const t of all) {
    try {
      let existing = [];
      try {
        existing = (await paged(t.path)).filter((v) => sameKey(v?.key?.text));
      } catch (e) {
        if (e instanceof HttpError && e.status === 404) {
          if (action === "revoke") {
            summary.notFound.push(t.what);
            continue;
          }
        }
        throw e;
      }
      if (action === "register") {
        if (existing.length > 0) {
          summary.alreadyGranted.push(t.what);
          const perm = existing[0].permission;
          if (perm && perm !== t.permission) process.stderr.write(`smart-mirror access key: warning: on ${t.what} the key has ${perm}; the mirror needs only ${t.permission}\n`);
          continue;
        }
        try {
          await request("POST", t.path, { key: { text: keyText }, permission: t.permission });
          summary.granted.push(t.what);
        } catch (e) {
          if (e instanceof HttpError && e.status === 409) summary.alreadyGranted.push(t.what);
          else throw e;
        }
      } else {
        for (const v of existing) await request("DELETE", `${t.path}/${enc(String(v.key.id))}`);
        (existing.length > 0 ? summary.revoked : summary.notFound).push(t.what);
      }
    } catch (e) {
      errors.push(explain(e, t.what));
    }
  }
  process.stdout.write(JSON.stringify(summary) + "\n");
  if (errors.length > 0) {
    const hint =
      action === "revoke"
        ? "; remove the access key by hand in the primary (Project settings > Access keys), then run the destroy again"
        : "";
    fail(`${errors.length} of ${all.length} target(s) failed:\n  ${errors.join("\n  ")}${hint}`);
  }
}

main().catch((e) => fail(e instanceof Error ? e.message : String(e)));
