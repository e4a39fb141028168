import * as fs from "node:fs";
import * as https from "node:https";
import * as path from "node:path";
import { BitbucketDouble, paginate, parseSshPublicKey, startBitbucketDouble } from "./bitbucketDouble";
import { runCommand } from "./netnsHost";
import { tempDir } from "./resources";
import { createCa, TestCa } from "./tls";

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

interface CallOptions {
  auth?: string;
  body?: unknown;
  rawBody?: string;
  /** CA to trust; null = node's default roots only. */
  ca?: string | null;
}

let ca: TestCa;
let cert: { cert: string; key: string };

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

/** One HTTPS request by IP, verifying the certificate for "localhost" (the double's public name). */
function call(d: BitbucketDouble, method: string, urlPath: string, o: CallOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const payload = o.rawBody ?? (o.body === undefined ? undefined : JSON.stringify(o.body));
    const req = https.request(
      {
        host: "127.0.0.1",
        servername: "localhost",
        port: d.port,
        method,
        path: urlPath,
        agent: false,
        ca: o.ca === null ? undefined : (o.ca ?? ca.certPem),
        headers: { accept: "application/json", ...(o.auth ? { authorization: o.auth } : {}), ...(payload !== undefined ? { "content-type": "application/json" } : {}) },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => {
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}

async function sshPublicKey(comment: string): Promise<string> {
  const file = path.join(tempDir("bbkey"), "id");
  const r = await runCommand("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file]);
  if (r.code !== 0) throw new Error(r.stderr);
  return fs.readFileSync(`${file}.pub`, "utf8").trim();
}

beforeAll(async () => {
  ca = await createCa("bitbucket double test CA");
  const leaf = await ca.issueServerCert(["localhost", "127.0.0.1"]);
  cert = { cert: fs.readFileSync(leaf.certPath, "utf8"), key: fs.readFileSync(leaf.keyPath, "utf8") };
});

const ADMIN = basic("admin", "s3cret");

async function double(extra: Partial<Parameters<typeof startBitbucketDouble>[0]> = {}): Promise<BitbucketDouble> {
  const d = await startBitbucketDouble({ ...cert, ...extra });
  d.addUser("admin", "s3cret", { token: "tok-admin", admin: true });
  return d;
}

test("paging: 60 projects at limit 25 are 3 pages linked by nextPageStart", async () => {
  const d = await double();
  for (let i = 0; i < 60; i++) d.addProject(`P${String(i).padStart(2, "0")}`);
  const seen: string[] = [];
  const pages = [];
  let start: number | undefined = 0;
  while (start !== undefined) {
    const r = await call(d, "GET", `/rest/api/1.0/projects?start=${start}&limit=25`, { auth: ADMIN });
    expect(r.status).toBe(200);
    pages.push(r.json);
    seen.push(...r.json.values.map((p: { key: string }) => p.key));
    start = r.json.isLastPage ? undefined : r.json.nextPageStart;
  }
  expect(pages.map((p) => [p.start, p.size, p.limit, p.isLastPage, p.nextPageStart])).toEqual([
    [0, 25, 25, false, 25],
    [25, 25, 25, false, 50],
    [50, 10, 25, true, undefined],
  ]);
  expect("nextPageStart" in pages[2]).toBe(false);
  expect(seen).toEqual(Array.from({ length: 60 }, (_, i) => `P${String(i).padStart(2, "0")}`));
  // Defaults and the hard cap.
  const dflt = await call(d, "GET", "/rest/api/1.0/projects", { auth: ADMIN });
  expect([dflt.json.limit, dflt.json.size, dflt.json.nextPageStart]).toEqual([25, 25, 25]);
  const capped = await call(d, "GET", "/rest/api/1.0/projects?limit=5000", { auth: ADMIN });
  expect([capped.json.limit, capped.json.size, capped.json.isLastPage]).toEqual([1000, 60, true]);
  const small = await startBitbucketDouble({ ...cert, maxLimit: 10 });
  small.addUser("u", "p");
  small.addProject("A");
  expect((await call(small, "GET", "/rest/api/1.0/projects?limit=50", { auth: basic("u", "p") })).json.limit).toBe(10);
});

test("projects, repos and a single repo have Bitbucket's shapes", async () => {
  const d = await double({ sshCloneUrl: (p, s) => `ssh://git@10.0.0.9:22/srv/git/${p}/${s}.git` });
  d.addProject("PROJ", "The Project", "demo");
  d.addRepo("PROJ", "api", "API");
  d.addRepo("PROJ", "web");
  d.addRepo("OTHER", "lib");
  const r = await call(d, "GET", "/rest/api/1.0/projects/PROJ/repos/api", { auth: ADMIN });
  expect(r.status).toBe(200);
  expect(r.headers["content-type"]).toMatch(/^application\/json/);
  expect(r.json).toEqual({
    slug: "api",
    id: expect.any(Number),
    name: "API",
    hierarchyId: expect.any(String),
    scmId: "git",
    state: "AVAILABLE",
    statusMessage: "Available",
    forkable: true,
    project: {
      key: "PROJ",
      id: expect.any(Number),
      name: "The Project",
      description: "demo",
      public: false,
      type: "NORMAL",
      links: { self: [{ href: `${d.url}/projects/PROJ` }] },
    },
    public: false,
    archived: false,
    links: {
      clone: [
        { href: "ssh://git@10.0.0.9:22/srv/git/PROJ/api.git", name: "ssh" },
        { href: `${d.url}/scm/proj/api.git`, name: "http" },
      ],
      self: [{ href: `${d.url}/projects/PROJ/repos/api/browse` }],
    },
  });
  expect(d.url).toBe(`https://localhost:${d.port}`);
  const inProject = await call(d, "GET", "/rest/api/1.0/projects/PROJ/repos?limit=1", { auth: ADMIN });
  expect(inProject.json.values.map((x: { slug: string }) => x.slug)).toEqual(["api"]);
  expect([inProject.json.isLastPage, inProject.json.nextPageStart]).toEqual([false, 1]);
  const all = await call(d, "GET", "/rest/api/latest/repos", { auth: ADMIN });
  expect(all.json.values.map((x: { project: { key: string }; slug: string }) => `${x.project.key}/${x.slug}`)).toEqual(["OTHER/lib", "PROJ/api", "PROJ/web"]);
  expect((await call(d, "GET", "/rest/api/1.0/projects/PROJ", { auth: ADMIN })).json.key).toBe("PROJ");

  // Rename keeps the id (what a mirror uses to tell a rename from delete+create); remove removes.
  const id = r.json.id;
  d.renameRepo("PROJ", "api", "api2");
  expect((await call(d, "GET", "/rest/api/1.0/projects/PROJ/repos/api", { auth: ADMIN })).status).toBe(404);
  expect((await call(d, "GET", "/rest/api/1.0/projects/PROJ/repos/api2", { auth: ADMIN })).json.id).toBe(id);
  d.removeRepo("PROJ", "web");
  const after = await call(d, "GET", "/rest/api/1.0/projects/PROJ/repos", { auth: ADMIN });
  expect(after.json.values.map((x: { slug: string }) => x.slug)).toEqual(["api2"]);
});

test("bad credentials are 401 with Bitbucket's error shape; good ones by Basic, token or Bearer work", async () => {
  const d = await double();
  d.addRepo("PROJ", "api");
  const url = "/rest/api/1.0/projects/PROJ/repos/api";
  for (const auth of [basic("admin", "wrong"), basic("nobody", "s3cret"), "Bearer nope", `Basic ${Buffer.from("no-colon").toString("base64")}`, "Negotiate abc"]) {
    const r = await call(d, "GET", url, { auth });
    expect(r.status).toBe(401);
    expect(r.headers["www-authenticate"]).toMatch(/^Basic /);
    expect(r.json).toEqual({
      errors: [{ context: null, message: expect.stringMatching(/Authentication failed/), exceptionName: "com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException" }],
    });
  }
  for (const auth of [ADMIN, "Bearer tok-admin", basic("admin", "tok-admin")]) expect((await call(d, "GET", url, { auth })).status).toBe(200);
  // Anonymous: nothing is public, so lists are empty and the repo is not permitted.
  expect((await call(d, "GET", "/rest/api/1.0/repos")).json).toEqual({ size: 0, limit: 25, isLastPage: true, values: [], start: 0 });
  const anon = await call(d, "GET", url);
  expect(anon.status).toBe(401);
  expect(anon.json.errors[0].exceptionName).toBe("com.atlassian.bitbucket.AuthorisationException");
});

test("read permission is respected in lists and single resources", async () => {
  for (const hiddenStatus of [401, 404] as const) {
    const d = await double({ hiddenStatus });
    d.addRepo("PROJ", "visible");
    d.addRepo("PROJ", "secret");
    d.addRepo("HIDE", "x");
    d.addUser("dev", "pw", { canRead: { repos: ["PROJ/visible"] } });
    d.addUser("lead", "pw", { canRead: (p) => p === "HIDE" });
    const dev = basic("dev", "pw");
    expect((await call(d, "GET", "/rest/api/1.0/projects/PROJ/repos/visible", { auth: dev })).status).toBe(200);
    const secret = await call(d, "GET", "/rest/api/1.0/projects/PROJ/repos/secret", { auth: dev });
    expect(secret.status).toBe(hiddenStatus);
    expect(secret.json.errors[0].exceptionName).toBe(hiddenStatus === 401 ? "com.atlassian.bitbucket.AuthorisationException" : "com.atlassian.bitbucket.repository.NoSuchRepositoryException");
    const missing = await call(d, "GET", "/rest/api/1.0/projects/PROJ/repos/nope", { auth: dev });
    expect(missing.status).toBe(404);
    expect(missing.json.errors[0]).toEqual({ context: null, message: "Repository PROJ/nope does not exist.", exceptionName: "com.atlassian.bitbucket.repository.NoSuchRepositoryException" });
    expect((await call(d, "GET", "/rest/api/1.0/repos", { auth: dev })).json.values.map((r: { slug: string }) => r.slug)).toEqual(["visible"]);
    expect((await call(d, "GET", "/rest/api/1.0/projects", { auth: dev })).json.values.map((p: { key: string }) => p.key)).toEqual(["PROJ"]);
    expect((await call(d, "GET", "/rest/api/1.0/projects/PROJ/repos", { auth: dev })).json.values.map((r: { slug: string }) => r.slug)).toEqual(["visible"]);
    expect((await call(d, "GET", "/rest/api/1.0/projects/HIDE/repos", { auth: dev })).status).toBe(hiddenStatus);
    expect((await call(d, "GET", "/rest/api/1.0/projects/NOPE/repos", { auth: dev })).status).toBe(404);
    // A predicate rule: the whole HIDE project and nothing else.
    const lead = basic("lead", "pw");
    expect((await call(d, "GET", "/rest/api/1.0/repos", { auth: lead })).json.values.map((r: { slug: string }) => r.slug)).toEqual(["x"]);
  }
});

test("SSH access keys are registered, listed, stored and checked", async () => {
  const d = await double();
  d.addRepo("PROJ", "api");
  d.addUser("dev", "pw");
  const mirrorKey = await sshPublicKey("mirror@eu-west-1");
  const [type, b64] = mirrorKey.split(" ");
  const url = "/rest/keys/1.0/projects/PROJ/repos/api/ssh";

  const created = await call(d, "POST", url, { auth: ADMIN, body: { key: { text: mirrorKey }, permission: "REPO_READ" } });
  expect(created.status).toBe(200);
  expect(created.json).toEqual({
    key: { id: expect.any(Number), text: mirrorKey, label: "mirror@eu-west-1", algorithmType: "ED25519", bitLength: 256 },
    repository: expect.objectContaining({ slug: "api", project: expect.objectContaining({ key: "PROJ" }) }),
    permission: "REPO_READ",
  });
  expect(d.accessKeys("PROJ", "api")).toEqual([expect.objectContaining({ text: `${type} ${b64}`, permission: "REPO_READ", projectKey: "PROJ", slug: "api" })]);
  // Registering again (e.g. a second `pulumi up`) updates, never duplicates.
  expect((await call(d, "POST", url, { auth: ADMIN, body: { key: { text: mirrorKey }, permission: "REPO_WRITE" } })).json.key.id).toBe(created.json.key.id);
  const listed = await call(d, "GET", url, { auth: ADMIN });
  expect([listed.json.size, listed.json.values[0].permission]).toEqual([1, "REPO_WRITE"]);

  // Project level, PROJECT_READ; the same key keeps its id.
  const proj = await call(d, "POST", "/rest/keys/1.0/projects/PROJ/ssh", { auth: ADMIN, body: { key: { text: mirrorKey }, permission: "PROJECT_READ" } });
  expect(proj.status).toBe(200);
  expect(proj.json.project.key).toBe("PROJ");
  expect(proj.json.key.id).toBe(created.json.key.id);
  expect(d.accessKeys("PROJ")).toHaveLength(1);
  expect((await call(d, "GET", "/rest/keys/1.0/projects/PROJ/ssh", { auth: ADMIN })).json.values).toHaveLength(1);

  // Not an admin: 401; junk key, wrong permission, broken JSON: 400 naming the field.
  const denied = await call(d, "POST", url, { auth: basic("dev", "pw"), body: { key: { text: mirrorKey } } });
  expect(denied.status).toBe(401);
  expect(denied.json.errors[0].exceptionName).toBe("com.atlassian.bitbucket.AuthorisationException");
  expect((await call(d, "GET", url, { auth: basic("dev", "pw") })).status).toBe(401);
  const junk = await call(d, "POST", url, { auth: ADMIN, body: { key: { text: "ssh-ed25519 AAAAnotakey" } } });
  expect(junk.status).toBe(400);
  expect(junk.json.errors[0].context).toBe("text");
  expect((await call(d, "POST", url, { auth: ADMIN, body: { key: { text: mirrorKey }, permission: "PROJECT_READ" } })).json.errors[0].context).toBe("permission");
  expect((await call(d, "POST", url, { auth: ADMIN, rawBody: "{not json" })).status).toBe(400);
  expect((await call(d, "POST", "/rest/keys/1.0/projects/PROJ/repos/nope/ssh", { auth: ADMIN, body: { key: { text: mirrorKey } } })).status).toBe(404);

  // Delete the grant.
  expect((await call(d, "DELETE", `${url}/${created.json.key.id}`, { auth: ADMIN })).status).toBe(204);
  expect(d.accessKeys("PROJ", "api")).toEqual([]);
});

test("malformed requests are 400, unknown paths 404, wrong methods 405", async () => {
  const d = await double();
  d.addRepo("PROJ", "api");
  expect((await call(d, "GET", "/rest/api/1.0/projects?start=-1", { auth: ADMIN })).status).toBe(400);
  expect((await call(d, "GET", "/rest/api/1.0/projects?limit=abc", { auth: ADMIN })).status).toBe(400);
  expect((await call(d, "GET", "/rest/api/1.0/projects?limit=0", { auth: ADMIN })).status).toBe(400);
  expect((await call(d, "GET", "/rest/api/1.0/projects/PROJ/repos/%E0%A4%A", { auth: ADMIN })).status).toBe(400);
  const unknown = await call(d, "GET", "/rest/api/1.0/nothing", { auth: ADMIN });
  expect(unknown.status).toBe(404);
  expect(unknown.json.errors).toHaveLength(1);
  const wrong = await call(d, "DELETE", "/rest/api/1.0/projects", { auth: ADMIN });
  expect(wrong.status).toBe(405);
  expect(wrong.headers.allow).toBe("GET");
});

test("TLS verifies with the bench CA and fails without it", async () => {
  const d = await double();
  expect((await call(d, "GET", "/rest/api/1.0/projects", { auth: ADMIN })).status).toBe(200);
  await expect(call(d, "GET", "/rest/api/1.0/projects", { auth: ADMIN, ca: null })).rejects.toMatchObject({ code: expect.stringMatching(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN/) });
  const other = await createCa("some other CA");
  await expect(call(d, "GET", "/rest/api/1.0/projects", { auth: ADMIN, ca: other.certPem })).rejects.toMatchObject({ code: expect.any(String) });
  // A real non-node client too: curl with the CA bundle.
  const curl = await runCommand("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", ca.certPath, "--resolve", `localhost:${d.port}:127.0.0.1`, "-u", "admin:s3cret", `${d.url}/rest/api/1.0/projects`]);
  expect(curl.stdout).toBe("200");
});

test("the request log counts calls per user; outages are 503 or connection refused", async () => {
  const d = await double();
  d.addRepo("PROJ", "api");
  d.addUser("dev", "pw");
  await call(d, "GET", "/rest/api/1.0/repos?limit=10", { auth: ADMIN });
  await call(d, "GET", "/rest/api/1.0/repos", { auth: basic("dev", "pw") });
  await call(d, "GET", "/rest/api/1.0/repos", { auth: basic("dev", "bad") });
  expect(d.requests).toEqual([
    { method: "GET", path: "/rest/api/1.0/repos", query: "?limit=10", user: "admin", status: 200 },
    { method: "GET", path: "/rest/api/1.0/repos", query: "", user: "dev", status: 200 },
    { method: "GET", path: "/rest/api/1.0/repos", query: "", user: null, status: 401 },
  ]);

  await d.setDown("503");
  const down = await call(d, "GET", "/rest/api/1.0/repos", { auth: ADMIN });
  expect(down.status).toBe(503);
  expect(down.json.errors[0].message).toMatch(/unavailable/);

  await d.setDown(true);
  await expect(call(d, "GET", "/rest/api/1.0/repos", { auth: ADMIN })).rejects.toMatchObject({ code: "ECONNREFUSED" });
  await d.setDown(false);
  expect((await call(d, "GET", "/rest/api/1.0/repos", { auth: ADMIN })).status).toBe(200);
  expect(d.requests.map((r) => r.status)).toEqual([200, 200, 401, 503, 200]);
});

describe("pure helpers", () => {
  test("paginate", () => {
    const items = Array.from({ length: 7 }, (_, i) => i);
    expect(paginate(items, 0, 3)).toEqual({ size: 3, limit: 3, isLastPage: false, values: [0, 1, 2], start: 0, nextPageStart: 3 });
    expect(paginate(items, 6, 3)).toEqual({ size: 1, limit: 3, isLastPage: true, values: [6], start: 6 });
    expect(paginate(items, 4, 3)).toEqual({ size: 3, limit: 3, isLastPage: true, values: [4, 5, 6], start: 4 });
    expect(paginate(items, 9, 3)).toEqual({ size: 0, limit: 3, isLastPage: true, values: [], start: 9 });
  });

  test("parseSshPublicKey accepts real keys and rejects look-alikes", async () => {
    const k = await sshPublicKey("c o m m e n t");
    expect(parseSshPublicKey(k)).toMatchObject({ type: "ssh-ed25519", comment: "c o m m e n t", bitLength: 256 });
    const [, b64] = k.split(" ");
    expect(parseSshPublicKey(`ssh-rsa ${b64}`)).toBeUndefined(); // type does not match the blob
    expect(parseSshPublicKey("ssh-ed25519 AAAA")).toBeUndefined();
    expect(parseSshPublicKey("hello")).toBeUndefined();
    const rsaFile = path.join(tempDir("rsa"), "id");
    await runCommand("ssh-keygen", ["-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", rsaFile]);
    expect(parseSshPublicKey(fs.readFileSync(`${rsaFile}.pub`, "utf8"))).toMatchObject({ algorithmType: "RSA", bitLength: 2048 });
  });
});
