import { catalogResolver } from "./resolver";

describe("catalogResolver", () => {
  const served = new Map([
    ["PROJ/repo", "/m/repos/PROJ/repo.git"],
    ["~alice/dots", "/m/repos/~alice/dots.git"],
    ["~JOHN.DOE/notes", "/m/repos/~JOHN.DOE/notes.git"],
  ]);
  const resolve = catalogResolver((k) => served.get(k));

  test("catalog spelling, with project keys matched case-insensitively as Bitbucket does", () => {
    expect(resolve("PROJ", "repo")).toEqual({ project: "PROJ", slug: "repo", dir: "/m/repos/PROJ/repo.git" });
    expect(resolve("proj", "repo")).toEqual({ project: "PROJ", slug: "repo", dir: "/m/repos/PROJ/repo.git" });
    expect(resolve("Proj", "repo")?.project).toBe("PROJ");
    expect(resolve("~alice", "dots")?.dir).toBe("/m/repos/~alice/dots.git");
    // Bitbucket's personal clone URLs carry the user slug in lower case; its REST catalog the key in upper case.
    expect(resolve("~john.doe", "notes")).toEqual({ project: "~JOHN.DOE", slug: "notes", dir: "/m/repos/~JOHN.DOE/notes.git" });
  });

  test("slugs and personal project keys as written; unknown repositories are not served", () => {
    expect(resolve("PROJ", "REPO")).toBeUndefined();
    expect(resolve("~ALICE", "dots")).toBeUndefined();
    expect(resolve("OTHER", "repo")).toBeUndefined();
  });
});
