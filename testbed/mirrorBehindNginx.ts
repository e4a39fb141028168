/**
 * The production serving path on loopback: git clients over real TLS -> real nginx running
 * the site components/render/nginx.ts renders -> the daemon's unix socket -> the built daemon
 * (`node dist/smart-mirror.js run --home DIR`, as systemd runs it) -> git upload-pack, with the
 * daemon syncing from a bench primary over SSH.
 *
 *     const m = await startMirrorBehindNginx({ primary, repos: [{ project: "PROJ", slug: "app" }] });
 *     await m.waitSynchronized();
 *     await git(["clone", m.url("PROJ", "app"), dest], { env: m.gitEnv() });
 *
 * Clients reach `https://mirror.test:PORT/` through `http.curloptResolve` (in gitEnv(), as
 * GIT_CONFIG_* variables, so every git started with it resolves the name to 127.0.0.1) and
 * trust the bench CA through GIT_SSL_CAINFO: the certificate is verified for the DNS name, the
 * way a user's git verifies a real mirror.
 */
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as os from "node:os";
import * as path from "node:path";
import { renderNginxSite, NginxSiteInput } from "../components/render/nginx";
import { controlPathFor } from "../sync/upstream/openssh";
import { webhookHeaders } from "./webhook";
import { repoDir } from "../sync/homeLayout";
import { runDaemon, StatusDoc } from "./daemonProcess";
import { makeMirrorHome, MirrorHome, writeMirrorProperties } from "./mirrorHome";
import { NginxContext, NginxHandle, startNginx } from "./nginx";
import type { Primary } from "./primary";
import { GitEnv, isolatedGitEnv } from "./repos";
import { freePort, onCleanup, tempDir, TrackedProcess, waitFor } from "./resources";
import { createCa, ServerCert, TestCa } from "./tls";

export const MIRROR_NAME = "mirror.test";

export interface RepoRef {
  project: string;
  slug: string;
}

export interface HttpsAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** TLS, a site name and a port: what a client needs to reach an nginx in front of something. */
export interface TlsFront {
  ca: TestCa;
  cert: ServerCert;
  port: number;
  nginx: NginxHandle;
  /** `https://mirror.test:PORT` */
  base: string;
  /** git's environment: the bench isolation, the CA, and mirror.test resolved to 127.0.0.1. */
  gitEnv(extra?: GitEnv): GitEnv;
  /** One request on a fresh TLS connection, verified against the bench CA as mirror.test. */
  request(method: string, target: string, opts?: { headers?: http.OutgoingHttpHeaders; body?: Buffer | string }): Promise<HttpsAnswer>;
}

export interface MirrorBehindNginx extends TlsFront {
  mh: MirrorHome;
  /** The daemon's unix socket (nginx's upstream). */
  socketPath: string;
  daemon: TrackedProcess;
  /** `https://mirror.test:PORT/scm/PROJECT/slug.git` */
  url(project: string, slug: string): string;
  /** The served bare repository on disk. */
  repoDir(project: string, slug: string): string;
  /** Poll GET /status (through nginx) until the state is one of `states`. */
  waitForState(states: string[], timeoutMs?: number): Promise<StatusDoc>;
  /** SYNCHRONIZED with every catalog repository synced. */
  waitSynchronized(timeoutMs?: number): Promise<StatusDoc>;
  /** POST a signed Bitbucket repo:refs_changed body to /webhook through nginx; the status. */
  postWebhook(body: string): Promise<number>;
}

export interface MirrorBehindNginxOptions {
  primary: Primary;
  repos: RepoRef[];
  /** Enables /webhook with this HMAC secret. */
  webhookSecret?: string;
  /** More properties (mirror.log.level, ...). */
  properties?: Record<string, string>;
  /** Overrides for the rendered site (paths, ports and upstream are set here). */
  site?: Partial<NginxSiteInput>;
  /** nginx workers (production: auto = one per core). Default 1. */
  workerProcesses?: number;
  /** Environment for the daemon process, over process.env. */
  daemonEnv?: NodeJS.ProcessEnv;
  /** The CA and certificate nginx serves (default: a CA of its own); a farm's nodes share one CA. */
  tls?: { ca: TestCa; cert: ServerCert };
}

/** A CA and a leaf for mirror.test (and 127.0.0.1, for clients that connect by address). */
export async function mirrorCertificate(): Promise<{ ca: TestCa; cert: ServerCert }> {
  const ca = await createCa();
  return { ca, cert: await ca.issueServerCert([MIRROR_NAME, "127.0.0.1"]) };
}

/**
 * A complete nginx.conf around one site file, everything inside the bench prefix: the shape of
 * Debian's nginx.conf including conf.d/*.conf, as the local plan writes it (localPlan.ts).
 */
export function fullNginxConf(ctx: NginxContext, sitePath: string): string {
  return [ctx.mainDirectives, "events {", "    worker_connections 1024;", "}", "http {", ctx.httpDirectives, "sendfile on;", "tcp_nopush on;", `include ${sitePath};`, "}", ""].join("\n");
}

/** A real nginx serving one site file (conf.d/NAME, rendered by `site`) on 127.0.0.1:port. */
export function startNginxSite(name: string, port: number, site: (ctx: NginxContext) => string, workerProcesses?: number): Promise<NginxHandle> {
  return startNginx(
    (ctx) => {
      const sitePath = path.join(ctx.prefix, "conf.d", name);
      fs.mkdirSync(path.dirname(sitePath), { recursive: true });
      fs.writeFileSync(sitePath, site(ctx));
      return fullNginxConf(ctx, sitePath);
    },
    { fullConfig: true, workerProcesses, waitFor: [{ host: "127.0.0.1", port }] },
  );
}

/** The client side of a TLS front (pure apart from the requests it makes). */
export function tlsClient(ca: TestCa, port: number): Pick<TlsFront, "base" | "gitEnv" | "request"> {
  const gitEnv = (extra: GitEnv = {}): GitEnv =>
    isolatedGitEnv({
      GIT_SSL_CAINFO: ca.certPath,
      // git >= 2.37: like curl --resolve. Passed as config in the environment so it reaches
      // git-remote-https of every git command started with this env.
      GIT_CONFIG_COUNT: "1",
      GIT_CONFIG_KEY_0: "http.curloptResolve",
      GIT_CONFIG_VALUE_0: `${MIRROR_NAME}:${port}:127.0.0.1`,
      ...extra,
    });
  const request: TlsFront["request"] = (method, target, opts = {}) =>
    new Promise((resolve, reject) => {
      const req = https.request(
        { host: "127.0.0.1", port, servername: MIRROR_NAME, ca: ca.certPem, method, path: target, headers: { Host: `${MIRROR_NAME}:${port}`, ...opts.headers }, agent: false, timeout: 60_000 },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.on("timeout", () => req.destroy(new Error(`${method} ${target} timed out`)));
      req.end(opts.body);
    });
  return { base: `https://${MIRROR_NAME}:${port}`, gitEnv, request };
}

/**
 * A home for the daemon, with its ControlMaster directory cleaned up afterwards: a home under
 * the bench root has a path too long for a unix socket, so the daemon uses a short
 * /tmp/smcm-* directory (controlPathFor) and leaves it.
 */
async function mirrorHome(primary: Primary): Promise<MirrorHome> {
  const mh = await makeMirrorHome(primary);
  onCleanup(() => {
    const dir = path.dirname(controlPathFor(mh.home));
    if (path.dirname(dir) === os.tmpdir() && path.basename(dir).startsWith("smcm-")) fs.rmSync(dir, { recursive: true, force: true });
  });
  return mh;
}

/**
 * The rendered site in a real nginx on a free loopback port, proxying to `upstream` (the
 * daemon's unix socket, or a TCP address of an in-process server).
 */
export async function startTlsFront(
  tls: { ca: TestCa; cert: ServerCert },
  upstream: NginxSiteInput["upstreamSocket"],
  site: Partial<NginxSiteInput> = {},
  workerProcesses?: number,
): Promise<TlsFront> {
  const { ca, cert } = tls;
  const port = await freePort();
  const nginx = await startNginxSite(
    "smart-mirror.conf",
    port,
    (ctx) =>
      renderNginxSite({
        serverName: MIRROR_NAME,
        listenAddresses: ["127.0.0.1"],
        listenHttps: port,
        listenHttp: false,
        certPath: cert.chainPath,
        keyPath: cert.keyPath,
        upstreamSocket: upstream,
        accessLog: path.join(ctx.logsDir, "site.access.log"),
        errorLog: path.join(ctx.logsDir, "site.error.log"),
        tmpDir: ctx.tempDir,
        ...site,
      }),
    workerProcesses,
  );
  return { ca, cert, port, nginx, ...tlsClient(ca, port) };
}

export async function startMirrorBehindNginx(o: MirrorBehindNginxOptions): Promise<MirrorBehindNginx> {
  const { ca, cert } = o.tls ?? (await mirrorCertificate());
  const mh = await mirrorHome(o.primary);
  // A short path of its own (sun_path holds 107 bytes); nginx's workers run as root on the bench.
  const socketPath = path.join(tempDir("sock"), "http.sock");
  // Like the component: the daemon exports the expiry of the certificate nginx serves.
  const extra = { "mirror.metrics.tlsCertificateFile": cert.chainPath, ...o.properties };
  writeMirrorProperties(mh, o.primary, { repos: o.repos, listen: `unix:${socketPath}`, webhookSecret: o.webhookSecret, extra });
  const daemon = runDaemon(mh.home, o.daemonEnv);
  await waitFor(
    "the daemon's unix socket",
    () => {
      if (daemon.child.exitCode !== null) throw new Error(`the daemon exited (${daemon.child.exitCode}): ${daemon.output()}`);
      return fs.existsSync(socketPath);
    },
    60_000,
    25,
  );

  const { nginx, port, ...client } = await startTlsFront({ ca, cert }, socketPath, o.site, o.workerProcesses);

  const waitForState = (states: string[], timeoutMs = 120_000) =>
    waitFor(
      `mirror /status in ${states.join("|")}`,
      async () => {
        if (daemon.child.exitCode !== null) throw new Error(`the daemon exited (${daemon.child.exitCode}): ${daemon.output()}`);
        const r = await client.request("GET", "/status");
        const doc = JSON.parse(r.body.toString("utf8")) as StatusDoc;
        return states.includes(doc.state) ? doc : undefined;
      },
      timeoutMs,
      100,
    );

  return {
    ...client,
    ca,
    cert,
    port,
    nginx,
    mh,
    socketPath,
    daemon,
    url: (project, slug) => `${client.base}/scm/${project}/${slug}.git`,
    repoDir: (project, slug) => repoDir(mh.home, { project, slug }),
    waitForState,
    waitSynchronized: (timeoutMs = 300_000) =>
      waitFor(
        `all ${o.repos.length} repositories synced`,
        async () => {
          const doc = await waitForState(["SYNCHRONIZED"], timeoutMs);
          return doc.syncedRepos === o.repos.length && doc.totalRepos === o.repos.length ? doc : undefined;
        },
        timeoutMs,
        100,
      ),
    postWebhook: async (body) => {
      if (o.webhookSecret === undefined) throw new Error("startMirrorBehindNginx: no webhookSecret given");
      const r = await client.request("POST", "/webhook", {
        headers: webhookHeaders(o.webhookSecret, body),
        body,
      });
      return r.status;
    },
  };
}
