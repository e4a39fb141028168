/**
 * Reads what the exec supervisor needs from a systemd unit file: the [Service] commands,
 * credentials, environment and stop behaviour, and [Install] WantedBy. A subset of systemd's
 * syntax, enough for the units we render; anything outside it is an error that says so rather
 * than a silently different command. Pure.
 */

export interface UnitFile {
  /** section -> ordered [key, value] pairs (keys repeat: Environment=, ExecStartPre=...). */
  sections: Map<string, Array<[string, string]>>;
}

export function parseUnitFile(text: string): UnitFile {
  const sections = new Map<string, Array<[string, string]>>();
  let current: Array<[string, string]> | undefined;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i].trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    // A trailing backslash continues the line (comment lines inside are skipped, as systemd does).
    while (line.endsWith("\\") && i + 1 < lines.length) {
      const next = lines[++i].trim();
      if (next.startsWith("#") || next.startsWith(";")) {
        line = line.slice(0, -1) + " ";
        continue;
      }
      line = line.slice(0, -1) + " " + next;
    }
    const sec = /^\[([^\]]+)\]$/.exec(line);
    if (sec) {
      current = sections.get(sec[1]) ?? [];
      sections.set(sec[1], current);
      continue;
    }
    const eq = line.indexOf("=");
    if (eq <= 0 || !current) throw new Error(`unit file line ${i + 1}: expected "[Section]" or "Key=value", got ${JSON.stringify(line)}`);
    current.push([line.slice(0, eq).trim(), line.slice(eq + 1).trim()]);
  }
  return { sections };
}

/** All values of a key; an empty assignment resets the list (systemd's rule for list keys). */
export function values(u: UnitFile, section: string, key: string): string[] {
  let out: string[] = [];
  for (const [k, v] of u.sections.get(section) ?? []) {
    if (k !== key) continue;
    if (v === "") out = [];
    else out.push(v);
  }
  return out;
}

/** The last value of a key (later assignments win). */
export function value(u: UnitFile, section: string, key: string): string | undefined {
  const v = values(u, section, key);
  return v.length > 0 ? v[v.length - 1] : undefined;
}

const ESCAPES: Record<string, string> = { n: "\n", t: "\t", r: "\r", "\\": "\\", '"': '"', "'": "'", " ": " ", s: " " };

/**
 * Split a command line or an Environment= value into words: whitespace separates, "..." and
 * '...' group, C-style escapes. `%%` is a literal `%`; other specifiers are refused.
 */
export function splitWords(s: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let quote: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "\\" && i + 1 < s.length) {
      const e = s[++i];
      if (!(e in ESCAPES)) throw new Error(`unsupported escape "\\${e}" in ${JSON.stringify(s)}`);
      word = (word ?? "") + ESCAPES[e];
    } else if (c === "%") {
      if (s[i + 1] !== "%") throw new Error(`unit specifier "%${s[i + 1] ?? ""}" in ${JSON.stringify(s)} is not supported by the exec supervisor; write the value out`);
      word = (word ?? "") + "%";
      i++;
    } else if (quote) {
      if (c === quote) quote = undefined;
      else word = (word ?? "") + c;
    } else if (c === '"' || c === "'") {
      quote = c;
      word = word ?? "";
    } else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else {
      word = (word ?? "") + c;
    }
  }
  if (quote) throw new Error(`unterminated ${quote} in ${JSON.stringify(s)}`);
  if (word !== undefined) words.push(word);
  return words;
}

/**
 * An Exec*= line as argv: `$NAME` (a whole word, split at whitespace) and `${NAME}` (inside a
 * word) are replaced from `env`, as systemd does. The `-` prefix (ignore failure) is accepted;
 * the other prefixes change credentials or argv[0] and are refused.
 */
export function commandArgv(line: string, env: Record<string, string>): string[] {
  let l = line.trim();
  if (l.startsWith("-")) l = l.slice(1);
  if (/^[@:+!|]/.test(l)) throw new Error(`Exec prefix "${l[0]}" in ${JSON.stringify(line)} is not supported by the exec supervisor`);
  const out: string[] = [];
  for (const w of splitWords(l)) {
    const whole = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(w);
    if (whole) {
      out.push(...(env[whole[1]] ?? "").split(/\s+/).filter(Boolean));
      continue;
    }
    out.push(w.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, n: string) => env[n] ?? ""));
  }
  if (out.length === 0) throw new Error(`empty command line ${JSON.stringify(line)}`);
  if (!out[0].startsWith("/")) throw new Error(`${JSON.stringify(out[0])} in ${JSON.stringify(line)}: the executable must be an absolute path`);
  return out;
}

/** A systemd time span ("30s", "1min 30s", "500ms", "90" = seconds, "infinity") in ms. */
export function parseTimeSpan(s: string): number {
  if (s.trim() === "infinity") return Number.POSITIVE_INFINITY;
  const units: Record<string, number> = { us: 0.001, ms: 1, s: 1000, sec: 1000, m: 60_000, min: 60_000, h: 3_600_000, hr: 3_600_000, d: 86_400_000 };
  let total = 0;
  const re = /(\d+(?:\.\d+)?)\s*([a-z]*)/g;
  const compact = s.replace(/\s+/g, " ").trim();
  let consumed = "";
  for (const m of compact.matchAll(re)) {
    const unit = m[2] || "s";
    if (!(unit in units)) throw new Error(`time span ${JSON.stringify(s)}: unknown unit "${unit}"`);
    total += Number(m[1]) * units[unit];
    consumed += m[0];
  }
  if (consumed.replace(/\s/g, "") !== compact.replace(/\s/g, "") || consumed === "") throw new Error(`time span ${JSON.stringify(s)} is not like "30s" or "1min 30s"`);
  return total;
}

export interface ExecSpec {
  start: string[];
  reload?: string[];
  user?: string;
  group?: string;
  /** Environment= assignments in order. */
  env: Record<string, string>;
  workingDirectory?: string;
  /** TimeoutStopSec (systemd's default 90 s). */
  stopTimeoutMs: number;
  /** KillMode: mixed/control-group/process (none is treated as process). */
  killMode: "mixed" | "control-group" | "process";
  wantedBy: string[];
  /** UMask= (systemd's default 0022): the service's, not the applier's (a deploy runs under 077). */
  umask: number;
}

export function execSpec(u: UnitFile, name: string): ExecSpec {
  const env: Record<string, string> = {};
  for (const v of values(u, "Service", "Environment")) {
    for (const a of splitWords(v)) {
      const eq = a.indexOf("=");
      if (eq <= 0) throw new Error(`${name}: Environment entry ${JSON.stringify(a)} is not NAME=value`);
      env[a.slice(0, eq)] = a.slice(eq + 1);
    }
  }
  const starts = values(u, "Service", "ExecStart");
  if (starts.length !== 1) throw new Error(`${name}: needs exactly one ExecStart= (found ${starts.length})`);
  for (const k of ["ExecStartPre", "ExecStartPost", "ExecStop"]) if (values(u, "Service", k).length > 0) throw new Error(`${name}: ${k}= is not supported by the exec supervisor`);
  const type = value(u, "Service", "Type") ?? "simple";
  if (!["simple", "exec", "notify"].includes(type)) throw new Error(`${name}: Type=${type} is not supported by the exec supervisor (simple, exec, notify: it runs the main process in the foreground)`);
  const reloads = values(u, "Service", "ExecReload");
  const km = value(u, "Service", "KillMode") ?? "control-group";
  const wd = value(u, "Service", "WorkingDirectory");
  const umask = value(u, "Service", "UMask") ?? "0022";
  if (!/^0?[0-7]{3,4}$/.test(umask)) throw new Error(`${name}: UMask=${umask} is not an octal mask like 0027`);
  return {
    start: commandArgv(starts[0], env),
    reload: reloads.length > 0 ? commandArgv(reloads[reloads.length - 1], { ...env, MAINPID: "${MAINPID}" }) : undefined,
    user: value(u, "Service", "User"),
    group: value(u, "Service", "Group"),
    env,
    workingDirectory: wd?.replace(/^-/, ""),
    stopTimeoutMs: parseTimeSpan(value(u, "Service", "TimeoutStopSec") ?? value(u, "Service", "TimeoutSec") ?? "90s"),
    killMode: km === "mixed" ? "mixed" : km === "control-group" ? "control-group" : "process",
    wantedBy: values(u, "Install", "WantedBy").flatMap((v) => v.split(/\s+/)),
    umask: parseInt(umask, 8),
  };
}
