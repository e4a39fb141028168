/**
 * The built-in demo primary of `npm start`: a real OpenSSH sshd with a git-shell account
 * (the testbed's primary) holding a few sample projects, so a mirror can be tried with no
 * configuration; and, like Bitbucket, an HTTPS door to the same repositories (the testbed's
 * Bitbucket double with git http-backend, testbed/httpsPrimary.ts) with one demo user who may
 * push, so a push through the mirror can be tried too.
 */
import { randomBytes } from "node:crypto";
import { HttpsPrimary, startHttpsPrimary } from "../../testbed/httpsPrimary";
import type { Primary } from "../../testbed/primary";
import { workingClone, WorkingClone } from "../../testbed/repos";
import type { TestCa } from "../../testbed/tls";

export const DEMO_REPOS = [
  { project: "DEMO", slug: "hello-world" },
  { project: "DEMO", slug: "website" },
  { project: "TOOLS", slug: "scripts" },
] as const;

/** The demo user (may read and push everything); the password is new on every start. */
export const DEMO_USER = "demo";

export interface DemoPrimary {
  primary: Primary;
  /** The HTTPS door: `https.double.url` is the primary's web URL (plugin.mirroring.upstream.url). */
  https: HttpsPrimary;
  user: { name: string; password: string };
  /** A working clone of DEMO/hello-world with push access, for --verify. */
  hello: WorkingClone;
}

/** `ca` issues the HTTPS door's certificate (the same local CA the mirror's nginx uses). */
export async function startDemoPrimary(ca: TestCa): Promise<DemoPrimary> {
  const hp = await startHttpsPrimary({ primary: { label: "demo-primary" }, ca });
  const primary = hp.primary;
  const user = { name: DEMO_USER, password: randomBytes(12).toString("hex") };
  hp.double.addUser(user.name, user.password, { canWrite: () => true });
  let hello: WorkingClone | undefined;
  for (const [i, r] of DEMO_REPOS.entries()) {
    await hp.createRepo(r.project, r.slug);
    const wc = await workingClone(primary.remote(r.project, r.slug));
    await wc.commit({ "README.md": `# ${r.slug}\n\nA sample repository of the smart-mirror demo primary.\n`, [`src/main-${i}.txt`]: `hello from ${r.project}/${r.slug}\n` });
    await wc.branch("develop");
    await wc.commit({ "CHANGELOG.md": "## 1.0.0\n- first release\n" });
    await wc.tag("v1.0.0", { message: "first release" });
    await wc.pushAll();
    if (i === 0) hello = wc;
  }
  return { primary, https: hp, user, hello: hello! };
}
