import { isValidRepoId, partitionRepoIds, repoNameProblem } from "./repoName";
import { decideWebhook } from "./serve/webhookEvent";
import { parseRepoList } from "./config/values";

const refsChanged = (key: string, slug: string) => Buffer.from(JSON.stringify({ eventKey: "repo:refs_changed", repository: { slug, project: { key } }, changes: [] }));

// One rule for the catalog, webhooks, the config and the store.
test.each<[string, string, RegExp | undefined]>([
  ["PROJ", "app", undefined],
  ["~JOHN.DOE", "notes", undefined],
  ["~jdoe", "dotfiles", undefined],
  ["~j-doe_2", "x", undefined],
  ["PROJ", "release..notes", /contains "\.\."/],
  ["PROJ", ".hidden", /must be letters/],
  ["PROJ", "x.git", /ends in \.git/],
  ["PROJ", "x.lock", /ends in \.lock/],
  ["PROJ", "a/b", /must be letters/],
  ["BAD.KEY", "x", /project key "BAD.KEY"/],
  ["~", "x", /personal project key/],
  ["~a..b", "x", /personal project key/],
  ["~.x", "x", /personal project key/],
  ["PR OJ", "x", /project key/],
])("%s/%s", (project, slug, problem) => {
  const id = { project, slug };
  const got = repoNameProblem(id);
  if (problem) expect(got).toMatch(problem);
  else expect(got).toBeUndefined();
  expect(isValidRepoId(id)).toBe(problem === undefined);
  expect(decideWebhook(undefined, refsChanged(project, slug)).kind).toBe(problem === undefined ? "refs_changed" : "malformed");
  if (!slug.includes("/")) expect(parseRepoList(`${project}/${slug}`, "mirror.catalog.repos") instanceof Array).toBe(problem === undefined);
});

test("partition keeps order and gives each refused name its reason", () => {
  const r = partitionRepoIds([
    { project: "A", slug: "x" },
    { project: "A", slug: "y..z" },
    { project: "~U.V", slug: "w" },
  ]);
  expect(r.valid).toEqual([
    { project: "A", slug: "x" },
    { project: "~U.V", slug: "w" },
  ]);
  expect(r.invalid).toEqual([{ id: { project: "A", slug: "y..z" }, problem: expect.stringMatching(/"y\.\.z"/) }]);
});
