/**
 * The farm's repositories on the primary: a few small ones the load clones and fetches over and
 * over, and optionally a bigger one whose bytes show where a joining node seeded from (its
 * content is random, so its pack is as big as its files: compression hides nothing).
 */
import { randomBytes } from "node:crypto";
import { Primary } from "../primary";
import { workingClone } from "../repos";

export const SMALL_REPOS = ["PROJ/app", "PROJ/lib", "TOOLS/ci"] as const;
export const BIG_REPO = "DATA/assets";

async function seedOne(primary: Primary, repo: string, files: Record<string, string | Buffer>): Promise<void> {
  const [project, slug] = repo.split("/");
  await primary.createRepo(project, slug);
  const wc = await workingClone(primary.remote(project, slug));
  await wc.commit(files);
  await wc.branch("develop");
  await wc.commit({ "CHANGELOG.md": `## ${repo} 1.0\n` });
  await wc.tag("v1.0.0", { message: "first release" });
  await wc.pushAll();
}

/** Create the small repositories, and the big one when bigMb > 0; returns every "PROJECT/slug". */
export async function seedFarmRepos(primary: Primary, bigMb = 0): Promise<string[]> {
  await Promise.all(SMALL_REPOS.map((repo, i) => seedOne(primary, repo, { "README.md": `# ${repo}\n`, [`src/file-${i}.txt`]: `content of ${repo}\n` })));
  if (bigMb <= 0) return [...SMALL_REPOS];
  const files: Record<string, Buffer> = {};
  // 1 MiB files: git stores each as one object, the pack holds them as they are.
  for (let i = 0; i < bigMb; i++) files[`blobs/blob-${i}.bin`] = randomBytes(1024 * 1024);
  await seedOne(primary, BIG_REPO, files);
  return [...SMALL_REPOS, BIG_REPO];
}
