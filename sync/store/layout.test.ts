import { isSafeRepoId, repoDir } from "./layout";

test.each([
  ["PROJ", "repo", true],
  ["~alice", "dotfiles", true],
  ["PROJ", "my.repo-1_x", true],
  ["PROJ", "..", false],
  ["PROJ", "a..b", false],
  ["..", "x", false],
  ["PROJ", "x/y", false],
  ["PROJ", "x.git", false],
  ["PR OJ", "x", false],
  ["PROJ", "", false],
  ["PROJ", ".hidden", false],
])("%s/%s safe=%s", (project, slug, safe) => {
  expect(isSafeRepoId({ project, slug })).toBe(safe);
});

test("repo paths stay under the home's repos dir", () => {
  expect(repoDir("/m", { project: "P", slug: "r" })).toBe("/m/repos/P/r.git");
  expect(() => repoDir("/m", { project: "P", slug: "../../etc" })).toThrow(/unsafe repository name/);
});
