/**
 * The store's small local git commands, through simple-git: create a bare repository, list its
 * refs, point its HEAD. Each is short, reads or writes one repository and talks to no remote,
 * so it needs neither a process group nor streaming (runGit.ts keeps those for fetch, fsck and
 * repack). Failures come back as the store's GitError, so the engine's corruption check sees
 * one kind of error whichever way git ran.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { simpleGit, SimpleGit } from "simple-git";
import { GitError } from "./runGit";

/**
 * simple-git refuses environment variables that steer git (GIT_SSH_COMMAND, GIT_ASKPASS,
 * GIT_CONFIG_GLOBAL, EDITOR, PAGER, ...) unless told they are safe: a guard for callers that
 * pass along someone else's input. This environment is the daemon's own (gitEnv over its
 * process environment), and these commands take no client input, so it is told so.
 * (The testbed's repository factory, in the same position, uses it too.)
 */
export const OWN_ENVIRONMENT = {
  allowUnsafeSshCommand: true,
  allowUnsafeAskPass: true,
  allowUnsafeConfigPaths: true,
  allowUnsafeConfigEnvCount: true,
  allowUnsafeEditor: true,
  allowUnsafePager: true,
  allowUnsafeDiffExternal: true,
  allowUnsafeGitProxy: true,
  allowUnsafeTemplateDir: true,
} as const;

function localGit(env: NodeJS.ProcessEnv, baseDir?: string, signal?: AbortSignal): SimpleGit {
  return simpleGit({ baseDir, abort: signal, unsafe: OWN_ENVIRONMENT }).env(env);
}

async function run<T>(what: string, task: () => Promise<T>): Promise<T> {
  try {
    return await task();
  } catch (e) {
    const why = (e as Error).message.trim();
    throw new GitError(`git ${what} failed: ${why}`, { code: null, signal: null, stderrTail: why });
  }
}

/** `git init --bare`, HEAD on `initialBranch` when given (the directory is made if missing). */
export async function initBare(dir: string, env: NodeJS.ProcessEnv, signal: AbortSignal, initialBranch?: string): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const options = ["--quiet", ...(initialBranch ? [`--initial-branch=${initialBranch}`] : [])];
  await run("init", () => localGit(env, dir, signal).init(true, options));
}

/** Every ref and the object it names (refname -> object id). */
export async function listRefs(dir: string, env: NodeJS.ProcessEnv): Promise<Map<string, string>> {
  const out = await run("for-each-ref", () => localGit(env, dir).raw(["for-each-ref", "--format=%(objectname) %(refname)"]));
  const refs = new Map<string, string>();
  for (const line of out.split("\n")) {
    const sp = line.indexOf(" ");
    if (sp > 0) refs.set(line.slice(sp + 1), line.slice(0, sp));
  }
  return refs;
}

/** Every ref and HEAD's symbolic target (undefined when HEAD is detached or missing). */
export async function readLocalRefs(dir: string, env: NodeJS.ProcessEnv): Promise<{ refs: Map<string, string>; headTarget?: string }> {
  const refs = await listRefs(dir, env);
  return { refs, headTarget: readHeadTarget(dir) };
}

/** Where a repository's HEAD points (`refs/heads/main`); undefined without a symbolic HEAD. */
export function readHeadTarget(dir: string): string | undefined {
  try {
    const head = fs.readFileSync(path.join(dir, "HEAD"), "utf8").trim();
    return head.startsWith("ref: ") ? head.slice(5) : undefined;
  } catch {
    return undefined; // no HEAD: a fingerprint will differ and force a fetch
  }
}

/** Whether the repository has any ref at all. */
export async function hasAnyRef(dir: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  const out = await run("for-each-ref", () => localGit(env, dir).raw(["for-each-ref", "--count=1", "--format=%(refname)"]));
  return out.trim() !== "";
}

/** Point HEAD at `target` (a full ref name), unless it already does. */
export async function setHead(dir: string, target: string, env: NodeJS.ProcessEnv): Promise<void> {
  const current = fs.readFileSync(path.join(dir, "HEAD"), "utf8").trim();
  if (current !== `ref: ${target}`) await run("symbolic-ref", () => localGit(env, dir).raw(["symbolic-ref", "HEAD", target]));
}
