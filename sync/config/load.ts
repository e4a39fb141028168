/**
 * loadConfig(home): read DIR/shared/bitbucket.properties, validate every key, check the files
 * it points at, and return either the typed config or ALL the problems found, with warnings
 * (unknown keys with the closest known one, ignored keys, repeated keys) either way.
 * Reads only: `check` relies on this writing nothing.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { homePaths } from "../homeLayout";
import { checkFiles } from "./files";
import { closestKey, isBitbucketOnlyKey, isKnownKey, minimalExample } from "./keys";
import { Problem, Warning } from "./problems";
import { decodeProperties, Entry, FILE_LABEL, parseProperties } from "./properties";
import { MirrorConfig, propertiesPath, validateEntries } from "./schema";

export type LoadResult = { ok: true; config: MirrorConfig; warnings: Warning[] } | { ok: false; problems: Problem[]; warnings: Warning[] };

export function loadConfig(home: string): LoadResult {
  const abs = path.resolve(home);
  const file = propertiesPath(abs);
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    return { ok: false, problems: [readProblem(abs, file, e as NodeJS.ErrnoException)], warnings: [] };
  }
  const decoded = decodeProperties(bytes);
  if ("problem" in decoded) return { ok: false, problems: [decoded.problem], warnings: [] };
  return validateText(decoded.text, abs);
}

/** Validation of properties text, with file checks; what loadConfig does after reading. */
export function validateText(text: string, home: string): LoadResult {
  const parsed = parseProperties(text);
  const problems = [...parsed.problems];
  const warnings = [...parsed.warnings, ...unknownKeyWarnings(parsed.entries)];
  const v = validateEntries(parsed.entries, home);
  problems.push(...v.problems);
  warnings.push(...v.warnings);
  const files = checkFiles(v.files);
  problems.push(...files.problems);
  warnings.push(...files.warnings);
  if (problems.length > 0 || !v.config) return { ok: false, problems, warnings };
  return { ok: true, config: v.config, warnings };
}

/** Typos are warned, not silently ignored: each unknown key names the closest known one. */
export function unknownKeyWarnings(entries: Map<string, Entry>): Warning[] {
  const out: Warning[] = [];
  for (const [key, { line }] of entries) {
    if (isKnownKey(key)) continue;
    if (isBitbucketOnlyKey(key)) {
      out.push({ key, message: "is a Bitbucket setting smart-mirror does not use; it is ignored", line });
      continue;
    }
    const near = closestKey(key);
    out.push({
      key,
      message: near ? `is not a known key; did you mean ${near}?` : "is not a known key; it is ignored",
      fix: near ? `rename it to ${near}` : "see the configuration reference for the keys smart-mirror reads",
      line,
    });
  }
  return out;
}

function readProblem(home: string, file: string, e: NodeJS.ErrnoException): Problem {
  if (e.code === "ENOENT" || e.code === "ENOTDIR") {
    const homeExists = fs.existsSync(home);
    return {
      key: FILE_LABEL,
      message: homeExists ? `not found: ${file}` : `not found: the mirror home ${home} does not exist`,
      fix:
        `create ${file} (Java properties syntax, UTF-8). A minimal example:\n` +
        minimalExample(home)
          .split("\n")
          .map((l) => `      ${l}`)
          .join("\n") +
        `\n  and put the mirror's SSH private key at ${homePaths(home).keyFile} and a Bitbucket HTTP access token at ` +
        `${homePaths(home).catalogTokenFile} (both chmod 600); \`smart-mirror check --home ${home}\` says what is still missing`,
    };
  }
  if (e.code === "EISDIR") return { key: FILE_LABEL, message: `${file} is a directory`, fix: `replace it with the properties file` };
  return { key: FILE_LABEL, message: `cannot read ${file}: ${e.code ?? e.message}`, fix: `make ${file} readable by the user the daemon runs as` };
}
