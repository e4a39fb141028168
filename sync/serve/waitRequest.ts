/**
 * The long-poll's request, parsed (pure): `GET /status/repos/{PROJECT}/{slug}/wait?commit=<sha>
 * &timeout=<seconds>`. Bad input gets a message that says what to send instead.
 */
import { repoNameProblem } from "../repoName";
import type { RepoId } from "../types";

/** The longest wait one request may ask for; longer requests are cut to it (nginx's read timeout is above it). */
export const WAIT_MAX_SECONDS = 120;
export const WAIT_DEFAULT_SECONDS = 30;
/** Waiters held at once, over all repositories (each is a parked socket and a timer). */
export const WAIT_MAX_WAITERS = 1000;

export const WAIT_PREFIX = "/status/repos/";

export type WaitRequest = { ok: true; repo: RepoId; commit: string; timeoutMs: number } | { ok: false; status: 400 | 404; message: string };

const FULL_SHA = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

export function parseWaitRequest(path: string, query: URLSearchParams): WaitRequest {
  const parts = path.slice(WAIT_PREFIX.length).split("/");
  if (!path.startsWith(WAIT_PREFIX) || parts.length !== 3 || parts[2] !== "wait") {
    return { ok: false, status: 404, message: `no such resource: ${path} (the long-poll is ${WAIT_PREFIX}PROJECT/repo/wait?commit=SHA&timeout=SECONDS)` };
  }
  let repo: RepoId;
  try {
    repo = { project: decodeURIComponent(parts[0]), slug: decodeURIComponent(parts[1]) };
  } catch {
    return { ok: false, status: 400, message: "the repository name is not valid percent-encoding" };
  }
  const problem = repoNameProblem(repo);
  if (problem) return { ok: false, status: 400, message: `${problem}; use the names of the clone URL /scm/PROJECT/repo.git` };

  const commits = query.getAll("commit");
  if (commits.length !== 1) return { ok: false, status: 400, message: "give exactly one commit=SHA (the full 40-character object name, e.g. from `git rev-parse HEAD`)" };
  const commit = commits[0].trim().toLowerCase();
  if (!FULL_SHA.test(commit)) {
    return { ok: false, status: 400, message: `commit=${JSON.stringify(commits[0].slice(0, 80))} is not a full object name: give all 40 hex characters (64 for SHA-256 repositories), e.g. from \`git rev-parse HEAD\`; abbreviations are refused` };
  }
  const t = query.get("timeout");
  let seconds = WAIT_DEFAULT_SECONDS;
  if (t !== null) {
    if (!/^\d{1,6}(\.\d{1,3})?$/.test(t.trim())) return { ok: false, status: 400, message: `timeout=${JSON.stringify(t.slice(0, 40))} is not a number of seconds: give e.g. timeout=60 (at most ${WAIT_MAX_SECONDS}; default ${WAIT_DEFAULT_SECONDS})` };
    seconds = Math.min(WAIT_MAX_SECONDS, Number(t.trim()));
  }
  return { ok: true, repo, commit, timeoutMs: Math.round(seconds * 1000) };
}
