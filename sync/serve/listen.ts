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
import { formatListenAddress, ListenAddress, parseListenAddress as parseAddress } from "../listenAddress";

export type { ListenAddress };

/** The shared grammar (sync/listenAddress.ts); throws a message that says what to write. */
export function parseListenAddress(spec: string): ListenAddress {
  const a = parseAddress(spec);
  if ("problem" in a) throw new Error(`listen address ${JSON.stringify(spec)}: ${a.problem}`);
  return a;
}

/** Display form of a bound address, e.g. "unix:/run/x.sock" or "127.0.0.1:41234". */
export const formatAddress = formatListenAddress;

/** Listen on `spec`; resolves with the bound address (the real port when ":0" was asked). */
export async function listen(server: Server, spec: string | ListenAddress, opts: { socketMode?: number } = {}): Promise<ListenAddress> {
  const addr = typeof spec === "string" ? parseListenAddress(spec) : spec;
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
