/**
 * bitbucket.properties text -> key/value entries with line numbers. Java properties syntax
 * (escapes, continuation lines, `=` / `:` / space separators, # and ! comments) is parsed by
 * dot-properties; this module adds what a person needs when something is off: line numbers,
 * repeated keys, and the errors Java's Properties.load would throw but dot-properties
 * tolerates (a malformed \uXXXX escape). Pure.
 */
import { parseLines } from "dot-properties";
import * as path from "node:path";
import { HOME_LAYOUT } from "../homeLayout";
import { Problem, Warning } from "./problems";

export interface Entry {
  value: string;
  /** 1-based line where the key starts. */
  line: number;
}

export interface ParsedProperties {
  entries: Map<string, Entry>;
  problems: Problem[];
  warnings: Warning[];
}

/** The file's name, the "key" of problems that concern the whole file. */
export const FILE_LABEL = path.posix.basename(HOME_LAYOUT.properties.rel);

/** Bytes as read from disk; refuses text that is not UTF-8 (with the line of the first bad byte). */
export function decodeProperties(bytes: Uint8Array): { text: string } | { problem: Problem } {
  try {
    return { text: new TextDecoder("utf-8", { fatal: true }).decode(bytes) };
  } catch {
    const loose = new TextDecoder("utf-8").decode(bytes);
    const at = loose.indexOf("\uFFFD");
    const line = at < 0 ? undefined : lineAt(loose, at);
    return {
      problem: {
        key: FILE_LABEL,
        message: `is not valid UTF-8${line ? ` (line ${line})` : ""}`,
        fix: "save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`), or write non-ASCII characters as \\uXXXX escapes",
        line,
      },
    };
  }
}

export function parseProperties(text: string): ParsedProperties {
  const entries = new Map<string, Entry>();
  const problems: Problem[] = [];
  const warnings: Warning[] = [];
  const lineStarts = computeLineStarts(text);
  const lineOf = (offset: number) => upperBound(lineStarts, offset);

  for (const node of parseLines(text, true)) {
    if (node.type !== "PAIR") continue;
    const pair = node as unknown as { key: string; value: string; range: [number, number, number, number] };
    const line = lineOf(pair.range[0]);
    const raw = text.slice(pair.range[0], pair.range[3]);

    const badEscape = findMalformedUnicodeEscape(raw);
    if (badEscape !== undefined) {
      problems.push({
        key: pair.key || FILE_LABEL,
        value: text.slice(pair.range[2], pair.range[3]),
        message: "has a malformed \\uXXXX escape (Java refuses to load such a file)",
        fix: "write \\u followed by exactly four hex digits (e.g. \\u00e9), or \\\\ for a literal backslash",
        line: lineOf(pair.range[0] + badEscape),
      });
      continue;
    }
    if (pair.key === "") {
      warnings.push({ key: FILE_LABEL, message: `line ${line} has a value but no key; it is ignored`, fix: "write key=value, or delete the line", line });
      continue;
    }
    const earlier = entries.get(pair.key);
    if (earlier) {
      warnings.push({
        key: pair.key,
        message: `is set on lines ${earlier.line} and ${line}; the value on line ${line} is used`,
        fix: `delete one of the two lines`,
        line,
      });
    }
    entries.set(pair.key, { value: pair.value, line });
  }
  return { entries, problems, warnings };
}

/** Offset (in `raw`) of the first `\u` not followed by four hex digits, if any. */
export function findMalformedUnicodeEscape(raw: string): number | undefined {
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] !== "\\") continue;
    if (raw[i + 1] === "u" && !/^[0-9A-Fa-f]{4}$/.test(raw.slice(i + 2, i + 6))) return i;
    i++; // skip the escaped character (including a second backslash)
  }
  return undefined;
}

function computeLineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === "\n") starts.push(i + 1);
  return starts;
}

/** Number of line starts <= offset, i.e. the 1-based line of offset. */
function upperBound(starts: number[], offset: number): number {
  let lo = 0;
  let hi = starts.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (starts[mid] <= offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function lineAt(text: string, offset: number): number {
  return upperBound(computeLineStarts(text), offset);
}
