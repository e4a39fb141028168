/**
 * The built-in demo primary of `npm start`: a real OpenSSH sshd with a git-shell account
 * (the testbed's primary) holding a few sample projects, so a mirror can be tried with no
 * configuration; and its HTTPS side, the Bitbucket double with the Git LFS server
 * (testbed/lfsFixture.ts), serving DEMO/assets's LFS objects (a public repository: the demo
 * mirror clones anonymously).
 */
import { commitLfsFiles, LfsPrimary, startLfsPrimary } from "../../testbed/lfsFixture";
import { startPrimary, Primary } from "../../testbed/primary";
import type { LfsObject } from "../../testbed/primaryLfs";
import { workingClone, WorkingClone } from "../../testbed/repos";

export const DEMO_REPOS = [
  { project: "DEMO", slug: "hello-world" },
  { project: "DEMO", slug: "website" },
  { project: "TOOLS", slug: "scripts" },
  { project: "DEMO", slug: "assets" },
] as const;

/** The LFS repository of the demo: its files are LFS pointers, the content on the primary's LFS endpoint. */
export const DEMO_LFS_REPO = { project: "DEMO", slug: "assets" } as const;

export interface DemoPrimary {
  primary: Primary;
  /** A working clone of DEMO/hello-world with push access, for --verify. */
  hello: WorkingClone;
  /** The primary's HTTPS side (REST double + LFS), and the LFS files of DEMO/assets by name. */
  https: LfsPrimary;
  lfsFiles: Record<string, LfsObject>;
}

/** Deterministic sample "binary assets" (no randomness: the demo is the same on every start). */
function sampleAsset(seed: number, bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  let x = seed * 2654435761;
  for (let i = 0; i < bytes; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

export async function startDemoPrimary(): Promise<DemoPrimary> {
  const primary = await startPrimary({ label: "demo-primary" });
  const https = await startLfsPrimary({ publicRead: (p, s) => p === DEMO_LFS_REPO.project && s === DEMO_LFS_REPO.slug });
  for (const r of DEMO_REPOS) https.double.addRepo(r.project, r.slug);
  let hello: WorkingClone | undefined;
  let lfsFiles: Record<string, LfsObject> = {};
  for (const [i, r] of DEMO_REPOS.entries()) {
    await primary.createRepo(r.project, r.slug);
    const wc = await workingClone(primary.remote(r.project, r.slug));
    await wc.commit({ "README.md": `# ${r.slug}\n\nA sample repository of the smart-mirror demo primary.\n`, [`src/main-${i}.txt`]: `hello from ${r.project}/${r.slug}\n` });
    await wc.branch("develop");
    await wc.commit({ "CHANGELOG.md": "## 1.0.0\n- first release\n" });
    await wc.tag("v1.0.0", { message: "first release" });
    if (r.slug === DEMO_LFS_REPO.slug) {
      await wc.checkout("main");
      lfsFiles = await commitLfsFiles(wc, https.lfs, r.project, r.slug, { "textures/stone.png": sampleAsset(1, 3 << 20), "models/tree.glb": sampleAsset(2, 1 << 20) }, "Add LFS assets");
    }
    await wc.pushAll();
    if (i === 0) hello = wc;
  }
  return { primary, hello: hello!, https, lfsFiles };
}
