/**
 * Sorts sync errors into a few kinds, the label of smart_mirror_sync_failures_total. A fixed,
 * small set keeps the metric's cardinality bounded however many repos fail (no per-repo or
 * per-message labels), while still telling an operator where to look first.
 */

export const FAILURE_KINDS = ["timeout", "auth", "host_key", "network", "not_found", "disk", "git", "other"] as const;
export type FailureKind = (typeof FAILURE_KINDS)[number];

function isFailureKind(v: unknown): v is FailureKind {
  return typeof v === "string" && (FAILURE_KINDS as readonly string[]).includes(v);
}

// Checked in order; the first match wins. Host-key problems come before auth because OpenSSH
// prints both "Host key verification failed" and "Permission denied" style lines.
const RULES: ReadonlyArray<[FailureKind, RegExp]> = [
  ["host_key", /host key|REMOTE HOST IDENTIFICATION|HostKeyMismatch/i],
  ["timeout", /ETIMEDOUT|timed? ?out|timeout/i],
  ["auth", /permission denied|publickey|authenticat|EACCES|not authorized|access denied/i],
  ["network", /ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|EPIPE|connection (closed|reset|refused|lost)|broken pipe|could not resolve/i],
  ["not_found", /does not appear to be a git repository|repository not found|not found|no such repository/i],
  ["disk", /ENOSPC|no space left|disk quota|EDQUOT|EROFS|read-only file system/i],
  ["git", /^fatal:|^error:|git exited|exit code/im],
];

/**
 * The kind of a sync failure. An error object may carry its own `kind` (the upstream module
 * knows best); otherwise its `code` and message are matched against known patterns.
 */
export function failureKind(error: unknown): FailureKind {
  if (error && typeof error === "object") {
    const own = (error as { kind?: unknown }).kind;
    if (isFailureKind(own)) return own;
  }
  const text = describeError(error);
  for (const [kind, re] of RULES) if (re.test(text)) return kind;
  return "other";
}

/** Error text as shown in /status: code + message, secrets in URLs masked, length bounded. */
export function describeError(error: unknown, maxChars = 500): string {
  let text: string;
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    text = code && !error.message.includes(code) ? `${code}: ${error.message}` : error.message;
  } else if (typeof error === "string") {
    text = error;
  } else {
    try {
      text = JSON.stringify(error) ?? String(error);
    } catch {
      text = String(error);
    }
  }
  // user:password@ in URLs (an http(s) upstream misconfigured by hand) must never reach /status.
  text = text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/gi, "$1***@").trim();
  // Bounded: 10,000 repos each holding a full git stderr would blow the memory budget.
  return text.length > maxChars ? `${text.slice(0, maxChars - 1)}…` : text;
}
