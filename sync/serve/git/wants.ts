/**
 * What an upload-pack request asks for, read from its whole decoded body (admission.ts keeps
 * bodies up to MAX_WHOLE_DECODED_BODY, already checked to be well-framed pkt-lines). Pure.
 *
 * - protocol v0/v1: `want <oid>[ <capabilities>]` lines, then haves;
 * - protocol v2 `command=fetch`: `want <oid>` and `want-ref <refname>` arguments after the
 *   delimiter; `command=ls-refs` asks for the ref listing itself.
 * Shallow (`deepen*`, `shallow <oid>`) and partial (`filter`) lines change what is sent, not
 * what is wanted: a `shallow <oid>` names the client's own boundary, which git ignores when
 * the server does not have it.
 */
import { MAX_PKT_LEN } from "./requestCheck";

export interface RequestedObjects {
  /** Object ids of `want` lines, lower case, each once. */
  oids: string[];
  /** Ref names of v2 `want-ref` lines, each once (only well-formed `refs/...` names). */
  refs: string[];
  /** v2 `command=ls-refs`: the client asks for the ref listing (an advertisement). */
  lsRefs: boolean;
}

const OID = /^[0-9a-f]{40}([0-9a-f]{24})?$/;
/**
 * A plain ref name under refs/ (a subset of what check-ref-format allows: no "..", no empty or
 * dot-led component, no ".lock" end). Others are left to git, unchecked: cat-file would read
 * "@{...}" or ":path" as revision syntax.
 */
const REF = /^refs\/(?!.*(?:\.\.|\/\/|\/\.|\.lock(?:\/|$)))[A-Za-z0-9._/+-]+(?<![./])$/;

/** The wants of a well-framed request body (see the module comment). */
export function requestedObjects(body: Buffer): RequestedObjects {
  const oids = new Set<string>();
  const refs = new Set<string>();
  let lsRefs = false;
  let i = 0;
  while (i + 4 <= body.length) {
    const len = parseInt(body.toString("latin1", i, i + 4), 16);
    if (!(len >= 0) || len > MAX_PKT_LEN) break;
    if (len <= 3) {
      i += 4;
      continue;
    }
    const line = body.toString("latin1", i + 4, Math.min(body.length, i + len)).replace(/\n$/, "");
    i += len;
    if (line.startsWith("want ")) {
      const oid = line.slice(5, line.indexOf(" ", 5) === -1 ? undefined : line.indexOf(" ", 5)).toLowerCase();
      if (OID.test(oid)) oids.add(oid);
    } else if (line.startsWith("want-ref ")) {
      const ref = line.slice(9);
      if (REF.test(ref)) refs.add(ref);
    } else if (line === "command=ls-refs") lsRefs = true;
  }
  return { oids: [...oids], refs: [...refs], lsRefs };
}
