/**
 * The life of a stack as the tests replay it: `pulumi preview`, `pulumi up`, and `pulumi up`
 * again with the same config, each under Pulumi's own runner against a recording engine, plus
 * the checks every program must pass (it ran cleanly, the update registers what the preview
 * announced, the second update registers identical inputs, secrets never travel in plain text).
 */
import { isSecret, Recording, RecordingEngine, Registration } from "./recordingEngine";
import { failureReport, locateProgram, RunResult, runProgram } from "./runProgram";

export interface Lifecycle {
  preview: RunResult;
  update: RunResult;
  again: RunResult;
}

export interface LifecycleOptions {
  root: string;
  stack: string;
  secrets?: Record<string, string>;
  env?: Record<string, string>;
}

function assertRan(what: string, r: RunResult): void {
  if (r.exitCode !== 0 || r.recording.logs.some((l) => l.severity === "error")) throw new Error(`${what} failed:\n${failureReport(r)}`);
}

/** preview, up, up, each as its own runner process (as the CLI does), against one engine. */
export async function previewUpdateUpdate(opts: LifecycleOptions): Promise<Lifecycle> {
  const project = locateProgram(opts.root).project.name;
  const engine = await RecordingEngine.start({ project, stack: opts.stack });
  try {
    const run = async (what: string, dryRun: boolean) => {
      const r = await runProgram({ ...opts, dryRun, engine });
      assertRan(`${what} of ${project}/${opts.stack}`, r);
      return r;
    };
    const preview = await run("pulumi preview", true);
    const update = await run("pulumi up", false);
    const again = await run("second pulumi up", false);
    return { preview, update, again };
  } finally {
    await engine.close();
  }
}

/** Everything of a registration the engine would diff or act on, keyed by URN. */
export function registeredInputs(rec: Recording): Map<string, Omit<Registration, "urn">> {
  return new Map(rec.registrations.map(({ urn, ...rest }) => [urn, rest]));
}

export function urns(rec: Recording): string[] {
  return rec.registrations.map((r) => r.urn).sort();
}

/** The registration of a type (and name suffix), failing with the list of what was registered. */
export function one(rec: Recording, type: string, nameSuffix = ""): Registration {
  const found = rec.registrations.filter((r) => r.type === type && r.name.endsWith(nameSuffix));
  if (found.length !== 1) throw new Error(`expected one ${type} *${nameSuffix}, got ${found.length}; registered: ${urns(rec).join(", ")}`);
  return found[0];
}

/** The value with every secret replaced by a marker: what a log or the state would show in plain text. */
export function plainParts(v: unknown): unknown {
  if (isSecret(v)) return "[secret]";
  if (Array.isArray(v)) return v.map(plainParts);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plainParts(x)]));
  return v;
}

/** Where a secret value shows up outside a secret wrapper (inputs, outputs, logs), as `urn inputs|outputs` / `log severity`. */
export function leaks(rec: Recording, secretValues: string[]): string[] {
  const found: string[] = [];
  const check = (where: string, value: unknown) => {
    const text = JSON.stringify(plainParts(value));
    for (const s of secretValues) if (text.includes(s) || text.includes(JSON.stringify(s).slice(1, -1))) found.push(where);
  };
  for (const r of rec.registrations) check(`${r.urn} inputs`, r.inputs);
  for (const [urn, outs] of rec.outputs) check(`${urn} outputs`, outs);
  // Debug messages are the SDK's own traces (it prints whole RPC responses, secrets included,
  // as it does under the real engine, shown only with --debug); what a user sees is checked.
  for (const l of rec.logs) if (l.severity !== "debug") check(`log ${l.severity}`, l.message);
  return found;
}
