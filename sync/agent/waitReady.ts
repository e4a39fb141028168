/**
 * `apply --wait-ready SECONDS [--status-url URL]`: after the apply, poll the daemon's readiness
 * (GET /status/ready: 200 when synced and not draining) until it answers 200, or give up and
 * fail the apply. A rolling update runs apply on one node at a time and stops at the first node
 * that fails, so a node that does not come back ready stops the roll-out.
 *
 * Where to ask, by default: the daemon's own listener as the plan configures it
 * (mirror.serve.listen in the plan's bitbucket.properties, default the home's unix socket), so
 * the check needs neither nginx nor TLS. --status-url overrides: http(s)://HOST[:PORT][/PATH]
 * (PATH default /status/ready) or unix:/path/to/socket.
 */
import { parse as parseProperties } from "dot-properties";
import * as http from "node:http";
import * as https from "node:https";
import * as path from "node:path";
import { KEYS, withHome } from "../config/keys";
import { HOME_LAYOUT } from "../homeLayout";
import { formatListenAddress, ListenAddress, parseListenAddress } from "../listenAddress";
import { connectTarget } from "../verify/daemonClient";
import { hostPath } from "./fsOps";
import type { Plan } from "./plan";

export const READY_PATH = "/status/ready";
/** Between two polls. */
export const READY_POLL_MS = 1000;

export type ReadinessTarget = { kind: "listen"; address: ListenAddress; path: string } | { kind: "url"; url: URL };

export function describeTarget(t: ReadinessTarget): string {
  return t.kind === "url" ? t.url.href : `${formatListenAddress(t.address)} ${t.path}`;
}

/** --status-url, or a message naming the accepted forms. */
export function parseStatusUrl(text: string): ReadinessTarget | { problem: string } {
  if (text.startsWith("unix:")) {
    const a = parseListenAddress(text);
    if ("problem" in a || a.kind !== "unix" || !a.path.startsWith("/")) return { problem: `--status-url ${JSON.stringify(text)}: a unix socket must be unix:/ABSOLUTE/PATH` };
    return { kind: "listen", address: a, path: READY_PATH };
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { problem: `--status-url ${JSON.stringify(text)} is not a URL; give http://127.0.0.1:7990/status/ready, https://NODE/status/ready or unix:/path/to/http.sock` };
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return { problem: `--status-url must be http://, https:// or unix: (got ${url.protocol})` };
  // A bare origin means the readiness path.
  if (url.pathname === "/") url.pathname = READY_PATH;
  return { kind: "url", url };
}

/**
 * The daemon's listener from the plan: the properties file it lays down (HOME/shared/...), its
 * mirror.serve.listen or the key's default. Under --root a unix socket lives under the root too.
 */
export function readinessTargetFromPlan(plan: Plan, root: string): ReadinessTarget | { problem: string } {
  const suffix = `/${HOME_LAYOUT.properties.rel}`;
  const file = plan.files.find((f) => f.path.endsWith(suffix) && f.contentBase64 !== undefined);
  if (!file) return { problem: `the plan lays down no ${HOME_LAYOUT.properties.rel}, so the daemon's address is unknown; give --status-url` };
  const home = file.path.slice(0, -suffix.length) || "/";
  const props = parseProperties(Buffer.from(file.contentBase64 as string, "base64").toString("utf8"));
  const written = typeof props[KEYS.listen.name] === "string" ? (props[KEYS.listen.name] as string).trim() : "";
  const value = written !== "" ? written : withHome(KEYS.listen.default, home);
  const a = parseListenAddress(value);
  if ("problem" in a) return { problem: `the plan's ${KEYS.listen.name}=${value} ${a.problem}; give --status-url` };
  if (a.kind === "tcp") return { kind: "listen", address: a, path: READY_PATH };
  const abs = path.posix.isAbsolute(a.path) ? a.path : path.posix.join(home, a.path);
  const onHost = root === "/" || abs.startsWith(root + "/") ? abs : hostPath(root, abs);
  return { kind: "listen", address: { kind: "unix", path: onHost }, path: READY_PATH };
}

export interface ReadyAnswer {
  status: number;
  body: string;
}

/** One GET; rejects on a connection error or after timeoutMs. */
export function askReady(t: ReadinessTarget, timeoutMs: number): Promise<ReadyAnswer> {
  return new Promise((resolve, reject) => {
    const onResponse = (res: http.IncomingMessage) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body = (body + c).slice(0, 4096)));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: body.trim() }));
      res.on("error", reject);
    };
    const req =
      t.kind === "url"
        ? (t.url.protocol === "https:" ? https : http).get(t.url, { agent: false, timeout: timeoutMs }, onResponse)
        : http.get({ ...connectTarget(t.address), path: t.path, agent: false, timeout: timeoutMs }, onResponse);
    req.on("timeout", () => req.destroy(new Error(`no answer within ${Math.round(timeoutMs / 1000)} s`)));
    req.on("error", reject);
  });
}

export type WaitResult = { ready: true; afterMs: number; answer: ReadyAnswer } | { ready: false; last: string };

/** Poll until 200 or `timeoutMs` has passed (at least one attempt is made). */
export async function waitReady(t: ReadinessTarget, timeoutMs: number, everyMs = READY_POLL_MS, progress?: (line: string) => void): Promise<WaitResult> {
  const t0 = Date.now();
  let last = "no answer yet";
  let said = "";
  for (;;) {
    const left = t0 + timeoutMs - Date.now();
    try {
      const a = await askReady(t, Math.max(1000, Math.min(5000, left)));
      if (a.status === 200) return { ready: true, afterMs: Date.now() - t0, answer: a };
      last = `${a.status} ${a.body}`;
    } catch (e) {
      last = (e as Error).message;
    }
    if (last !== said) progress?.(`not ready yet: ${last}`);
    said = last;
    if (Date.now() - t0 + everyMs > timeoutMs) return { ready: false, last };
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
