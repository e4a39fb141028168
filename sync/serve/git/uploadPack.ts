/**
 * Starting `git upload-pack` for one HTTP request, and stopping it with everything it started.
 *
 * Each run gets its own process group (detached: setsid), so killing the group also kills the
 * `git pack-objects` upload-pack forks: a client that hangs up mid-clone leaves nothing behind.
 * SIGKILL is fine: upload-pack only reads the repository. A raw spawn, not simple-git: the
 * process group, and stdio that is the client's own socket (handOff.ts), are what this needs.
 */
import { ChildProcess, spawn } from "node:child_process";
import type { Socket } from "node:net";

/**
 * Server-side settings of every upload-pack run, as -c options (they win over the repository's
 * and the system's config):
 * - allowFilter: partial clone (`--filter=blob:none`) instead of a full pack;
 * - allowAnySHA1InWant=false: no fetching of unreachable objects by id (v0/v1; a force-pushed-
 *   away commit stays private until gc);
 * - allowReachableSHA1InWant=true: what a v0/v1 partial clone needs to fetch missing blobs later
 *   (protocol v2 accepts such wants anyway);
 * Not uploadpack.allowRefInWant: with it, git 2.39 clients' `clone --depth 1` over v2 fails
 * ("expected 'packfile', received 'shallow-info'"), over file:// too.
 * Order matters: git applies these in turn, and allowAnySHA1InWant=false clears the tip and
 * reachable bits too, so it comes first. Command-line config is read after every config file.
 */
export const UPLOAD_PACK_CONFIG: readonly string[] = [
  "uploadpack.allowFilter=true",
  "uploadpack.allowAnySHA1InWant=false",
  "uploadpack.allowTipSHA1InWant=false",
  "uploadpack.allowReachableSHA1InWant=true",
];

/**
 * The environment for git: the daemon's, minus every GIT_* variable (GIT_DIR, GIT_CONFIG_*,
 * GIT_TRACE... must not steer a server process), plus GIT_PROTOCOL from the client's
 * Git-Protocol header when sane. Pure.
 */
export function uploadPackEnv(base: NodeJS.ProcessEnv, gitProtocol: string | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(base)) if (!k.startsWith("GIT_")) env[k] = v;
  env.LC_ALL = "C";
  if (gitProtocol) env.GIT_PROTOCOL = gitProtocol;
  return env;
}

/** The argument list (pure): config, then upload-pack in stateless-RPC mode on exactly `dir`. */
export function uploadPackArgs(dir: string, advertise: boolean): string[] {
  return [
    ...UPLOAD_PACK_CONFIG.flatMap((c) => ["-c", c]),
    "upload-pack",
    "--strict", // `dir` itself must be the repository: never `dir/.git`
    "--stateless-rpc",
    // What git-http-backend runs for info/refs (git >= 2.34 names it so; same as --advertise-refs).
    ...(advertise ? ["--http-backend-info-refs"] : []),
    dir,
  ];
}

export interface SpawnOptions {
  dir: string;
  advertise: boolean;
  env: NodeJS.ProcessEnv;
  gitBinary?: string;
  /** Git's stdout: the client's socket (handOff.ts); default a pipe to the daemon. */
  stdout?: Socket;
}

export function spawnUploadPack(o: SpawnOptions): ChildProcess {
  return spawn(o.gitBinary ?? "git", uploadPackArgs(o.dir, o.advertise), {
    cwd: o.dir,
    env: o.env,
    detached: true, // own process group: see killGroup
    stdio: [o.advertise ? "ignore" : "pipe", o.stdout ?? "pipe", "pipe"],
  });
}

/** SIGKILL the child's process group (upload-pack and its pack-objects). Safe to call twice. */
export function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    /* ESRCH: the whole group is gone already */
  }
}

/** `finish` once git exited ('close': its pipes are drained too), or could not start (after `noteError`). */
export function onGitExit(child: ChildProcess, finish: (code: number | null, signal: NodeJS.Signals | null) => void, noteError: (e: Error) => void): void {
  child.on("close", finish);
  child.on("error", (e) => {
    noteError(e);
    finish(null, null);
  });
}
