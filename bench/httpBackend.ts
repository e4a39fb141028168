/**
 * The usual way to serve Git over HTTPS, as the baseline for the clone benchmarks: nginx
 * (TLS) -> fcgiwrap over a unix socket -> git-http-backend -> git upload-pack, on the same
 * repositories the mirror serves (GIT_PROJECT_ROOT = the mirror home's repos/), with the same
 * certificate and the same nginx settings as our rendered site where they apply: Mozilla
 * intermediate TLS, HTTP/1.1, request and response streaming (no buffering, 64k relay buffer),
 * gzip off, hour-long idle timeouts. Git-Protocol reaches git as GIT_PROTOCOL, so protocol v2
 * works as it does with ours.
 *
 * fcgiwrap runs one CGI request per preforked worker at a time; `workers` is set to the
 * daemon's upload-pack slot count by the benchmarks, so both sides run the same number of git
 * processes at once and queue the rest (fcgiwrap's queue is the socket's listen backlog).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { HSTS_MAX_AGE_SECONDS, MOZILLA_INTERMEDIATE_CIPHERS } from "../components/render/nginx";
import { MIRROR_NAME, startNginxSite, TlsFront, tlsClient } from "../testbed/mirrorBehindNginx";
import { freePort, spawnTracked, tempDir, TrackedProcess, waitFor } from "../testbed/resources";
import type { ServerCert, TestCa } from "../testbed/tls";

export const FCGIWRAP = "/usr/sbin/fcgiwrap";
export const GIT_HTTP_BACKEND = "/usr/lib/git-core/git-http-backend";

export interface HttpBackendSiteInput {
  serverName: string;
  port: number;
  certPath: string;
  keyPath: string;
  /** fcgiwrap's unix socket. */
  socketPath: string;
  /** Directory holding PROJECT/slug.git (GIT_PROJECT_ROOT). */
  projectRoot: string;
  logsDir: string;
  tmpDir: string;
}

/** The server block (inside http {}): /scm/PROJECT/slug.git/... -> git-http-backend. Pure. */
export function renderHttpBackendSite(i: HttpBackendSiteInput): string {
  return `# git-http-backend behind fcgiwrap: the baseline of bench/clone.ts and bench/concurrent.ts.
server {
    listen 127.0.0.1:${i.port} ssl;
    server_name ${i.serverName};
    server_tokens off;

    ssl_certificate ${i.certPath};
    ssl_certificate_key ${i.keyPath};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers ${MOZILLA_INTERMEDIATE_CIPHERS.join(":")};
    ssl_prefer_server_ciphers off;
    ssl_session_timeout 1d;
    ssl_session_cache shared:http_backend_tls:10m;
    ssl_session_tickets off;
    add_header Strict-Transport-Security "max-age=${HSTS_MAX_AGE_SECONDS}" always;

    access_log ${path.join(i.logsDir, "http-backend.access.log")};
    error_log ${path.join(i.logsDir, "http-backend.error.log")} warn;
    client_body_temp_path ${i.tmpDir}/client_body;
    fastcgi_temp_path ${i.tmpDir}/fastcgi;

    location ~ ^/scm(?<git_path>/.*)$ {
        # Same streaming as our site's /scm/: packs are never spooled by nginx.
        fastcgi_request_buffering off;
        fastcgi_buffering off;
        fastcgi_buffer_size 64k;
        fastcgi_buffers 4 64k;
        client_max_body_size 512m;
        fastcgi_read_timeout 3600s;
        fastcgi_send_timeout 3600s;
        send_timeout 3600s;
        gzip off;

        include /etc/nginx/fastcgi_params;
        fastcgi_param SCRIPT_FILENAME ${GIT_HTTP_BACKEND};
        fastcgi_param PATH_INFO $git_path;
        fastcgi_param GIT_PROJECT_ROOT ${i.projectRoot};
        fastcgi_param GIT_HTTP_EXPORT_ALL "";
        fastcgi_param GIT_PROTOCOL $http_git_protocol;
        fastcgi_pass unix:${i.socketPath};
    }

    location / {
        return 404;
    }
}
`;
}

export interface HttpBackend extends TlsFront {
  fcgiwrap: TrackedProcess;
  url(project: string, slug: string): string;
}

export interface HttpBackendOptions {
  projectRoot: string;
  ca: TestCa;
  /** A certificate for mirror.test (the one the mirror's nginx uses): clients reach both by that name. */
  cert: ServerCert;
  /** fcgiwrap's preforked workers: CGI requests served at once. */
  workers: number;
  workerProcesses?: number;
}

export async function startHttpBackend(o: HttpBackendOptions): Promise<HttpBackend> {
  // The socket path (under the bench root) is on fcgiwrap's command line: the leak check sees it.
  const socketPath = path.join(tempDir("fcgiwrap"), "fcgiwrap.sock");
  const fcgiwrap = spawnTracked(FCGIWRAP, ["-f", "-c", String(o.workers), "-s", `unix:${socketPath}`]);
  await waitFor(
    "fcgiwrap's socket",
    () => {
      if (fcgiwrap.child.exitCode !== null) throw new Error(`fcgiwrap exited (${fcgiwrap.child.exitCode}): ${fcgiwrap.output()}`);
      return fs.existsSync(socketPath);
    },
    20_000,
    20,
  );
  const port = await freePort();
  const nginx = await startNginxSite(
    "http-backend.conf",
    port,
    (ctx) =>
      renderHttpBackendSite({
        serverName: MIRROR_NAME,
        port,
        certPath: o.cert.chainPath,
        keyPath: o.cert.keyPath,
        socketPath,
        projectRoot: o.projectRoot,
        logsDir: ctx.logsDir,
        tmpDir: ctx.tempDir,
      }),
    o.workerProcesses,
  );
  const client = tlsClient(o.ca, port);
  return { ...client, ca: o.ca, cert: o.cert, port, nginx, fcgiwrap, url: (project, slug) => `${client.base}/scm/${project}/${slug}.git` };
}
