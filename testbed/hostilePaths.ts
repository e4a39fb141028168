/**
 * Requests for /scm/ (and around it) that a mirror must answer with a 4xx and never with a file
 * from disk: traversal in every spelling, git's internal files, encodings, junk. Shared by the
 * daemon's own tests (test/integration/serveGit.test.ts) and the same requests through nginx
 * (test/integration/cloneThroughNginx.test.ts), so both hold the same list.
 *
 *     fs.writeFileSync(path.join(reposRoot, "PROJ", "secret.txt"), SECRET_FILE_CONTENT);
 *     for (const t of HOSTILE_PATHS) expect(leaks(t, await get(t))).toEqual([]);
 */

/** A file placed next to the served repositories, which a traversal would reach. */
export const SECRET_FILE_CONTENT = "TOP-SECRET-CONTENT\n";

/** Every one of these must get a 4xx, whether sent to the daemon or through nginx. */
export const HOSTILE_PATHS: readonly string[] = [
  "/scm/PROJ/app.git/HEAD",
  "/scm/PROJ/app.git/config",
  "/scm/PROJ/app.git/objects/info/packs",
  "/scm/PROJ/app.git/info/refs",
  "/scm/PROJ/app.git/packed-refs",
  "/scm/PROJ/../PROJ/app.git/info/refs?service=git-upload-pack",
  "/scm/PROJ/app.git/../secret.txt",
  "/scm/PROJ/%2e%2e/PROJ/app.git/info/refs?service=git-upload-pack",
  "/scm/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
  "/scm/../../../../etc/passwd",
  "/../../etc/passwd",
  "/scm/PROJ/secret.txt",
  "/scm/PROJ/app.git%2f..%2fsecret.txt/info/refs?service=git-upload-pack",
  "/scm//PROJ/app.git/info/refs?service=git-upload-pack",
  "/scm/PROJ/app.git/info/refs?service=git-upload-archive",
  "/scm/PROJ/app.git/info/refs?service=git-upload-pack&service=git-receive-pack",
  "/scm/PROJ/app%00.git/info/refs?service=git-upload-pack",
  "/scm/PROJ/app\0.git/info/refs?service=git-upload-pack",
  "/scm/PROJ\\..\\app.git/info/refs?service=git-upload-pack",
  "/scm/PROJ/nope.git/info/refs?service=git-upload-pack",
  "/scm/NOPE/app.git/info/refs?service=git-upload-pack",
  "/scm/PROJ/app.git.git/info/refs?service=git-upload-pack",
  "/scm/PROJ/app.git/git-upload-pack",
  "/scm/",
  "/repos/PROJ/app.git/HEAD",
  "/PROJ/app.git/info/refs?service=git-upload-pack",
  "/.git/config",
];

/**
 * What is wrong with one answer to a hostile path (pure): empty when it is a 4xx that shows
 * none of the secret file, a ref advertisement or HEAD, a git config, /etc/passwd.
 */
export function leaks(target: string, answer: { status: number; text: string }): string[] {
  const problems: string[] = [];
  if (!(answer.status >= 400 && answer.status < 500)) problems.push(`${JSON.stringify(target)}: expected a 4xx, got ${answer.status}: ${answer.text.slice(0, 200)}`);
  const shown: Record<string, string> = { "TOP-SECRET-CONTENT": "the secret file", "ref: refs/heads": "a HEAD or ref advertisement", "[core]": "a git config", "root:x:0:0": "/etc/passwd" };
  for (const [marker, what] of Object.entries(shown)) if (answer.text.includes(marker)) problems.push(`${JSON.stringify(target)}: the answer shows ${what}`);
  return problems;
}
