/**
 * Bitbucket applies its automated-setup values on the first start only. We keep that shape:
 * the first successful start records setup.baseUrl and setup.displayName in
 * DIR/data/setup.json; later starts compare. A changed base URL is refused (clone URLs,
 * webhooks and the primary's view of the mirror all point at the recorded one), a changed
 * display name is applied with a warning.
 *
 * decideSetup is the pure decision; reading and the atomic write are thin I/O around it.
 * `check` uses inspectSetup, which never writes.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { z } from "zod";
import { HOME_LAYOUT, homePath } from "../homeLayout";
import { MirrorConfig } from "./schema";
import { Problem, Warning } from "./problems";
import { KEYS } from "./keys";

export interface SetupRecord {
  baseUrl: string;
  displayName: string;
  /** ISO-8601 time of the first successful start. */
  setupAt: string;
  /** ISO-8601 time the record was last written. */
  updatedAt: string;
}

const RECORD_SCHEMA = z.object({
  baseUrl: z.string().min(1),
  displayName: z.string(),
  setupAt: z.string(),
  updatedAt: z.string(),
});

export const SETUP_RECORD_LABEL = HOME_LAYOUT.setupRecord.rel;

export function setupRecordPath(home: string): string {
  return homePath(path.resolve(home), "setupRecord");
}

export type SetupDecision =
  | { action: "create"; record: SetupRecord }
  | { action: "unchanged" }
  | { action: "update"; record: SetupRecord; warning: Warning }
  | { action: "refuse"; problem: Problem };

export interface SetupValues {
  baseUrl: string;
  displayName: string;
}

/** Same URL, ignoring a trailing slash and the case of scheme and host. */
export function sameBaseUrl(a: string, b: string): boolean {
  const norm = (u: string) => {
    try {
      const url = new URL(u);
      return (url.origin + url.pathname).replace(/\/+$/, "");
    } catch {
      return u.replace(/\/+$/, "");
    }
  };
  return norm(a) === norm(b);
}

export function decideSetup(recorded: SetupRecord | undefined, configured: SetupValues, now: Date, recordPath: string): SetupDecision {
  const at = now.toISOString();
  if (!recorded) {
    return { action: "create", record: { baseUrl: configured.baseUrl, displayName: configured.displayName, setupAt: at, updatedAt: at } };
  }
  if (!sameBaseUrl(recorded.baseUrl, configured.baseUrl)) {
    return {
      action: "refuse",
      problem: {
        key: KEYS.baseUrl.name,
        value: configured.baseUrl,
        message:
          `changed since setup: the mirror was set up on ${recorded.setupAt} as ${recorded.baseUrl}, but is now configured as ${configured.baseUrl}. ` +
          `Setup values apply on the first start only (as in Bitbucket); clone URLs, webhooks and the primary still point at the recorded URL`,
        fix:
          `revert the property: setup.baseUrl=${recorded.baseUrl}` +
          ` — or, to move this mirror to ${configured.baseUrl} on purpose, delete ${recordPath} and start again (setup re-runs and records the new URL)`,
      },
    };
  }
  if (recorded.displayName !== configured.displayName) {
    return {
      action: "update",
      record: { ...recorded, displayName: configured.displayName, updatedAt: at },
      warning: {
        key: KEYS.displayName.name,
        message: `changed from ${JSON.stringify(recorded.displayName)} to ${JSON.stringify(configured.displayName)} since setup; the new name is applied`,
      },
    };
  }
  return { action: "unchanged" };
}

export function readSetupRecord(home: string): { record?: SetupRecord; problem?: Problem } {
  const file = setupRecordPath(home);
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return {};
    return { problem: { key: SETUP_RECORD_LABEL, message: `cannot read ${file} (${code})`, fix: `make ${file} readable by the user the daemon runs as` } };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  const parsed = RECORD_SCHEMA.safeParse(json);
  if (!parsed.success) {
    return {
      problem: {
        key: SETUP_RECORD_LABEL,
        message: `${file} is damaged (not the JSON record of setup.baseUrl and setup.displayName)`,
        fix: `restore it from a backup, or delete it deliberately to re-run setup with the current setup.* values`,
      },
    };
  }
  return { record: parsed.data };
}

/** Atomic: a reader sees the old record or the new one, never half of one. Mode 0644. */
export function writeSetupRecord(home: string, record: SetupRecord): void {
  const file = setupRecordPath(home);
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  const fd = fs.openSync(tmp, "wx", 0o644);
  try {
    fs.fchmodSync(fd, 0o644); // the umask must not decide the mode
    fs.writeSync(fd, JSON.stringify(record, null, 2) + "\n");
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  // Make the rename itself durable.
  const dfd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(dfd);
  } finally {
    fs.closeSync(dfd);
  }
}

export type ApplySetupResult = { ok: true; warnings: Warning[]; record: SetupRecord } | { ok: false; problems: Problem[] };

/** For `run`: decide, and write the record when it is new or the display name changed. */
export function applySetup(config: MirrorConfig, now = new Date()): ApplySetupResult {
  const read = readSetupRecord(config.home);
  if (read.problem) return { ok: false, problems: [read.problem] };
  const d = decideSetup(read.record, config.setup, now, setupRecordPath(config.home));
  switch (d.action) {
    case "refuse":
      return { ok: false, problems: [d.problem] };
    case "create":
      writeSetupRecord(config.home, d.record);
      return { ok: true, warnings: [], record: d.record };
    case "update":
      writeSetupRecord(config.home, d.record);
      return { ok: true, warnings: [d.warning], record: d.record };
    case "unchanged":
      return { ok: true, warnings: [], record: read.record as SetupRecord };
  }
}

export interface SetupInspection {
  problems: Problem[];
  warnings: Warning[];
  /** One line for `check`'s summary. */
  summary: string;
}

/** For `check`: what `run` would decide, without writing anything. */
export function inspectSetup(config: MirrorConfig, now = new Date()): SetupInspection {
  const file = setupRecordPath(config.home);
  const read = readSetupRecord(config.home);
  if (read.problem) return { problems: [read.problem], warnings: [], summary: "unreadable" };
  const d = decideSetup(read.record, config.setup, now, file);
  switch (d.action) {
    case "refuse":
      return { problems: [d.problem], warnings: [], summary: "base URL differs from the record" };
    case "create":
      return { problems: [], warnings: [], summary: `none yet; the first run records it in ${file}` };
    case "update":
      return { problems: [], warnings: [d.warning], summary: `${file} (display name will be updated)` };
    case "unchanged":
      return { problems: [], warnings: [], summary: `${file} matches (set up ${read.record?.setupAt})` };
  }
}
