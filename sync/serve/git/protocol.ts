/**
 * The bits of Git's HTTP protocol the server writes or reads itself (everything else is
 * git upload-pack's business). Pure.
 *
 * - pkt-line: 4 hex digits of length (including themselves), then the payload; "0000" = flush.
 * - info/refs for protocol v0/v1 starts with `# service=git-upload-pack\n` + flush, which
 *   git-http-backend writes before running `upload-pack --http-backend-info-refs`; for v2 it
 *   does not (http-backend.c get_info_refs: `if (determine_protocol_version_server() !=
 *   protocol_v2)`), since the v2 capability advertisement must come first.
 * - Git-Protocol request header -> GIT_PROTOCOL for git, as http-backend does; the version in
 *   force is the highest `version=N` among its colon-separated entries (protocol.c
 *   determine_protocol_version_server).
 */

export function pktLine(payload: string): Buffer {
  const body = Buffer.from(payload, "utf8");
  if (body.length > 65516) throw new Error("pkt-line payload too long");
  return Buffer.concat([Buffer.from((body.length + 4).toString(16).padStart(4, "0"), "ascii"), body]);
}

export const FLUSH_PKT = Buffer.from("0000", "ascii");

/** What an info/refs answer starts with before git's own output (empty for v2). */
export function advertisementPreamble(service: string, version: number): Buffer {
  return version === 2 ? Buffer.alloc(0) : Buffer.concat([pktLine(`# service=${service}\n`), FLUSH_PKT]);
}

export interface GitProtocol {
  /** The value to hand git as GIT_PROTOCOL, when the header was present and sane. */
  env?: string;
  version: 0 | 1 | 2;
}

// Keys and values as git writes them ("version=2", "object-format=sha256"); anything else is not
// passed on to git's environment.
const SANE = /^[A-Za-z0-9._=:-]{1,256}$/;

export function parseGitProtocol(header: string | string[] | undefined): GitProtocol {
  if (typeof header !== "string" || !SANE.test(header)) return { version: 0 };
  let version: 0 | 1 | 2 = 0;
  for (const item of header.split(":")) {
    const m = /^version=([0-9]+)$/.exec(item);
    if (!m) continue;
    const v = Number(m[1]);
    if ((v === 1 || v === 2) && v > version) version = v;
  }
  return { env: header, version };
}

export const CONTENT_TYPES = {
  advertisement: (service: string) => `application/x-${service}-advertisement`,
  request: (service: string) => `application/x-${service}-request`,
  result: (service: string) => `application/x-${service}-result`,
};
