/**
 * The results contract (shared/DESIGN.md): `npm run bench -- NAME` writes
 * `bench/results/NAME.json`
 *
 *     {"benchmark": NAME, "command": "npm run bench -- NAME", "when": ISO-8601,
 *      "machine": "...", "results": {flat metric names: numbers}, "notes": "...",
 *      "goals": {metric: ">= 40" | "<= 300"}}
 *
 * and bench/results/README.md, a table of the latest results of every benchmark, generated
 * from those files (so a benchmark written by someone else shows up too). Rendering is pure;
 * the writers are thin.
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { SCALE_ENV } from "./scale";

export const RESULTS_DIR = path.resolve(__dirname, "results");

export type MetricValue = number | string | boolean;

export interface ResultDoc {
  benchmark: string;
  command: string;
  when: string;
  machine: string;
  results: Record<string, MetricValue>;
  notes: string;
  /** Targets some metrics are held to, as "<op> <number>" (op: >=, <=). Optional. */
  goals?: Record<string, string>;
}

/** The command that reproduces a run (the scale is part of it when not 1). */
export function commandFor(name: string, scale: number): string {
  return `${scale === 1 ? "" : `${SCALE_ENV}=${scale} `}npm run bench -- ${name}`;
}

function firstLine(cmd: string, args: string[]): string {
  try {
    const out = execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    return out.trim().split("\n")[0];
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string };
    return (err.stderr || err.stdout || "unknown").trim().split("\n")[0];
  }
}

/** `ssh -V` prints its version to stderr. */
function sshVersion(): string {
  const r = spawnSync("ssh", ["-V"], { encoding: "utf8" });
  return `${r.stderr ?? ""}${r.stdout ?? ""}`.trim().split("\n")[0] || "unknown";
}

/** "AMD EPYC, 2 cores, 23.5 GiB RAM, Debian GNU/Linux 12 (bookworm), Linux 6.1, node v20.19.0, git 2.39.5, OpenSSH_9.2p1". */
export function machineInfo(): string {
  const cpu = os.cpus()[0]?.model.trim() || "unknown CPU";
  let distro = `${os.type()}`;
  try {
    const m = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(fs.readFileSync("/etc/os-release", "utf8"));
    if (m) distro = m[1];
  } catch {
    /* not Linux */
  }
  const ram = `${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB RAM`;
  const git = firstLine("git", ["--version"]).replace(/^git version /, "git ");
  return [cpu, `${os.cpus().length} cores`, ram, distro, `${os.type()} ${os.release()}`, `node ${process.version}`, git, sshVersion()].join(", ");
}

export function resultPath(name: string, dir = RESULTS_DIR): string {
  if (!/^[a-z0-9_]+$/.test(name)) throw new Error(`benchmark name must match [a-z0-9_]+ (got ${JSON.stringify(name)})`);
  return path.join(dir, `${name}.json`);
}

export function writeResult(doc: ResultDoc, dir = RESULTS_DIR): string {
  const file = resultPath(doc.benchmark, dir);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(doc, null, 2) + "\n");
  fs.renameSync(tmp, file);
  return file;
}

/** Every result file in dir, by benchmark name; files that are not result documents are skipped. */
export function readResults(dir = RESULTS_DIR): ResultDoc[] {
  if (!fs.existsSync(dir)) return [];
  const docs: ResultDoc[] = [];
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith(".json")).sort()) {
    try {
      const doc = JSON.parse(fs.readFileSync(path.join(dir, f), "utf8")) as ResultDoc;
      if (typeof doc.benchmark === "string" && doc.results && typeof doc.results === "object") docs.push(doc);
    } catch {
      /* not ours */
    }
  }
  return docs;
}

/** Whether `value` meets a goal such as ">= 40", "<= 300", "== 0" or "== true"; undefined when it cannot say. */
export function goalMet(value: MetricValue, goal: string): boolean | undefined {
  const flag = /^\s*==\s*(true|false)\s*$/.exec(goal);
  if (flag) return typeof value === "boolean" ? value === (flag[1] === "true") : undefined;
  const exact = /^\s*==\s*(-?\d+(?:\.\d+)?)\s*$/.exec(goal);
  if (exact) return typeof value === "number" ? value === Number(exact[1]) : undefined;
  const m = /^\s*(>=|<=)\s*(-?\d+(?:\.\d+)?)\s*$/.exec(goal);
  if (!m || typeof value !== "number") return undefined;
  const target = Number(m[2]);
  return m[1] === ">=" ? value >= target : value <= target;
}

function cell(v: unknown): string {
  return String(v).replace(/\|/g, "\\|").replace(/\n/g, " ");
}

function formatValue(v: MetricValue): string {
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : String(Math.round(v * 100) / 100);
  return String(v);
}

/** The metrics the design names as the headline of each benchmark (shared/DESIGN.md's contract). */
export const HEADLINE_METRICS: readonly string[] = [
  "reconcile.speedup_vs_fetch_loop",
  "reconcile.speedup_vs_controlmaster_loop",
  "sync_lag.p50_ms",
  "sync_lag.p99_ms",
  "sync_lag_wan50.p50_ms",
  "initial_sync.speedup",
  "daemon.rss_mb_10k_repos",
  "clone.ratio_vs_http_backend",
  "clone.ratio_vs_file",
  "concurrent32.all_ok",
  "concurrent32.throughput_ratio_vs_http_backend",
  "concurrent32.daemon_rss_mb",
  "push.ratio_vs_direct_wan50",
  "push.read_your_writes_ms_p50",
  "farm.clones",
  "farm.drain_ms_p50",
  "farm.primary_ssh_sessions_per_reconcile_1_node",
  "farm.primary_ssh_sessions_per_reconcile_3_nodes",
  "farm.seed_bytes_from_peers",
  "farm.seed_bytes_from_primary",
];

const TABLE_HEAD = ["| Benchmark | Metric | Value | Goal |", "|---|---|---|---|"];

/** One table row per metric of `docs` that `keep` accepts. */
function metricRows(docs: readonly ResultDoc[], keep: (d: ResultDoc, metric: string) => boolean): string[] {
  const rows: string[] = [];
  for (const d of docs) {
    for (const [k, v] of Object.entries(d.results)) {
      if (!keep(d, k)) continue;
      const goal = d.goals?.[k];
      const met = goal === undefined ? undefined : goalMet(v, goal);
      const goalText = goal === undefined ? "" : `${goal.replace(">=", "≥").replace("<=", "≤")}${met === undefined ? "" : met ? " ✅" : " ❌ not met"}`;
      rows.push(`| ${cell(d.benchmark)} | \`${cell(k)}\` | ${cell(formatValue(v))} | ${cell(goalText)} |`);
    }
  }
  return rows;
}

/** bench/results/README.md: one table of every metric, then per-benchmark command, date and notes. Pure. */
export function renderReadme(docs: readonly ResultDoc[]): string {
  const out: string[] = [];
  out.push("# Benchmark results");
  out.push("");
  out.push("Generated by `npm run bench` from the JSON files in this directory; do not edit by hand.");
  out.push("Each benchmark runs its baseline in the same run, on the same machine, against the same primary.");
  const machines = [...new Set(docs.map((d) => d.machine))];
  if (machines.length === 1) out.push(`Machine: ${machines[0]}.`);
  out.push("");
  if (docs.length === 0) {
    out.push("No results yet: run `npm run bench`.");
    return out.join("\n") + "\n";
  }
  out.push(...TABLE_HEAD, ...metricRows(docs, () => true));
  out.push("");
  for (const d of docs) {
    out.push(`### ${d.benchmark}`);
    out.push("");
    out.push(`\`${d.command}\`, ${d.when}${machines.length > 1 ? `, on ${d.machine}` : ""}.`);
    if (d.notes) {
      out.push("");
      out.push(d.notes.trim());
    }
    out.push("");
  }
  return out.join("\n");
}

/**
 * The project README's short table: the headline metrics and every metric held to a goal, with
 * a link to the full results (bench/results/README.md) for the rest, the setups and the notes. Pure.
 */
export function renderSummary(docs: readonly ResultDoc[], fullResults = "bench/results/README.md"): string {
  if (docs.length === 0) return "_No benchmark results yet: run `npm run bench`._";
  const rows = metricRows(docs, (d, k) => HEADLINE_METRICS.includes(k) || d.goals?.[k] !== undefined);
  const machines = [...new Set(docs.map((d) => d.machine))];
  const on = machines.length === 1 ? ` Machine: ${machines[0]}.` : "";
  return [...TABLE_HEAD, ...rows, "", `Every metric, each benchmark's setup and its notes: [${fullResults}](${fullResults}).${on}`].join("\n");
}

export function writeReadme(dir = RESULTS_DIR): string {
  const file = path.join(dir, "README.md");
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(file, renderReadme(readResults(dir)));
  return file;
}
