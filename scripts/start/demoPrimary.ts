/**
 * The built-in demo primary of `npm start`: a real OpenSSH sshd with a git-shell account
 * (the testbed's primary) holding a few sample projects, so a mirror can be tried with no
 * configuration.
 */
import { startPrimary, Primary } from "../../testbed/primary";
import { workingClone, WorkingClone } from "../../testbed/repos";

export const DEMO_REPOS = [
  { project: "DEMO", slug: "hello-world" },
  { project: "DEMO", slug: "website" },
  { project: "TOOLS", slug: "scripts" },
] as const;

export interface DemoPrimary {
  primary: Primary;
  /** A working clone of DEMO/hello-world with push access, for --verify. */
  hello: WorkingClone;
}

export async function startDemoPrimary(): Promise<DemoPrimary> {
  const primary = await startPrimary({ label: "demo-primary" });
  let hello: WorkingClone | undefined;
  for (const [i, r] of DEMO_REPOS.entries()) {
    await primary.createRepo(r.project, r.slug);
    const wc = await workingClone(primary.remote(r.project, r.slug));
    await wc.commit({ "README.md": `# ${r.slug}\n\nA sample repository of the smart-mirror demo primary.\n`, [`src/main-${i}.txt`]: `hello from ${r.project}/${r.slug}\n` });
    await wc.branch("develop");
    await wc.commit({ "CHANGELOG.md": "## 1.0.0\n- first release\n" });
    await wc.tag("v1.0.0", { message: "first release" });
    await wc.pushAll();
    if (i === 0) hello = wc;
  }
  return { primary, hello: hello! };
}
