/**
 * A primary with both doors Bitbucket has: SSH (testbed/primary.ts, what the mirror syncs
 * over) and HTTPS with Git smart HTTP at /scm/ (the Bitbucket double + primaryGitHttp.ts, what
 * pushes go to), sharing one set of repositories, trusted through a bench CA.
 *
 *     const hp = await startHttpsPrimary();
 *     await hp.createRepo("PROJ", "app");                       // on disk and in the REST model
 *     hp.double.addUser("alice", "pw", { canWrite: { projects: ["PROJ"] } });
 *     await git(["push", hp.repoUrl("PROJ", "app", "alice:pw"), "main"], { env: hp.gitEnv() });
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BitbucketDouble, startBitbucketDouble } from "./bitbucketDouble";
import { Primary, PrimaryOptions, startPrimary } from "./primary";
import { primaryGitHttp } from "./primaryGitHttp";
import { GitEnv, isolatedGitEnv } from "./repos";
import { createCa, TestCa } from "./tls";

export interface HttpsPrimary {
  primary: Primary;
  double: BitbucketDouble;
  ca: TestCa;
  /** `https://[userinfo@]localhost:PORT/scm/PROJECT/slug.git` */
  repoUrl(project: string, slug: string, userinfo?: string): string;
  /** A git client's environment trusting the bench CA. */
  gitEnv(extra?: GitEnv): GitEnv;
  /** An empty bare repository (HEAD -> main) on the primary's disk and in the double's model. */
  createRepo(project: string, slug: string): Promise<string>;
  /** Install an executable hook (e.g. "pre-receive") in a repository. */
  installHook(project: string, slug: string, name: string, script: string): Promise<void>;
}

export async function startHttpsPrimary(o: { primary?: PrimaryOptions; ca?: TestCa; port?: number } = {}): Promise<HttpsPrimary> {
  const ca = o.ca ?? (await createCa());
  const [primary, cert] = await Promise.all([startPrimary(o.primary), ca.issueServerCert(["localhost", "127.0.0.1"])]);
  const double = await startBitbucketDouble({
    cert: fs.readFileSync(cert.chainPath, "utf8"),
    key: fs.readFileSync(cert.keyPath, "utf8"),
    port: o.port,
    scm: primaryGitHttp({ reposRoot: primary.reposRoot, gitConfigPath: path.join(primary.dir, "gitconfig") }),
  });
  return {
    primary,
    double,
    ca,
    repoUrl: (project, slug, userinfo) => `${double.url.replace("https://", `https://${userinfo ? `${userinfo}@` : ""}`)}/scm/${project}/${slug}.git`,
    gitEnv: (extra = {}) => isolatedGitEnv({ GIT_SSL_CAINFO: ca.certPath, ...extra }),
    async createRepo(project, slug) {
      const dir = await primary.createRepo(project, slug);
      double.addRepo(project, slug);
      return dir;
    },
    async installHook(project, slug, name, script) {
      const file = path.join(primary.repoPath(project, slug), "hooks", name);
      await fs.promises.writeFile(file, script, { mode: 0o755 });
      await fs.promises.chmod(file, 0o755);
    },
  };
}
