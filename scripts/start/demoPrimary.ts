/**
 * The built-in demo primary of `npm start`: a real OpenSSH sshd with a git-shell account
 * (the testbed's primary) holding a few sample projects, so a mirror can be tried with no
 * configuration; and, like Bitbucket, an HTTPS door to the same repositories (the testbed's
 * Bitbucket double with git http-backend, testbed/httpsPrimary.ts) with one demo user who may
 * push, so a push through the mirror can be tried too, and the Git LFS server
 * (testbed/primaryLfs.ts) serving DEMO/assets's LFS objects (a public repository: the demo
 * mirror fetches them anonymously).
 */
import { randomBytes } from "node:crypto";
import { HttpsPrimary, startHttpsPrimary } from "../../testbed/httpsPrimary";
import { commitLfsFiles } from "../../testbed/lfsFixture";
import type { Primary } from "../../testbed/primary";
import { LfsObject, startPrimaryLfs } from "../../testbed/primaryLfs";
import { workingClone, WorkingClone } from "../../testbed/repos";
import { tempDir } from "../../testbed/resources";
import type { TestCa } from "../../testbed/tls";

export const DEMO_REPOS = [
  { project: "DEMO", slug: "hello-world" },
  { project: "DEMO", slug: "website" },
  { project: "TOOLS", slug: "scripts" },
  { project: "DEMO", slug: "assets" },
] as const;

/** The demo user (may read and push everything); the password is new on every start. */
export const DEMO_USER = "demo";

/** The LFS repository of the demo: its files are LFS pointers, the content on the primary's LFS endpoint. */
export const DEMO_LFS_REPO = { project: "DEMO", slug: "assets" } as const;

export interface DemoPrimary {
  primary: Primary;
  /** The HTTPS door: `https.double.url` is the primary's web URL (plugin.mirroring.upstream.url). */
  https: HttpsPrimary;
  user: { name: string; password: string };
  /** A working clone of DEMO/hello-world with push access, for --verify. */
  hello: WorkingClone;
  /** The LFS files of DEMO/assets by name. */
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

/** `ca` issues the HTTPS door's certificate (the same local CA the mirror's nginx uses). */
export async function startDemoPrimary(ca: TestCa): Promise<DemoPrimary> {
  const hp = await startHttpsPrimary({ primary: { label: "demo-primary" }, ca });
  const primary = hp.primary;
  const lfs = startPrimaryLfs({ dir: tempDir("primary-lfs"), baseUrl: () => hp.double.url, publicRead: (p, s) => p === DEMO_LFS_REPO.project && s === DEMO_LFS_REPO.slug });
  hp.double.mount(lfs.mount);
  const user = { name: DEMO_USER, password: randomBytes(12).toString("hex") };
  hp.double.addUser(user.name, user.password, { canWrite: () => true });
  let hello: WorkingClone | undefined;
  let lfsFiles: Record<string, LfsObject> = {};
  for (const [i, r] of DEMO_REPOS.entries()) {
    await hp.createRepo(r.project, r.slug);
    const wc = await workingClone(primary.remote(r.project, r.slug));
    await wc.commit({ "README.md": `# ${r.slug}\n\nA sample repository of the smart-mirror demo primary.\n`, [`src/main-${i}.txt`]: `hello from ${r.project}/${r.slug}\n` });
    await wc.branch("develop");
    await wc.commit({ "CHANGELOG.md": "## 1.0.0\n- first release\n" });
    await wc.tag("v1.0.0", { message: "first release" });
    if (r.slug === DEMO_LFS_REPO.slug && r.project === DEMO_LFS_REPO.project) {
      await wc.checkout("main");
      lfsFiles = await commitLfsFiles(wc, lfs, r.project, r.slug, { "textures/stone.png": sampleAsset(1, 3 << 20), "models/tree.glb": sampleAsset(2, 1 << 20) }, "Add LFS assets");
    }
    await wc.pushAll();
    if (i === 0) hello = wc;
  }
  return { primary, https: hp, user, hello: hello!, lfsFiles };
}
