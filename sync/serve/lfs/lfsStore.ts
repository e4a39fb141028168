/**
 * The mirror's LFS objects on the data volume, content-addressed: DIR/lfs/objects/ab/cd/<oid>
 * (homeLayout.ts `lfsObjects`), two levels of fan-out like git-lfs's own .git/lfs/objects.
 * An object becomes visible only by a rename from DIR/lfs/incoming (same file system) after
 * ObjectCheck passed, so a reader never sees a partial or corrupt object; incoming/ is emptied
 * at start (leftovers of a crash). The only name from a client is the oid, checked here again.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { isValidOid } from "./lfsPath";

export class LfsStore {
  constructor(
    readonly root: string,
    readonly incoming: string,
  ) {
    fs.mkdirSync(root, { recursive: true, mode: 0o750 });
    fs.rmSync(incoming, { recursive: true, force: true });
    fs.mkdirSync(incoming, { recursive: true, mode: 0o750 });
  }

  pathOf(oid: string): string {
    if (!isValidOid(oid)) throw new Error(`not an LFS object id: ${JSON.stringify(oid.slice(0, 80))}`);
    return path.join(this.root, oid.slice(0, 2), oid.slice(2, 4), oid);
  }

  /** The stored object's size, or undefined when the mirror does not have it. */
  size(oid: string): number | undefined {
    try {
      return fs.statSync(this.pathOf(oid)).size;
    } catch {
      return undefined;
    }
  }

  /** A fresh temp file in incoming/ for an object on its way in. */
  tempFile(): string {
    return path.join(this.incoming, randomBytes(12).toString("hex"));
  }

  /** Move a checked temp file into place (atomic; a concurrent identical object simply wins). */
  commit(temp: string, oid: string): void {
    const dest = this.pathOf(oid);
    fs.mkdirSync(path.dirname(dest), { recursive: true, mode: 0o750 });
    fs.renameSync(temp, dest);
  }
}
