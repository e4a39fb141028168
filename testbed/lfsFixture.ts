/**
 * Git LFS on the bench: the primary's LFS endpoint (the Bitbucket double over real HTTPS with
 * primaryLfs.ts mounted), LFS files committed to a primary repository as git-lfs would commit
 * them (pointer files + .gitattributes, the content stored on the LFS server), and the
 * environment a real `git lfs` client needs (filter config, credentials, the bench CA) without
 * touching any global git configuration.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BitbucketDouble, startBitbucketDouble } from "./bitbucketDouble";
import { LfsObject, lfsPointer, PrimaryLfs, startPrimaryLfs } from "./primaryLfs";
import type { GitEnv, WorkingClone } from "./repos";
import { tempDir } from "./resources";
import { createCa, TestCa } from "./tls";

export interface LfsPrimary {
  double: BitbucketDouble;
  lfs: PrimaryLfs;
  /** The CA the double's certificate is issued by (the mirror's mirror.upstream.caFile). */
  ca: TestCa;
}

/** The double (certificate for localhost and 127.0.0.1) with the LFS server mounted. */
export async function startLfsPrimary(opts: { host?: string; publicHost?: string; port?: number; publicRead?: (projectKey: string, slug: string) => boolean } = {}): Promise<LfsPrimary> {
  const ca = await createCa();
  const cert = await ca.issueServerCert(["localhost", "127.0.0.1", ...(opts.publicHost ? [opts.publicHost] : [])]);
  let url = "";
  const lfs = startPrimaryLfs({ dir: tempDir("primary-lfs"), baseUrl: () => url, publicRead: opts.publicRead });
  const double = await startBitbucketDouble({
    cert: fs.readFileSync(cert.chainPath, "utf8"),
    key: fs.readFileSync(cert.keyPath, "utf8"),
    host: opts.host,
    publicHost: opts.publicHost,
    port: opts.port,
    mounts: [lfs.mount],
  });
  url = double.url;
  return { double, lfs, ca };
}

/**
 * Commit `files` as LFS files on the clone's current branch (pointers + a .gitattributes
 * tracking them) and store their content on the LFS server; returns the objects by file name.
 */
export async function commitLfsFiles(clone: WorkingClone, lfs: PrimaryLfs, project: string, slug: string, files: Record<string, Buffer>, message = "LFS files"): Promise<Record<string, LfsObject>> {
  const objects: Record<string, LfsObject> = {};
  const changes: Record<string, string> = {};
  const attributes = path.join(clone.dir, ".gitattributes");
  const existing = fs.existsSync(attributes) ? fs.readFileSync(attributes, "utf8") : "";
  const lines = new Set(existing.split("\n").filter(Boolean));
  for (const [name, content] of Object.entries(files)) {
    const o = lfs.addObject(project, slug, content);
    objects[name] = o;
    changes[name] = lfsPointer(o);
    lines.add(`${name.replace(/ /g, "[[:space:]]")} filter=lfs diff=lfs merge=lfs -text`);
  }
  changes[".gitattributes"] = [...lines].join("\n") + "\n";
  await clone.commit(changes, { message });
  return objects;
}

/** Append config entries to an env's GIT_CONFIG_COUNT list (git and git-lfs both read it). */
export function withGitConfig(env: GitEnv, entries: Record<string, string>): GitEnv {
  const out: GitEnv = { ...env };
  let n = Number(out.GIT_CONFIG_COUNT ?? 0);
  for (const [k, v] of Object.entries(entries)) {
    out[`GIT_CONFIG_KEY_${n}`] = k;
    out[`GIT_CONFIG_VALUE_${n}`] = v;
    n++;
  }
  out.GIT_CONFIG_COUNT = String(n);
  return out;
}

/**
 * A git-lfs client: the filter driver (what `git lfs install` would write globally), a
 * credential helper answering `user`/`password` for every URL, and `caFile` trusted (git-lfs
 * honours GIT_SSL_CAINFO like git). Locks are not verified unless asked (verifyLocks).
 */
export function lfsClientEnv(env: GitEnv, o: { user?: string; password?: string; caFile: string; extra?: Record<string, string> }): GitEnv {
  const helper = o.user !== undefined ? `!f() { test "$1" = get && printf 'username=%s\\npassword=%s\\n' '${o.user}' '${o.password ?? ""}'; }; f` : "";
  return withGitConfig(
    { ...env, GIT_SSL_CAINFO: o.caFile, GIT_LFS_SKIP_PUSH: undefined },
    {
      "filter.lfs.clean": "git-lfs clean -- %f",
      "filter.lfs.smudge": "git-lfs smudge -- %f",
      "filter.lfs.process": "git-lfs filter-process",
      "filter.lfs.required": "true",
      ...(helper ? { "credential.helper": helper } : {}),
      ...o.extra,
    },
  );
}
