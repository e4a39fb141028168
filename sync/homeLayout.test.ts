import { isValidRepoId } from "./repoName";
import { homePaths, repoDir, repoIdOfDir } from "./homeLayout";

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
  expect(isValidRepoId({ project, slug })).toBe(safe);
  expect(repoIdOfDir(project, `${slug}.git`) !== undefined).toBe(safe);
});

test("repo paths stay under the home's repos dir", () => {
  expect(repoDir("/m", { project: "P", slug: "r" })).toBe("/m/repos/P/r.git");
  expect(() => repoDir("/m", { project: "P", slug: "../../etc" })).toThrow(/unsafe repository name/);
});

test("every entry is a relative path under the home, and the documented forms read DIR/...", () => {
  const doc = homePaths("DIR");
  expect(doc.properties).toBe("DIR/shared/bitbucket.properties");
  expect(doc.socket).toBe("DIR/run/smart-mirror.sock");
  for (const [name, p] of Object.entries(homePaths("/h"))) {
    if (name === "home") continue;
    expect([name, p.startsWith("/h/") && !p.includes("..")]).toEqual([name, true]);
  }
});

test("a directory name the store could not have made stands for no repository", () => {
  expect(repoIdOfDir("P", "r.git")).toEqual({ project: "P", slug: "r" });
  expect(repoIdOfDir("P", "r")).toBeUndefined();
  expect(repoIdOfDir(".incoming", "P.r.git")).toBeUndefined();
});
