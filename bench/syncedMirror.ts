/**
 * A mirror home that already holds n synced repositories, in seconds instead of minutes.
 * The bench's repositories are copies of one seed, so the daemon syncs one of them and its
 * result (objects, refs, fingerprint, maintenance records) is copied n times. Benchmarks that
 * start from such a home must confirm it: a no-change reconcile compares every repository's
 * fingerprint with the primary's advertisement (checked = n, changed = 0).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { startInProcessMirror } from "../testbed/inProcessMirror";
import { makeMirrorHome, MirrorHome } from "../testbed/mirrorHome";
import type { Primary } from "../testbed/primary";
import { git } from "../testbed/repos";
import { onCleanup } from "../testbed/resources";
import { controlPathFor } from "../sync/upstream/openssh";
import { RepoId, repoKey } from "../sync/types";
import { assertAllSynced } from "./benchmark";
import { copyRepos, mountTmpfs, trimBareRepo } from "./fixtures";
import { homePath } from "../sync/homeLayout";

/**
 * A mirror home for the benchmarks (makeMirrorHome), plus cleanup of the ControlMaster socket
 * directory the daemon makes for it: a home under the bench root has a path too long for a
 * unix socket, so the daemon uses a short /tmp/smcm-* directory (controlPathFor) and leaves it.
 */
export async function benchMirrorHome(primary: Primary): Promise<MirrorHome> {
  const mh = await makeMirrorHome(primary);
  forgetControlDir(mh.home);
  return mh;
}

function forgetControlDir(home: string): void {
  onCleanup(() => {
    const dir = path.dirname(controlPathFor(home));
    if (path.dirname(dir) === os.tmpdir() && path.basename(dir).startsWith("smcm-")) fs.rmSync(dir, { recursive: true, force: true });
  });
}

/** The daemon's own mirror of one seed copy; a path inside a bench temp dir. */
export async function syncedTemplate(primary: Primary, id: RepoId): Promise<string> {
  const mh = await benchMirrorHome(primary);
  const m = await startInProcessMirror(primary, [id], {}, mh);
  await m.daemon.idle();
  assertAllSynced(m, 1, "template sync");
  await m.stop();
  const dir = m.daemon.repoDir(repoKey(id));
  // Fewer files to copy and delete 10,000 times: refs packed as the daemon's maintenance packs
  // them, and git's inert extras (sample hooks, description, info/exclude) left out.
  await git(["--git-dir", dir, "pack-refs", "--all"]);
  await trimBareRepo(dir);
  return dir;
}

/** A new mirror home (key authorized on the primary) holding `count` copies of the template. */
export async function syncedMirrorHome(primary: Primary, template: string, count: number, opts: { link?: boolean; tmpfsMb?: number } = {}): Promise<MirrorHome> {
  const mh = await benchMirrorHome(primary);
  const repos = homePath(mh.home, "repos");
  fs.mkdirSync(repos, { recursive: true });
  if (opts.tmpfsMb) await mountTmpfs(repos, { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }, opts.tmpfsMb);
  await copyRepos(template, repos, count, { link: opts.link });
  return mh;
}
