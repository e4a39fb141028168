/**
 * Repositories in bulk for the benchmarks: one small seed repository (a few commits,
 * branches and tags, packed like a served repository) copied with `cp -a` into thousands of
 * names on a bench primary, owned by the primary's account as createRepo/importRepo leave them.
 * Copying is what makes 10,000 repositories take seconds instead of an hour of pushes.
 *
 * Names: projects P000, P001, ... of up to 100 repositories repo-000 ... repo-099, so a
 * catalog looks like a real instance's (many projects, many repos each).
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import type { Primary } from "../testbed/primary";
import { git, initBare, workingClone } from "../testbed/repos";
import { onCleanup, tempDir } from "../testbed/resources";
import type { RepoId } from "../sync/types";

const run = promisify(execFile);

export const REPOS_PER_PROJECT = 100;

/** The first n repository ids of the bench layout (pure). */
export function repoIds(n: number): RepoId[] {
  const ids: RepoId[] = [];
  for (let i = 0; i < n; i++) {
    ids.push({ project: `P${String(Math.floor(i / REPOS_PER_PROJECT)).padStart(3, "0")}`, slug: `repo-${String(i % REPOS_PER_PROJECT).padStart(3, "0")}` });
  }
  return ids;
}

/**
 * A small bare repository: 6 commits on main, 2 feature branches, an annotated and a
 * lightweight tag; one pack, packed refs, no sample hooks (fewer files to copy and delete).
 */
export async function makeSeedRepo(label = "seed"): Promise<string> {
  const bare = await initBare(path.join(tempDir(label), "seed.git"));
  const wc = await workingClone(bare);
  for (let i = 0; i < 4; i++) await wc.commit({ "README.md": `# seed\nrevision ${i}\n`, [`src/file-${i}.txt`]: `content ${i}\n`.repeat(20) });
  await wc.branch("feature-a");
  await wc.tag("v1.0", { message: "release 1.0" });
  await wc.commit({ "CHANGELOG.md": "1.1\n" });
  await wc.tag("v1.1");
  await wc.checkout("feature-a");
  await wc.commit({ "feature.txt": "a\n" });
  await wc.checkout("feature-b", { create: true });
  await wc.commit({ "feature.txt": "b\n" });
  await wc.checkout("main");
  await wc.pushAll();
  await git(["--git-dir", bare, "repack", "-a", "-d", "-q"]);
  await git(["--git-dir", bare, "pack-refs", "--all"]);
  await trimBareRepo(bare);
  return bare;
}

/** Remove what git does not need to serve or fetch (sample hooks, description, info/, branches/). */
export async function trimBareRepo(bare: string): Promise<void> {
  for (const name of ["hooks", "description", "info", "branches"]) await fs.promises.rm(path.join(bare, name), { recursive: true, force: true });
}

/**
 * Mount a tmpfs on `dir` (empty, existing) owned by uid:gid, unmounted at cleanup (before the
 * temp dir holding it is removed). For tens of thousands of throwaway files: on this disk
 * (ext4 with discard) deleting them would take minutes.
 */
export async function mountTmpfs(dir: string, owner: { uid: number; gid: number }, sizeMb: number): Promise<void> {
  await run("mount", ["-t", "tmpfs", "-o", `size=${sizeMb}m,mode=755,uid=${owner.uid},gid=${owner.gid}`, "tmpfs", dir]);
  onCleanup(async () => {
    await run("umount", ["-l", dir]);
  });
}

/** uid/gid of the primary's account (its repos root belongs to it). */
export function accountOf(primary: Primary): { uid: number; gid: number } {
  const st = fs.statSync(primary.reposRoot);
  return { uid: st.uid, gid: st.gid };
}

// Copies SEED to ROOT/PROJECT/repo-NNN.git for each "PROJECT:COUNT:full|part" argument. With
// LINK=yes the first copy is a real one (hard links cannot cross into another file system, e.g.
// a tmpfs) and every later one hard-links to it (cp -al): copies then cost directories only.
// Every full project after the first is one copy of the first full project, not 100; after
// MAX_LINKED_PROJECTS of those a new real copy starts (hard links per file are capped).
const MAX_LINKED_PROJECTS = 499;
const COPY_SCRIPT = `set -eu
MAX_LINKED_PROJECTS=${MAX_LINKED_PROJECTS}
seed=$1 root=$2 link=$3; shift 3
flags=-a; [ "$link" = yes ] && flags=-al
src=$seed
first_full=""
linked=0
for project_spec in "$@"; do
  project=\${project_spec%%:*}
  rest=\${project_spec#*:}
  count=\${rest%%:*}
  full=\${rest#*:}
  if [ "$full" = full ] && [ -n "$first_full" ]; then
    if [ "$linked" -lt "$MAX_LINKED_PROJECTS" ]; then
      cp $flags "$root/$first_full" "$root/$project"
      linked=$((linked + 1))
      continue
    fi
    # A file system caps the links to one file (ext4: 65,000): start a new real copy.
    first_full="" linked=0 src=$seed
  fi
  mkdir -p "$root/$project"
  i=0
  while [ "$i" -lt "$count" ]; do
    dest="$root/$project/repo-$(printf %03d "$i").git"
    if [ "$link" = yes ] && [ "$src" = "$seed" ]; then
      cp -a "$seed" "$dest"
      src=$dest
    else
      cp $flags "$src" "$dest"
    fi
    i=$((i + 1))
  done
  if [ "$full" = full ] && [ -z "$first_full" ]; then first_full=$project; fi
done
`;

/**
 * Copy `seed` into every repository of repoIds(n) under `root` (a primary's repos root or a
 * mirror's repos/ dir). owner: chown the seed first, so `cp -a` (as root) keeps that owner.
 */
export async function copyRepos(seed: string, root: string, n: number, opts: { owner?: { uid: number; gid: number }; link?: boolean } = {}): Promise<RepoId[]> {
  const ids = repoIds(n);
  let source = seed;
  if (opts.owner) {
    // A private copy to chown: the caller's seed keeps its owner.
    source = path.join(tempDir("seed-owned"), "seed.git");
    await run("cp", ["-a", seed, source]);
    await run("chown", ["-R", `${opts.owner.uid}:${opts.owner.gid}`, source]);
  }
  const specs: string[] = [];
  for (let p = 0; p * REPOS_PER_PROJECT < n; p++) {
    const count = Math.min(REPOS_PER_PROJECT, n - p * REPOS_PER_PROJECT);
    specs.push(`${ids[p * REPOS_PER_PROJECT].project}:${count}:${count === REPOS_PER_PROJECT ? "full" : "part"}`);
  }
  await fs.promises.mkdir(root, { recursive: true });
  await run("sh", ["-c", COPY_SCRIPT, "copy-repos", source, root, opts.link ? "yes" : "no", ...specs], { maxBuffer: 1 << 20 });
  if (opts.owner) {
    // Project directories were made by mkdir/cp as root.
    for (const spec of specs) await fs.promises.chown(path.join(root, spec.split(":")[0]), opts.owner.uid, opts.owner.gid);
  }
  return ids;
}

/** n copies of the seed on the primary, owned by its account; returns their ids. */
export function populatePrimary(primary: Primary, seed: string, n: number, opts: { link?: boolean } = {}): Promise<RepoId[]> {
  return copyRepos(seed, primary.reposRoot, n, { owner: accountOf(primary), link: opts.link });
}

/** Put one more repository (e.g. a bigger one) on the primary as PROJECT/slug, owned by its account. */
export async function placeOnPrimary(primary: Primary, id: RepoId, source: string): Promise<string> {
  const dest = primary.repoPath(id.project, id.slug);
  await fs.promises.mkdir(path.dirname(dest), { recursive: true });
  await fs.promises.rm(dest, { recursive: true, force: true });
  await run("cp", ["-a", source, dest]);
  const { uid, gid } = accountOf(primary);
  await run("chown", ["-R", `${uid}:${gid}`, dest]);
  return dest;
}

/** Read every file under dir once, so the first timed run does not pay for a cold page cache. */
export async function warmPageCache(dir: string): Promise<void> {
  await run("sh", ["-c", 'find "$1" -type f -exec cat {} + > /dev/null', "warm", dir], { maxBuffer: 1 << 20 });
}

/**
 * Let the machine settle before a timed run: write back dirty pages (the last clone's pack,
 * a pack cache file) now rather than in the middle of the next run, then a short pause for
 * whatever the previous run left (a daemon logging, a process exiting) to finish.
 */
export async function settle(pauseMs = 250): Promise<void> {
  await run("sync", []);
  await new Promise((r) => setTimeout(r, pauseMs));
}
