/**
 * A repository's pack files, counted and sized from the directory listing alone (no git run).
 * A pack that vanishes between the listing and its stat (a repack finishing) counts as gone.
 */
import * as fs from "node:fs";
import * as path from "node:path";

function packNames(dir: string): string[] {
  try {
    return fs.readdirSync(path.join(dir, "objects", "pack")).filter((f) => f.endsWith(".pack"));
  } catch {
    return [];
  }
}

/** Total bytes of the repository's pack files. */
export function packBytes(dir: string): number {
  let total = 0;
  for (const f of packNames(dir)) {
    try {
      total += fs.statSync(path.join(dir, "objects", "pack", f)).size;
    } catch {
      /* removed by a repack meanwhile */
    }
  }
  return total;
}

/** How many pack files the repository has. */
export function packCount(dir: string): number {
  return packNames(dir).length;
}
