/**
 * The production deploy plan, laid down under a root prefix and supervised directly instead of
 * by systemd: what `npm start` and the end-to-end test run, with the same renderers, the same
 * plan builder and the same `smart-mirror apply` agent as `pulumi up`.
 *
 * Under `apply --root R` the agent writes plan path P to R+P, but the rendered files (unit,
 * nginx site, properties) name paths the processes open, so they are rendered with R-prefixed
 * paths. Debian's nginx.service and /etc/nginx/nginx.conf are not under R: the local plan adds
 * its own nginx.conf (everything inside R) and an nginx unit for the exec supervisor. Pure.
 */
import * as path from "node:path";
import { Plan } from "../../sync/agent/plan";
import { renderNginxSite } from "../render/nginx";
import { renderDaemonUnit } from "../render/systemd";
import { DAEMON_USER, mirrorPaths, MirrorPaths } from "./layout";
import { buildMirrorPlan, MirrorPlanInput } from "./plan";

export const NGINX_BIN = "/usr/sbin/nginx";

/** The same layout as production, every path under root. */
export function localPaths(root: string): MirrorPaths {
  const prod = mirrorPaths();
  return Object.fromEntries(Object.entries(prod).map(([k, v]) => [k, path.posix.join(root, v)])) as unknown as MirrorPaths;
}

export interface LocalPlanInput extends Omit<MirrorPlanInput, "paths" | "nginxSite" | "daemonUnit"> {
  root: string;
  serverName: string;
  httpsPort: number;
  /** false: no plain-HTTP redirect listener. */
  httpPort: number | false;
  /** Addresses nginx listens on (default 127.0.0.1). */
  listenAddresses?: string[];
  nodePath?: string;
  /** nginx worker user; default www-data (Debian's), a member of the daemon's group. */
  nginxUser?: string;
}

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");

export function localNginxConf(root: string, sitePath: string, user: string): string {
  const prefix = path.posix.join(root, "var/lib/smart-mirror-nginx");
  return [
    "# Written by smart-mirror's local plan: everything of this nginx lives under the root.",
    "daemon off;",
    "master_process on;",
    "worker_processes auto;",
    "worker_shutdown_timeout 10s;",
    `user ${user};`,
    `pid ${prefix}/nginx.pid;`,
    `lock_file ${prefix}/nginx.lock;`,
    `error_log ${prefix}/error.log warn;`,
    "events { worker_connections 1024; }",
    "http {",
    `  access_log ${prefix}/access.log;`,
    ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `  ${t}_temp_path ${prefix}/${t};`),
    "  include /etc/nginx/mime.types;",
    "  default_type application/octet-stream;",
    "  sendfile on;",
    "  tcp_nopush on;",
    `  include ${sitePath};`,
    "}",
    "",
  ].join("\n");
}

export function buildLocalPlan(i: LocalPlanInput): { plan: Plan; paths: MirrorPaths; realPaths: MirrorPaths; nginxConf: string } {
  const planPaths = mirrorPaths();
  const real = localPaths(i.root);
  const nginxUser = i.nginxUser ?? "www-data";
  // The site's logs default to /var/log/nginx/, outside the root: keep them with nginx's own.
  const nginxLogDir = path.posix.join(i.root, "var/lib/smart-mirror-nginx");
  const site = renderNginxSite({
    serverName: i.serverName,
    listenHttps: i.httpsPort,
    listenHttp: i.httpPort,
    listenAddresses: i.listenAddresses ?? ["127.0.0.1"],
    certPath: real.tlsCert,
    keyPath: real.tlsKey,
    upstreamSocket: real.socket,
    accessLog: path.posix.join(nginxLogDir, "smart_mirror.access.log"),
    errorLog: path.posix.join(nginxLogDir, "smart_mirror.error.log"),
  });
  const unit = renderDaemonUnit({ user: DAEMON_USER, home: real.home, bundlePath: real.bundle, nodePath: i.nodePath });
  const { root, serverName: _s, httpsPort: _h, httpPort: _p, listenAddresses: _l, nodePath: _n, ...rest } = i;
  const plan = buildMirrorPlan({ ...rest, paths: planPaths, nginxSite: site, daemonUnit: unit, nginxUser });

  const nginxConfPlanPath = "/etc/smart-mirror/nginx/nginx.conf";
  const nginxConf = localNginxConf(root, real.nginxSite, `${nginxUser} ${nginxUser}`);
  const realConf = path.posix.join(root, nginxConfPlanPath);
  const nginxPrefix = path.posix.join(root, "var/lib/smart-mirror-nginx");
  const nginxArgs = `-e stderr -p ${nginxPrefix} -c ${realConf}`;
  plan.dirs.push({ path: "/etc/smart-mirror/nginx", mode: 0o755, owner: "root", group: "root" }, { path: "/var/lib/smart-mirror-nginx", mode: 0o755, owner: "root", group: "root" });
  plan.files.push(
    { path: nginxConfPlanPath, contentBase64: b64(nginxConf), mode: 0o644, owner: "root", group: "root" },
    {
      path: "/etc/systemd/system/nginx.service",
      contentBase64: b64(
        [
          "[Unit]",
          "Description=nginx for smart-mirror (local plan)",
          "[Service]",
          `ExecStart=${NGINX_BIN} ${nginxArgs}`,
          "ExecReload=/bin/kill -s HUP $MAINPID",
          "KillMode=mixed",
          "TimeoutStopSec=15s",
          "[Install]",
          "WantedBy=multi-user.target",
          "",
        ].join("\n"),
      ),
      mode: 0o644,
      owner: "root",
      group: "root",
    },
  );
  const nginxSvc = plan.services.find((s) => s.unit === "nginx.service");
  if (nginxSvc) nginxSvc.watches.push(nginxConfPlanPath);
  // Validators run on the host as written: point them at the files under the root.
  plan.validate = (plan.validate ?? []).map((v) => {
    if (v.argv[0] === "/usr/sbin/nginx") return { ...v, argv: [NGINX_BIN, "-t", "-q", ...nginxArgs.split(" ")], when: [...v.when, nginxConfPlanPath] };
    return { ...v, argv: v.argv.map((a) => (a === planPaths.bundle ? real.bundle : a === planPaths.home ? real.home : a)) };
  });
  return { plan, paths: planPaths, realPaths: real, nginxConf };
}
