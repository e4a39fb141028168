/**
 * Pushing through the mirror (issue 15), end to end with real parts: git clients over TLS ->
 * real nginx (the rendered site) -> the built daemon (its own process) -> HTTPS (verified with
 * mirror.upstream.caFile) -> the primary's smart-HTTP door (git http-backend behind the
 * Bitbucket double's Basic auth) -> the repositories the daemon syncs from over SSH.
 *
 * mirror.serve.freshness=never here: an advertisement never asks the primary, so a fetch right
 * after `git push` sees the push only because the push's answer waited for the mirror's fetch.
 */
import { MirrorBehindNginx, startMirrorBehindNginx } from "../../testbed/mirrorBehindNginx";
import { HttpsPrimary, startHttpsPrimary } from "../../testbed/httpsPrimary";
import { runGit } from "../../testbed/gitRun";
import { git, listRefs, workingClone, WorkingClone } from "../../testbed/repos";

jest.setTimeout(300_000);

const APP = { project: "PROJ", slug: "app" };
const GUARDED = { project: "PROJ", slug: "guarded" };

let hp: HttpsPrimary;
let m: MirrorBehindNginx;
let work: WorkingClone;


/** The mirror's URL with credentials in it (the way `npm start` prints it). */
const mirrorUrl = (repo: { project: string; slug: string }, userinfo?: string) => m.url(repo.project, repo.slug).replace("https://", userinfo ? `https://${userinfo}@` : "https://");
const tipOnMirror = async (repo: { project: string; slug: string }, ref = "refs/heads/main") => (await listRefs(m.repoDir(repo.project, repo.slug))).get(ref);
const tipOnPrimary = async (repo: { project: string; slug: string }, ref = "refs/heads/main") => (await listRefs(hp.primary.repoPath(repo.project, repo.slug))).get(ref);

beforeAll(async () => {
  hp = await startHttpsPrimary();
  for (const r of [APP, GUARDED]) await hp.createRepo(r.project, r.slug);
  hp.double.addUser("alice", "alice-pw", { canWrite: { projects: ["PROJ"] } });
  hp.double.addUser("bob", "bob-pw"); // reads, never writes
  // A first commit on each, straight to the primary (over its own HTTPS door).
  for (const r of [APP, GUARDED]) {
    const w = await workingClone({ url: hp.repoUrl(r.project, r.slug, "alice:alice-pw"), env: hp.gitEnv() });
    await w.commit({ "README.md": `${r.slug}\n` });
    await w.git(["push", "--quiet", "origin", "HEAD:refs/heads/main"], hp.gitEnv());
  }
  // The primary's policy on GUARDED: a pre-receive hook that refuses one branch, and no rewrites.
  await hp.installHook(GUARDED.project, GUARDED.slug, "pre-receive", '#!/bin/sh\nwhile read old new ref; do\n  if [ "$ref" = refs/heads/frozen ]; then echo "policy: refs/heads/frozen is frozen until the release"; exit 1; fi\ndone\nexit 0\n');
  await git(["--git-dir", hp.primary.repoPath(GUARDED.project, GUARDED.slug), "config", "receive.denyNonFastForwards", "true"]);

  m = await startMirrorBehindNginx({
    primary: hp.primary,
    repos: [APP, GUARDED],
    properties: {
      "plugin.mirroring.upstream.url": hp.double.url,
      "mirror.upstream.caFile": hp.ca.certPath,
      "mirror.serve.auth": "primary",
      "mirror.serve.freshness": "never",
      "mirror.serve.onDemandWait": "60s",
    },
  });
  await m.waitSynchronized();
  work = await workingClone({ url: mirrorUrl(APP, "alice:alice-pw"), env: m.gitEnv() });
});

test("a push with good credentials lands on the primary and is served by the mirror as soon as `git push` returns", async () => {
  for (let i = 0; i < 3; i++) {
    const c = await work.commit({ [`f${i}.txt`]: `change ${i}\n` });
    const pushed = await runGit(["push", "origin", "HEAD:refs/heads/main"], m.gitEnv(), work.dir);
    expect(pushed).toMatchObject({ code: 0 });
    // No sleep, no polling: the mirror's own copy already has it, and serves it.
    expect(await tipOnPrimary(APP)).toBe(c);
    expect(await tipOnMirror(APP)).toBe(c);
    expect((await git(["ls-remote", mirrorUrl(APP, "bob:bob-pw"), "refs/heads/main"], { env: m.gitEnv() })).split("\t")[0]).toBe(c);
  }
  // A new branch and a tag in one push, then a fresh clone from the mirror has them.
  await work.git(["tag", "v1"]);
  const branch = await work.commit({ "b.txt": "branch\n" });
  expect(await runGit(["push", "origin", "HEAD:refs/heads/feature/one", "refs/tags/v1"], m.gitEnv(), work.dir)).toMatchObject({ code: 0 });
  const fetched = await runGit(["fetch", mirrorUrl(APP, "bob:bob-pw"), "refs/heads/feature/one"], m.gitEnv(), work.dir);
  expect(fetched.code).toBe(0);
  expect(await tipOnMirror(APP, "refs/heads/feature/one")).toBe(branch);
  expect(await tipOnMirror(APP, "refs/tags/v1")).toBeDefined();
  // The credentials went to the primary: it saw alice push.
  expect(hp.double.requests.some((r) => r.path === "/scm/PROJ/app.git/git-receive-pack" && r.user === "alice" && r.status === 200)).toBe(true);
});

test("credentials are never in the daemon's log", async () => {
  expect(m.daemon.output()).not.toContain("alice-pw");
  expect(m.daemon.output()).not.toContain(Buffer.from("alice:alice-pw").toString("base64"));
  expect(m.daemon.output()).toContain("git push forwarded to the primary");
});

test("wrong or missing credentials: the primary's 401 is relayed and git fails as against the primary itself", async () => {
  await work.commit({ "x.txt": "unauthorised\n" });
  const before = await tipOnMirror(APP);
  const wrong = await runGit(["push", mirrorUrl(APP, "alice:not-her-password"), "HEAD:refs/heads/main"], m.gitEnv(), work.dir);
  expect(wrong.code).not.toBe(0);
  expect(wrong.stderr).toMatch(/Authentication failed/);
  // No credentials and no terminal (GIT_TERMINAL_PROMPT=0): git asked for them because of WWW-Authenticate.
  const none = await runGit(["push", mirrorUrl(APP), "HEAD:refs/heads/main"], m.gitEnv(), work.dir);
  expect(none.code).not.toBe(0);
  expect(none.stderr).toMatch(/could not read Username/);
  // A user who may read but not write: the primary's 403.
  const reader = await runGit(["push", mirrorUrl(APP, "bob:bob-pw"), "HEAD:refs/heads/main"], m.gitEnv(), work.dir);
  expect(reader.code).not.toBe(0);
  expect(reader.stderr).toMatch(/403/);
  expect(await tipOnMirror(APP)).toBe(before);
  await work.git(["reset", "--hard", "HEAD~1"]);
});

test("a pre-receive hook's message and refusal, and a refused non-fast-forward, are relayed; the mirror's copy does not move", async () => {
  const g = await workingClone({ url: mirrorUrl(GUARDED, "alice:alice-pw"), env: m.gitEnv() });
  await g.commit({ "frozen.txt": "nope\n" });
  const hook = await runGit(["push", "origin", "HEAD:refs/heads/frozen"], m.gitEnv(), g.dir);
  expect(hook.code).not.toBe(0);
  expect(hook.stderr).toContain("remote: policy: refs/heads/frozen is frozen until the release");
  expect(hook.stderr).toMatch(/\[remote rejected\] HEAD -> frozen \(pre-receive hook declined\)/);
  expect(await tipOnMirror(GUARDED, "refs/heads/frozen")).toBeUndefined();
  expect(await tipOnPrimary(GUARDED, "refs/heads/frozen")).toBeUndefined();

  // A fast-forward goes through; rewriting it away afterwards is refused by the primary.
  await g.git(["reset", "--hard", "HEAD~1"]);
  const ff = await g.commit({ "ff.txt": "fast-forward\n" });
  expect(await runGit(["push", "origin", "HEAD:refs/heads/main"], m.gitEnv(), g.dir)).toMatchObject({ code: 0 });
  const mainBefore = await tipOnMirror(GUARDED);
  expect(mainBefore).toBe(ff);
  await g.git(["reset", "--hard", "HEAD~1"]);
  await g.commit({ "rewrite.txt": "history rewritten\n" }, { message: "rewrite" });
  const forced = await runGit(["push", "--force", "origin", "HEAD:refs/heads/main"], m.gitEnv(), g.dir);
  expect(forced.code).not.toBe(0);
  expect(forced.stderr).toMatch(/\[remote rejected\] HEAD -> main \(non-fast-forward\)|denying non-fast-forward/);
  expect(await tipOnMirror(GUARDED)).toBe(mainBefore);
  expect(await tipOnPrimary(GUARDED)).toBe(mainBefore);
});

test("primary down: the push fails with an error naming the primary's URL; nothing changes on the mirror", async () => {
  await work.commit({ "down.txt": "while the primary is down\n" });
  const before = await tipOnMirror(APP);
  await hp.double.setDown("refused");
  try {
    const r = await runGit(["push", "origin", "HEAD:refs/heads/main"], m.gitEnv(), work.dir);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`remote: The mirror forwards pushes to the primary (${hp.double.url}), and cannot reach it: connection refused.`);
    expect(r.stderr).toContain(`git push ${hp.double.url}/scm/PROJ/app.git`);
    expect(r.stderr).toMatch(/502/);
  } finally {
    await hp.double.setDown(false);
  }
  expect(await tipOnMirror(APP)).toBe(before);
  // Back up: the same push goes through.
  expect(await runGit(["push", "origin", "HEAD:refs/heads/main"], m.gitEnv(), work.dir)).toMatchObject({ code: 0 });
  expect(await tipOnMirror(APP)).toBe(await work.revParse("HEAD"));
});

test("the mirror cannot fetch (its SSH link to the primary is down): the push still succeeds, and git shows that the mirror will catch up", async () => {
  const c = await work.commit({ "late.txt": "the mirror fetches this later\n" });
  await hp.primary.stop();
  try {
    const r = await runGit(["push", "origin", "HEAD:refs/heads/main"], m.gitEnv(), work.dir);
    expect(r).toMatchObject({ code: 0 });
    expect(r.stderr).toMatch(/remote: smart-mirror: the primary accepted your push; the mirror will catch up shortly \(its fetch from the primary failed; it retries on its own\)/);
    expect(await tipOnPrimary(APP)).toBe(c);
    expect(await tipOnMirror(APP)).not.toBe(c);
  } finally {
    await hp.primary.restart();
  }
});
