import { isSafeRepoId, repoDir } from "./layout";
import { sshCommand } from "./gitEnv";

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

test("ssh command pins the host key, uses only our key and shares a master connection", () => {
  const c = sshCommand({ keyFile: "/k/id ed", knownHostsFile: "/k/kh", controlPath: "/r/cm-%C", controlPersistSec: 300, connectTimeoutSec: 10 });
  expect(c).toContain("StrictHostKeyChecking=yes");
  expect(c).toContain("UserKnownHostsFile=/k/kh");
  expect(c).toContain("-i '/k/id ed'");
  expect(c).toContain("IdentitiesOnly=yes");
  expect(c).toContain("ControlMaster=auto");
  expect(c).toContain("-F /dev/null");
});
