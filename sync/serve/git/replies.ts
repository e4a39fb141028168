/**
 * What the user reads when the mirror says no. Pure.
 *
 * git prints the body of a failed info/refs request when it is text/plain, one "remote: " line
 * per line (remote-curl.c show_http_message, called for 404, 401 and any other error status),
 * then its own "fatal: ..." line. So every refusal here is a short text/plain body that says
 * what to do; the X-Request-Id header lets an operator find the matching log line.
 */
import type { ServerResponse, OutgoingHttpHeaders } from "node:http";
import { KEYS } from "../../config/keys";
import type { RepoId } from "../../types";

export const REALM = "smart-mirror";

export function sendText(res: ServerResponse, status: number, message: string, headers: OutgoingHttpHeaders = {}): void {
  const body = message.endsWith("\n") ? message : `${message}\n`;
  res.writeHead(status, {
    "Content-Type": "text/plain; charset=utf-8",
    "Content-Length": Buffer.byteLength(body),
    "Cache-Control": "no-cache",
    ...headers,
  });
  res.end(body);
}

/** The primary's clone/push URL of a repository, in Bitbucket's layout. */
export function primaryRepoUrl(primaryUrl: string, repo: RepoId): string {
  return `${primaryUrl.replace(/\/+$/, "")}/scm/${repo.project}/${repo.slug}.git`;
}

export function pushRefusedMessage(primaryUrl: string, repo: RepoId): string {
  const url = primaryRepoUrl(primaryUrl, repo);
  return [
    "This is a read-only mirror: pushes are not accepted here.",
    `Push to the primary instead: ${url}`,
    "To keep fetching from the mirror and push to the primary, run once:",
    `  git remote set-url --push origin ${url}`,
  ].join("\n");
}

export function notFoundMessage(): string {
  // Like Bitbucket: the same answer for "does not exist" and "you may not read it".
  return "Repository not found\nThe requested repository does not exist on this mirror, or you do not have permission to access it.";
}

export function authRequiredMessage(mode: "primary" | "tokens"): string {
  return mode === "primary"
    ? "Authentication required: use the same user name and password (or HTTP access token) as on the primary."
    : "Authentication required: use your token's name as user name and the token as password.";
}

export function unavailableMessage(primaryUrl: string): string {
  return `The mirror cannot reach the primary (${primaryUrl}) to check your credentials, and has no recent successful check of them. Try again later.`;
}

export function busyMessage(): string {
  return "The mirror is busy serving other clones. Try again in a few seconds.";
}

export function throttledMessage(): string {
  return "Too many failed logins or refused repositories from your address lately. Check your credentials and try again later.";
}

/**
 * A push the mirror could not forward (mirror.push=proxy): the primary is down, unreachable,
 * or its certificate does not verify. git prints this body ("remote: ..." lines) on a failed
 * info/refs, then its own "fatal: unable to access ...: The requested URL returned error: 502".
 */
export function pushForwardFailedMessage(primaryUrl: string, repo: RepoId, why: string, tlsProblem: boolean): string {
  return [
    `The mirror forwards pushes to the primary (${primaryUrl.replace(/\/+$/, "")}), and cannot reach it: ${why}.`,
    "Nothing was pushed. Try again later, or push to the primary directly:",
    `  git push ${primaryRepoUrl(primaryUrl, repo)}`,
    ...(tlsProblem ? [`(The primary's certificate did not verify: the mirror's operator sets the primary's CA in ${KEYS.caFile.name}.)`] : []),
  ].join("\n");
}

/** The side-band note when the mirror has not fetched an accepted push within its bound. */
export function catchUpNote(why: string): string {
  return `smart-mirror: the primary accepted your push; the mirror will catch up shortly (${why})`;
}
