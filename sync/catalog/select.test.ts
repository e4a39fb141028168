import { RepoId } from "../types";
import { decidePurge, selectRepos } from "./select";

const r = (k: string): RepoId => ({ project: k.split("/")[0], slug: k.split("/")[1] });
const many = (n: number) => Array.from({ length: n }, (_, i) => r(`P/r${i}`));

test("ALL keeps everything; a list keeps those projects, case-insensitively", () => {
  const all = [r("A/x"), r("B/y"), r("c/z")];
  expect(selectRepos(all, "ALL")).toEqual(all);
  expect(selectRepos(all, ["a", "C"])).toEqual([r("A/x"), r("c/z")]);
});

describe("purge guard", () => {
  const opts = { protectPercent: 5, enabled: true, selectionChanged: false };
  test("removes a repo deleted on the primary", () => {
    expect(decidePurge(many(100), many(100).slice(1), opts)).toEqual({ remove: [r("P/r0")] });
  });
  test("refuses a suspicious shrink, naming the setting", () => {
    const d = decidePurge(many(100), many(100).slice(50), opts);
    expect(d.remove).toEqual([]);
    expect(d.refused).toMatch(/refusing to delete 50 of 100.*mirror.purge.protect=5%/);
  });
  test("an intended selection change may shrink", () => {
    expect(decidePurge(many(100), many(100).slice(50), { ...opts, selectionChanged: true }).remove).toHaveLength(50);
  });
  test("disabled purge keeps everything and says so", () => {
    const d = decidePurge(many(10), [], { ...opts, enabled: false });
    expect(d.remove).toEqual([]);
    expect(d.refused).toMatch(/mirror.purge.enabled=false/);
  });
  test("nothing gone, nothing to do", () => {
    expect(decidePurge(many(3), many(3), opts)).toEqual({ remove: [] });
  });
});
