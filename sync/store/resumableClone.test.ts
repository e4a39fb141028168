import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { nextDeepen, receivingBytes } from "./resumableClone";
import { RepoStore } from "./repoStore";

describe("nextDeepen", () => {
  test.each<[number, number, number, number]>([
    [16, 64, 64, 16], // on target: same
    [16, 32, 64, 32], // half the target: twice the commits
    [16, 1, 64, 64], // tiny steps grow at most 4x
    [16, 0, 64, 64], // nothing transferred (e.g. history ended): still grows
    [16, 640, 64, 4], // 10x too big: shrinks at most 4x
    [1, 640, 64, 1], // never below one commit
  ])("deepen %d that moved %d (target %d) -> %d", (last, bytes, target, want) => {
    expect(nextDeepen(last, bytes, target)).toBe(want);
  });
});

describe("startup recovery", () => {
  function repoWith(files: string[]): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sm-tmp-"));
    fs.mkdirSync(path.join(dir, "objects", "pack"), { recursive: true });
    for (const f of files) fs.writeFileSync(path.join(dir, "objects", "pack", f), "x".repeat(10));
    return dir;
  }

  test("receivingBytes counts the pack being received, not finished packs", () => {
    expect(receivingBytes(repoWith(["tmp_pack_AbC123", "pack-1.pack", "pack-1.idx"]))).toBe(10);
  });

  test("recover keeps first clones in progress (swept), drops anything else in .incoming, sweeps served repos", () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "sm-home-"));
    const inc = path.join(home, "repos", ".incoming");
    const keep = path.join(inc, "BIG.large.git");
    fs.mkdirSync(path.join(keep, "objects", "pack"), { recursive: true });
    fs.writeFileSync(path.join(keep, "HEAD"), "ref: refs/heads/main\n");
    fs.writeFileSync(path.join(keep, "objects", "pack", "tmp_pack_1"), "x");
    fs.writeFileSync(path.join(keep, "shallow.lock"), "");
    fs.mkdirSync(path.join(inc, "PROJ.a.Xy12ab"), { recursive: true }); // the old mkdtemp layout
    const served = path.join(home, "repos", "PROJ", "b.git");
    fs.mkdirSync(path.join(served, "objects", "pack"), { recursive: true });
    fs.writeFileSync(path.join(served, "objects", "pack", "tmp_pack_2"), "x");
    // Left by a killed run a while ago (younger ones may belong to a writer /proc cannot show).
    const old = new Date(Date.now() - 60_000);
    for (const f of [path.join(keep, "objects", "pack", "tmp_pack_1"), path.join(served, "objects", "pack", "tmp_pack_2")]) fs.utimesSync(f, old, old);
    const r = new RepoStore(home, []).recover();
    expect(r).toMatchObject({ keptIncoming: 1, removedIncoming: 1 });
    expect(r.removedTemp.map((t) => path.basename(t.path)).sort()).toEqual(["tmp_pack_1", "tmp_pack_2"]);
    expect(fs.readdirSync(inc)).toEqual(["BIG.large.git"]);
    expect(fs.existsSync(path.join(keep, "shallow.lock"))).toBe(false);
  });
});
