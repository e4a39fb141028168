/**
 * The one grammar of a listen address, shared by `smart-mirror check` (sync/config, which adds
 * its own policy: a port of 0 is refused, a relative socket path is taken from the home) and by
 * the HTTP server that binds it (sync/serve/listen.ts). Two parsers once disagreed: `[::1]:7990`
 * passed `check` and then `run` refused it.
 *
 *     unix:/run/smart-mirror/http.sock   a unix socket (behind nginx, the production default)
 *     127.0.0.1:7990  localhost:7990     host:port
 *     [::1]:7990                         IPv6 literals in brackets, as in URLs
 *     :7990                              every interface
 */

export type ListenAddress = { kind: "unix"; path: string } | { kind: "tcp"; host: string; port: number };

/** sockaddr_un.sun_path is 108 bytes on Linux, including the terminating NUL. */
export const MAX_UNIX_PATH = 107;

export const LISTEN_SYNTAX = "unix:PATH or HOST:PORT (IPv6 in brackets: [::1]:7990)";

/** The address, or what is wrong with it (without the value: callers name it). */
export function parseListenAddress(spec: string): ListenAddress | { problem: string } {
  const s = spec.trim();
  if (s.startsWith("unix:")) {
    const p = s.slice("unix:".length);
    if (p === "") return { problem: "names no socket path" };
    if (Buffer.byteLength(p) > MAX_UNIX_PATH) return { problem: `socket path is longer than ${MAX_UNIX_PATH} bytes` };
    return { kind: "unix", path: p };
  }
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]*)):(\d{1,5})$/.exec(s);
  if (!m) return { problem: `must be ${LISTEN_SYNTAX}` };
  const port = Number(m[3]);
  if (port > 65535) return { problem: `port ${m[3]} is out of range 0..65535` };
  return { kind: "tcp", host: m[1] ?? (m[2] || "0.0.0.0"), port };
}

/** The form parseListenAddress reads back: IPv6 hosts in brackets. */
export function formatListenAddress(a: ListenAddress): string {
  return a.kind === "unix" ? `unix:${a.path}` : `${a.host.includes(":") ? `[${a.host}]` : a.host}:${a.port}`;
}
