/**
 * RepoStore.applyMoves with real git and real packs, fed by a stand-in for the v2 session
 * (the pack bytes are what a server would stream): a pack whose objects link to something
 * missing, a pack without the announced tip, and an old value the mirror does not hold all
 * leave the refs where they were; a good pack moves them and leaves no .keep behind.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { RepoStore } from "../../sync/store/repoStore";
import type { V2Session } from "../../sync/upstream/protocolV2";
import { tempDir } from "../../testbed/resources";

const ID = { project: "PROJ", slug: "app" };
const ENV = { ...process.env, GIT_CONFIG_NOSYSTEM: "1", GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@t", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@t" };
const g = (cwd: string, args: string[], input?: Buffer) => execFileSync("git", args, { cwd, env: ENV, input, maxBuffer: 1 << 26 });
const out = (cwd: string, args: string[]) => g(cwd, args).toString().trim();

/** A session stand-in that streams `pack` as the server's packfile section would. */
function sessionWith(pack: Buffer): V2Session & { asked: { wants: readonly string[]; haves: readonly string[] }[] } {
  const asked: { wants: readonly string[]; haves: readonly string[] }[] = [];
  return {
    asked,
    path: "/PROJ/app.git",
    open: true,
    async fetch(wants: readonly string[], haves: readonly string[], sink: (c: Buffer) => void | Promise<void>, _signal?: AbortSignal, afterSend?: () => void) {
      asked.push({ wants, haves });
      afterSend?.();
      for (let i = 0; i < pack.length; i += 1000) await sink(pack.subarray(i, i + 1000));
    },
  } as never;
}

function setup() {
  const home = tempDir("apply-moves");
  const work = path.join(home, "work");
  fs.mkdirSync(work);
  g(work, ["init", "-q", "-b", "main"]);
  fs.writeFileSync(path.join(work, "a.txt"), "1\n");
  g(work, ["add", "."]);
  g(work, ["commit", "-qm", "one"]);
  const c1 = out(work, ["rev-parse", "HEAD"]);
  const store = new RepoStore(home, []);
  const dir = store.dir(ID);
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  g(home, ["clone", "-q", "--mirror", work, dir]);
  fs.writeFileSync(path.join(work, "b.txt"), "2\n");
  g(work, ["add", "."]);
  g(work, ["commit", "-qm", "two"]);
  const c2 = out(work, ["rev-parse", "HEAD"]);
  const objects = out(work, ["rev-list", "--objects", c2, "--not", c1]).split("\n").map((l) => l.split(" ")[0]);
  const blob = out(work, ["rev-parse", `${c2}:b.txt`]);
  const packOf = (oids: string[]) => g(work, ["pack-objects", "--stdout", "-q"], Buffer.from(oids.join("\n") + "\n"));
  return { store, dir, c1, c2, objects, blob, packOf };
}

const signal = () => new AbortController().signal;
const mainOf = (dir: string) => out(dir, ["rev-parse", "refs/heads/main"]);

test("a good pack moves the ref from its announced old value; haves are the old values; no .keep is left", async () => {
  const t = setup();
  const s = sessionWith(t.packOf(t.objects));
  const r = await t.store.applyMoves(ID, s, [{ ref: "refs/heads/main", old: t.c1, new: t.c2 }], ENV, signal());
  expect(r).not.toBe(false);
  expect(mainOf(t.dir)).toBe(t.c2);
  expect(s.asked).toEqual([{ wants: [t.c2], haves: [t.c1] }]);
  expect(fs.readdirSync(path.join(t.dir, "objects", "pack")).filter((f) => f.endsWith(".keep"))).toEqual([]);
});

test("a pack whose objects link to a missing object is refused: the ref does not move", async () => {
  const t = setup();
  const s = sessionWith(t.packOf(t.objects.filter((o) => o !== t.blob)));
  await expect(t.store.applyMoves(ID, s, [{ ref: "refs/heads/main", old: t.c1, new: t.c2 }], ENV, signal())).rejects.toThrow(/did not receive expected object/);
  expect(mainOf(t.dir)).toBe(t.c1);
});

test("a pack without the announced tip, or an old value the mirror does not hold: false, nothing moves", async () => {
  const t = setup();
  const noTip = sessionWith(t.packOf([t.blob]));
  expect(await t.store.applyMoves(ID, noTip, [{ ref: "refs/heads/main", old: t.c1, new: t.c2 }], ENV, signal())).toBe(false);
  expect(mainOf(t.dir)).toBe(t.c1);
  const stale = sessionWith(t.packOf(t.objects));
  expect(await t.store.applyMoves(ID, stale, [{ ref: "refs/heads/main", old: t.c2, new: t.c2.replace(/./, (c) => (c === "a" ? "b" : "a")) }], ENV, signal())).toBe(false);
  expect(mainOf(t.dir)).toBe(t.c1);
});
