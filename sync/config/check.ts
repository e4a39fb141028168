/**
 * `smart-mirror check --home DIR`: every problem with its key, value and fix, then warnings;
 * exit 0 with a summary of the effective configuration when valid, 1 otherwise.
 * Writes nothing (the setup record is inspected, not created). `run` prints the same
 * formatProblems output when it refuses to start.
 */
import { formatDuration } from "./duration";
import { isKnownKey } from "./keys";
import { loadConfig } from "./load";
import { Problem, Warning } from "./problems";
import { propertiesPath, MirrorConfig } from "./schema";
import { inspectSetup } from "./setupRecord";
import { formatListen } from "./values";
import { repoKey } from "../types";

function label(key: string, line?: number): string {
  return line === undefined ? key : `${key} (line ${line})`;
}

function indentFix(fix: string): string {
  return fix.replace(/\n/g, "\n  ");
}

function shownValue(p: Problem): string {
  const v = p.value;
  // File-level problems (the properties file, the setup record) have no value to show.
  if (v === undefined) return isKnownKey(p.key) ? " (not set)" : "";
  if (v === "" || v.trim() !== v) return ` (value: ${JSON.stringify(v)})`;
  return ` (value: ${v.length > 200 ? `${v.slice(0, 197)}...` : v})`;
}

/** `key: message (value: ...)` and an indented `fix:` line per problem. */
export function formatProblems(problems: readonly Problem[]): string {
  return problems.map((p) => `${label(p.key, p.line)}: ${p.message}${shownValue(p)}\n  fix: ${indentFix(p.fix)}\n`).join("");
}

export function formatWarnings(warnings: readonly Warning[]): string {
  return warnings.map((w) => `${label(w.key, w.line)}: ${w.message}\n${w.fix ? `  fix: ${indentFix(w.fix)}\n` : ""}`).join("");
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** The effective configuration in a few lines. Secrets live in files; only their paths are shown. */
export function summarize(c: MirrorConfig, setupSummary: string): string {
  const off = (ms: number) => (ms === 0 ? "off" : `every ${formatDuration(ms)}`);
  const catalog = c.catalog.kind === "rest" ? `REST catalog (token file ${c.upstream.tokenFile})` : `static catalog: ${c.catalog.repos.map(repoKey).join(", ")}`;
  const keys = c.upstream.hostKeys.map((k) => `${k.type} ${k.fingerprint}`).join(", ");
  const rows: [string, string][] = [
    ["mirror", `${c.setup.displayName} — ${c.setup.baseUrl}`],
    ["primary", `${c.upstream.url}, ${catalog}${c.upstream.caFile ? `, extra CAs ${c.upstream.caFile}` : ""}`],
    ["ssh", `${c.upstream.ssh.url}, key ${c.upstream.keyFile}`],
    ["host keys", `${plural(c.upstream.hostKeys.length, "pinned key")}: ${keys}`],
    ["projects", c.projects === "ALL" ? "ALL" : c.projects.join(", ")],
    [
      "sync",
      `reconcile every ${formatDuration(c.sync.reconcileIntervalMs)}, ${c.sync.concurrency} at a time, timeout ${formatDuration(c.sync.timeoutMs)}, ` +
        `retry backoff up to ${formatDuration(c.sync.retryMaxMs)}, ${c.sync.excludeRefs.length ? `excluding ${c.sync.excludeRefs.join(", ")}` : "all refs"}`,
    ],
    ["webhook", c.webhook.secretFile ? `enabled (secret file ${c.webhook.secretFile})` : "disabled (mirror.webhook.secretFile not set)"],
    ["purge", c.purge.enabled ? `enabled, at most ${c.purge.protectPercent}% of repositories per reconcile` : "disabled"],
    ["maintenance", `repack ${off(c.maintenance.repackIntervalMs)}, fsck ${off(c.maintenance.fsckIntervalMs)}`],
    [
      "serve",
      `${formatListen(c.serve.listen)}, auth ${c.serve.auth}` +
        (c.serve.auth === "tokens" ? ` (tokens file ${c.serve.tokensFile})` : c.serve.auth === "primary" ? ` (cache ${c.serve.authCacheTtlMs === 0 ? "off" : formatDuration(c.serve.authCacheTtlMs)})` : ""),
    ],
    ...(c.farm
      ? [["farm", `node ${c.farm.nodeId ?? "(host name)"}, peers from ${c.farm.peersFile}, TLS name ${c.farm.serverName}${c.farm.caFile ? ` (CAs ${c.farm.caFile})` : ""}, token file ${c.farm.tokenFile}`] as [string, string]]
      : []),
    ["log level", c.log.level],
    ["setup record", setupSummary],
  ];
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  return rows.map(([k, v]) => `  ${(k + ":").padEnd(width)}${v}\n`).join("");
}

export function runCheck(home: string): { exitCode: number; text: string } {
  const file = propertiesPath(home);
  const r = loadConfig(home);
  let problems: Problem[];
  let warnings: Warning[];
  let summary = "";
  if (r.ok) {
    const setup = inspectSetup(r.config);
    problems = setup.problems;
    warnings = [...r.warnings, ...setup.warnings];
    summary = summarize(r.config, setup.summary);
  } else {
    problems = r.problems;
    warnings = r.warnings;
  }
  let text: string;
  if (problems.length > 0) {
    text = `${file}: ${plural(problems.length, "problem")}\n\n${formatProblems(problems)}`;
  } else {
    text = `${file}: OK\n\n${summary}`;
  }
  if (warnings.length > 0) text += `\n${plural(warnings.length, "warning")}:\n\n${formatWarnings(warnings)}`;
  return { exitCode: problems.length > 0 ? 1 : 0, text };
}
