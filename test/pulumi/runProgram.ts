/**
 * Runs a Pulumi program the way `pulumi preview` / `pulumi up` does, minus the CLI: the same
 * process the nodejs language host starts (sdk/nodejs/cmd/pulumi-language-nodejs/main.go,
 * execRuntime + constructArguments + constructConfig), against a RecordingEngine.
 *
 * - working directory and entry point: the engine's getPwdMain (pkg/engine/project.go): `main`
 *   of Pulumi.yaml names a file -> pwd is its folder and the entry point its base name; no
 *   `main` -> the project folder and ".";
 * - `node [nodeargs] <require.resolve("@pulumi/pulumi/cmd/run") from the program folder>
 *   --monitor A --engine A --organization O --project P --root-directory R --stack S --pwd D
 *   [--dry-run] --parallel N <entry point>`;
 * - environment: the caller's, plus PULUMI_CONFIG (keys `ns:config:name`, structured values
 *   as JSON, secrets decrypted), PULUMI_CONFIG_SECRET_KEYS (`ns:name`), PULUMI_NODEJS_TYPESCRIPT
 *   and PULUMI_NODEJS_TSCONFIG_PATH from the project's runtime options.
 *
 * Not reproduced: the language host's synchronous-invoke pipes (--sync; only the SDK's
 * deprecated synchronous invokes use them) and tracing.
 */
import { spawn, execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { Recording, RecordingEngine } from "./recordingEngine";

/** `pulumi up`'s default --parallel (pkg/cmd/pulumi/operations/up.go defaultParallel: 4 * GOMAXPROCS). */
const PARALLEL = 4 * os.availableParallelism();
/** The organization of a self-managed backend. */
const ORGANIZATION = "organization";
/** The language host's exit code for "already logged a user-actionable error". */
export const EXIT_AFTER_LOGGED_ERROR = 32;

export interface ProjectFile {
  name: string;
  main?: string;
  runtime: string | { name: string; options?: Record<string, unknown> };
  config?: Record<string, unknown>;
}

export interface ProgramLocation {
  /** Folder of Pulumi.yaml (--root-directory). */
  root: string;
  /** The program's working directory (--pwd). */
  pwd: string;
  /** The entry point relative to pwd ("." = package.json's main). */
  entryPoint: string;
  project: ProjectFile;
}

/** Reads Pulumi.yaml and resolves pwd/entry point like the engine's getPwdMain. */
export function locateProgram(root: string): ProgramLocation {
  const project = yaml.load(fs.readFileSync(path.join(root, "Pulumi.yaml"), "utf8")) as ProjectFile;
  if (!project.main) return { root, pwd: root, entryPoint: ".", project };
  const main = path.resolve(root, project.main);
  if (fs.statSync(main).isDirectory()) return { root, pwd: main, entryPoint: ".", project };
  return { root, pwd: path.dirname(main), entryPoint: path.basename(main), project };
}

function runtimeOptions(project: ProjectFile): Record<string, unknown> {
  return typeof project.runtime === "string" ? {} : (project.runtime.options ?? {});
}

/** A config key as the engine spells it: `ns:name`, the project's namespace when none is given. */
export function qualifyKey(key: string, projectName: string): string {
  return key.includes(":") ? key : `${projectName}:${key}`;
}

export interface StackConfig {
  /** `ns:name` -> the value the engine hands over (strings; objects and arrays as JSON). */
  values: Record<string, string>;
  /** `ns:name` of every secret value. */
  secretKeys: string[];
}

function isSecure(v: unknown): v is { secure: string } {
  return typeof v === "object" && v !== null && typeof (v as { secure?: unknown }).secure === "string" && Object.keys(v).length === 1;
}

/**
 * The configuration the engine passes for one stack: Pulumi.<stack>.yaml's `config:` (plus
 * the project's defaults), with `secrets` standing in for what `pulumi config set --secret`
 * stored (the engine decrypts them before the run). A `secure:` value in the file without a
 * test value is an error naming the key.
 */
export function stackConfig(loc: ProgramLocation, stack: string, secrets: Record<string, string> = {}): StackConfig {
  const file = path.join(loc.root, `Pulumi.${stack}.yaml`);
  const doc = (yaml.load(fs.readFileSync(file, "utf8")) ?? {}) as { config?: Record<string, unknown> };
  const values: Record<string, string> = {};
  const secretKeys = new Set<string>();
  const defaults = Object.entries(loc.project.config ?? {}).map(([k, v]) => [k, typeof v === "object" && v !== null && "default" in v ? (v as { default: unknown }).default : v] as const);
  for (const [rawKey, v] of [...defaults, ...Object.entries(doc.config ?? {})]) {
    const key = qualifyKey(rawKey, loc.project.name);
    if (isSecure(v)) {
      const plain = secrets[key];
      if (plain === undefined) throw new Error(`${file}: ${key} is a secret; give the test its decrypted value (secrets: { "${key}": ... })`);
      values[key] = plain;
      secretKeys.add(key);
    } else if (v !== undefined) {
      values[key] = typeof v === "string" ? v : JSON.stringify(v);
    }
  }
  for (const [rawKey, plain] of Object.entries(secrets)) {
    const key = qualifyKey(rawKey, loc.project.name);
    values[key] = plain;
    secretKeys.add(key);
  }
  return { values, secretKeys: [...secretKeys].sort() };
}

/** PULUMI_CONFIG as pulumi-language-nodejs writes it (constructConfig: `ns:config:name`). */
export function pulumiConfigEnv(config: StackConfig): Record<string, string> {
  const legacy = Object.fromEntries(
    Object.entries(config.values).map(([k, v]) => {
      const i = k.indexOf(":");
      return [`${k.slice(0, i)}:config:${k.slice(i + 1)}`, v];
    }),
  );
  return { PULUMI_CONFIG: JSON.stringify(legacy), PULUMI_CONFIG_SECRET_KEYS: JSON.stringify(config.secretKeys) };
}

/** The language host's locateModule: `require.resolve` run by node in the program's folder. */
export function locateRunModule(pwd: string): string {
  const script = `try { console.log(require.resolve('@pulumi/pulumi/cmd/run')); } catch (error) { if (error.code === 'MODULE_NOT_FOUND') { console.error("It looks like the Pulumi SDK has not been installed. Have you run pulumi install?") } else { console.error(error.message); } process.exit(1); }`;
  return execFileSync("node", ["-e", script], { cwd: pwd, encoding: "utf8" }).trim();
}

export interface RunOptions {
  /** Folder of Pulumi.yaml. */
  root: string;
  stack: string;
  dryRun: boolean;
  engine: RecordingEngine;
  /** Decrypted values of secret config keys (`key` or `ns:key`). */
  secrets?: Record<string, string>;
  /** Extra environment (e.g. AWS_REGION); PULUMI_* and TS_NODE_* of the caller are not passed. */
  env?: Record<string, string>;
}

export interface RunResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  durationMs: number;
  recording: Recording;
  /** The arguments the runner got (for the report of a failure). */
  argv: string[];
}

/** The caller's environment without what would change how the runner or the SDK behaves. */
function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k.startsWith("PULUMI_") || k.startsWith("TS_NODE_") || k === "NODE_OPTIONS" || k.startsWith("JEST_")) continue;
    env[k] = v;
  }
  return env;
}

/** One `pulumi preview` (dryRun) or `pulumi up` of the program, recorded by the engine. */
export async function runProgram(opts: RunOptions): Promise<RunResult> {
  const loc = locateProgram(opts.root);
  if (loc.project.name !== opts.engine.project || opts.stack !== opts.engine.stack) {
    throw new Error(`engine started for ${opts.engine.project}/${opts.engine.stack}, program is ${loc.project.name}/${opts.stack}`);
  }
  const options = runtimeOptions(loc.project);
  const config = stackConfig(loc, opts.stack, opts.secrets);
  const env: Record<string, string> = { ...cleanEnv(), ...opts.env, ...pulumiConfigEnv(config) };
  // parseOptions: typescript defaults to true.
  if (options.typescript !== false) env.PULUMI_NODEJS_TYPESCRIPT = "true";
  if (typeof options.tsconfig === "string") env.PULUMI_NODEJS_TSCONFIG_PATH = options.tsconfig;
  const nodeArgs = typeof options.nodeargs === "string" ? options.nodeargs.split(/\s+/).filter(Boolean) : [];

  const runPath = locateRunModule(loc.pwd);
  const argv = [
    ...nodeArgs,
    runPath,
    "--monitor", opts.engine.address,
    "--engine", opts.engine.address,
    "--organization", ORGANIZATION,
    "--project", loc.project.name,
    "--root-directory", loc.root,
    "--stack", opts.stack,
    "--pwd", loc.pwd,
    ...(opts.dryRun ? ["--dry-run"] : []),
    "--parallel", String(PARALLEL),
    loc.entryPoint,
  ];
  const recording = opts.engine.begin(opts.dryRun);
  const started = Date.now();
  // The language host does not set the child's working directory; the runner chdirs to --pwd.
  const child = spawn("node", argv, { env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const [exitCode, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, sig) => resolve([code, sig]));
  });
  return { exitCode, signal, stdout, stderr, durationMs: Date.now() - started, recording, argv };
}

/** The error messages a failed run logged, for assertion messages. */
export function failureReport(r: RunResult): string {
  const errors = r.recording.logs.filter((l) => l.severity === "error").map((l) => l.message);
  return [`exit ${r.exitCode}${r.signal ? ` (${r.signal})` : ""}`, ...errors, r.stderr.trim(), r.stdout.trim()].filter(Boolean).join("\n");
}
