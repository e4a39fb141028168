/**
 * Where the daemon's HTTP server listens: "unix:/run/smart-mirror/http.sock" (behind nginx, the
 * default in production) or "host:port" / "[::1]:port" (tests, local runs).
 *
 * Unix sockets: a socket file left by a crashed daemon would make listen() fail with
 * EADDRINUSE, so a stale one is removed first — but only if it is a socket and nothing answers
 * on it (a live daemon is never displaced, a regular file is never deleted). The socket is then
 * set to mode 0660 so nginx's group can connect and nobody else can. chmod follows the bind, so
 * for a moment the file has the umask's mode: put the socket in a directory only the daemon
 * and nginx can enter (the agent lays it down that way).
 */
import * as fs from "node:fs";
import * as net from "node:net";
import { Server } from "node:http";

export type ListenAddress = { kind: "unix"; path: string } | { kind: "tcp"; host: string; port: number };

// sockaddr_un.sun_path is 108 bytes on Linux, including the terminating NUL.
const MAX_UNIX_PATH = 107;

/** Parse "unix:/path", "host:port", "[v6]:port" or ":port" (all interfaces). Throws a message that says what to write. */
export function parseListenAddress(spec: string): ListenAddress {
  const s = spec.trim();
  if (s.startsWith("unix:")) {
    const path = s.slice("unix:".length);
    if (!path) throw new Error(`listen address ${JSON.stringify(spec)}: want unix:/path/to/socket`);
    if (Buffer.byteLength(path) > MAX_UNIX_PATH) throw new Error(`listen address ${JSON.stringify(spec)}: socket path longer than ${MAX_UNIX_PATH} bytes`);
    return { kind: "unix", path };
  }
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]*)):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`listen address ${JSON.stringify(spec)}: want unix:/path, host:port or [ipv6]:port`);
  return { kind: "tcp", host: m[1] ?? (m[2] || "0.0.0.0"), port };
}

/** Display form of a bound address, e.g. "unix:/run/x.sock" or "127.0.0.1:41234". */
export function formatAddress(a: ListenAddress): string {
  return a.kind === "unix" ? `unix:${a.path}` : a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** Listen on `spec`; resolves with the bound address (the real port when ":0" was asked). */
export async function listen(server: Server, spec: string, opts: { socketMode?: number } = {}): Promise<ListenAddress> {
  const addr = parseListenAddress(spec);
  if (addr.kind === "unix") await removeStaleSocket(addr.path);
  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    server.once("error", onError);
    const done = () => {
      server.off("error", onError);
      resolve();
    };
    if (addr.kind === "unix") server.listen(addr.path, done);
    else server.listen(addr.port, addr.host, done);
  });
  if (addr.kind === "unix") {
    fs.chmodSync(addr.path, opts.socketMode ?? 0o660);
    return addr;
  }
  const bound = server.address();
  return bound && typeof bound === "object" ? { kind: "tcp", host: addr.host, port: bound.port } : addr;
}

/** Remove `path` if it is a socket nobody listens on; refuse if it is alive or not a socket. */
export async function removeStaleSocket(path: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    throw e;
  }
  if (!st.isSocket()) throw new Error(`${path} exists and is not a socket; refusing to replace it`);
  const alive = await new Promise<boolean>((resolve) => {
    const c = net.connect(path);
    c.once("connect", () => {
      c.destroy();
      resolve(true);
    });
    c.once("error", () => resolve(false)); // ECONNREFUSED: a stale file from a dead process
  });
  if (alive) throw new Error(`another process is listening on ${path}`);
  fs.unlinkSync(path);
}
