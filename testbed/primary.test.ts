import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { gitSshCommand, knownHostsName, missingPrerequisites, Primary, renderSshdConfig, startPrimary } from "./primary";
import { ensureLargeRepo } from "./largeRepo";
import { assertSameRefsAndObjects, git, GitError, initBare, listRefs, workingClone } from "./repos";
import { cleanupAll, netnsPrefix, onCleanup, tempDir } from "./resources";

// Real sshd and git on a shared 2-core machine: generous, and not relying on the project config
// (jest reads testTimeout from the global config only).
jest.setTimeout(120_000);

/** Run ssh against the primary with a raw command; resolves with exit code and stderr. */
function rawSsh(args: string[], command: string, input = ""): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn("ssh", [...args, command], { stdio: "pipe" });
    let stderr = "";
    let stdout = "";
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    child.stdin.on("error", () => undefined);
    child.stdin.end(input);
    child.on("close", (code) => resolve({ code, stderr, stdout }));
  });
}

/** The promise's value, or a clear failure after ms (instead of the test's whole timeout). */
function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

async function gitFails(args: string[], env: Record<string, string | undefined>): Promise<string> {
  try {
    await git(args, { env });
  } catch (e) {
    if (e instanceof GitError) return e.stderr;
    throw e;
  }
  throw new Error(`git ${args.join(" ")} unexpectedly succeeded`);
}

/** A fresh ed25519 key pair: [privateKeyPath, publicKeyLine]. */
async function newKey(dir: string, name: string): Promise<[string, string]> {
  const file = path.join(dir, name);
  await new Promise<void>((resolve, reject) =>
    spawn("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", file]).on("close", (c) => (c === 0 ? resolve() : reject(new Error(`ssh-keygen ${c}`)))),
  );
  return [file, fs.readFileSync(`${file}.pub`, "utf8").trim()];
}

describe("pure parts", () => {
  test("missingPrerequisites names root and each missing binary with its package", () => {
    expect(missingPrerequisites({ uid: 0, has: () => true })).toEqual([]);
    const asUser = missingPrerequisites({ uid: 1000, has: () => true });
    expect(asUser).toHaveLength(1);
    expect(asUser[0]).toMatch(/root is required \(running as uid 1000\).*'smgit'.*\/usr\/bin\/git-shell/);
    const bare = missingPrerequisites({ uid: 0, has: (f) => f !== "/usr/sbin/sshd" && f !== "/usr/bin/git-shell" });
    expect(bare.join("\n")).toMatch(/openssh-server/);
    expect(bare.join("\n")).toMatch(/git package/);
  });

  test("known_hosts names carry the port except on 22", () => {
    expect(knownHostsName("127.0.0.1", 2222)).toBe("[127.0.0.1]:2222");
    expect(knownHostsName("10.0.0.2", 22)).toBe("10.0.0.2");
  });

  test("sshd config pins what matters", () => {
    const cfg = renderSshdConfig({
      listenAddress: "127.0.0.1",
      port: 2222,
      user: "smgit",
      hostKeyPath: "/r/hk",
      authorizedKeysPath: "/r/ak",
      pidFile: "/r/pid",
      reposRoot: "/r/repos",
      gitConfigPath: "/r/gitconfig",
    });
    for (const line of ["ListenAddress 127.0.0.1:2222", "AuthorizedKeysFile /r/ak", "UsePAM no", "PasswordAuthentication no", "AllowUsers smgit", "ForceCommand bench-primary-dispatch /r/repos /r/gitconfig"]) {
      expect(cfg.split("\n")).toContain(line);
    }
    expect(renderSshdConfig({ listenAddress: "::1", port: 1, user: "u", hostKeyPath: "h", authorizedKeysPath: "a", pidFile: "p", reposRoot: "r", gitConfigPath: "g" })).toContain("ListenAddress [::1]:1");
  });
});

describe("primary over real sshd", () => {
  let primary: Primary;
  let bare: string;

  beforeAll(async () => {
    primary = await startPrimary();
    bare = await primary.createRepo("PRJ", "repo");
  });

  test("the handle describes a running primary", () => {
    expect(primary.running()).toBe(true);
    expect(primary.hostKeyLine).toMatch(/^ssh-ed25519 AAAA\S+$/);
    expect(primary.knownHostsLine).toBe(`[127.0.0.1]:${primary.port} ${primary.hostKeyLine}`);
    expect(primary.sshUrl("PRJ", "repo")).toBe(`ssh://smgit@127.0.0.1:${primary.port}/PRJ/repo.git`);
    expect(bare).toBe(path.join(primary.reposRoot, "PRJ", "repo.git"));
    expect(fs.statSync(primary.clientKeyPath).mode & 0o777).toBe(0o600);
    expect(() => primary.repoPath("..", "x")).toThrow(/project/);
  });

  test("push and clone over SSH with the pinned host key", async () => {
    const w = await workingClone(primary.remote("PRJ", "repo"));
    const c1 = await w.commit({ "README.md": "hello\n" });
    await w.tag("v1", { message: "first" });
    await w.push(["main", "refs/tags/v1"]);
    // The push landed in the primary's repos root, owned by the account.
    const refs = await listRefs(bare);
    expect(refs.get("refs/heads/main")).toBe(c1);
    expect(refs.has("refs/tags/v1")).toBe(true);
    expect(fs.statSync(path.join(bare, "refs")).uid).toBe(fs.statSync(primary.reposRoot).uid);

    const clone = path.join(tempDir("clone"), "c");
    await git(["clone", "--quiet", "--mirror", primary.sshUrl("PRJ", "repo"), clone], { env: primary.gitEnv() });
    expect(await listRefs(clone)).toEqual(refs);
  });

  test("protocol v2 is negotiated (sshd accepts GIT_PROTOCOL)", async () => {
    const out = await new Promise<string>((resolve) => {
      const child = spawn("git", ["ls-remote", primary.sshUrl("PRJ", "repo")], { env: primary.gitEnv({ GIT_TRACE_PACKET: "1" }) as NodeJS.ProcessEnv });
      let err = "";
      child.stderr.on("data", (b: Buffer) => (err += b.toString()));
      child.on("close", () => resolve(err));
    });
    expect(out).toMatch(/< version 2/);
  });

  test("a wrong pinned host key fails with host key verification", async () => {
    const dir = tempDir("wrongkey");
    const [, otherPub] = await newKey(dir, "other");
    const kh = path.join(dir, "known_hosts");
    fs.writeFileSync(kh, `${knownHostsName(primary.host, primary.port)} ${otherPub.split(" ").slice(0, 2).join(" ")}\n`);
    const env = primary.gitEnv({ GIT_SSH_COMMAND: gitSshCommand({ identityFile: primary.clientKeyPath, knownHostsPath: kh }) });
    const err = await gitFails(["ls-remote", primary.sshUrl("PRJ", "repo")], env);
    expect(err).toMatch(/Host key verification failed/);
    // An empty known_hosts (nothing pinned) fails the same way: no trust on first use.
    fs.writeFileSync(kh, "");
    expect(await gitFails(["ls-remote", primary.sshUrl("PRJ", "repo")], env)).toMatch(/Host key verification failed/);
  });

  test("an unauthorized client key is refused", async () => {
    const [key] = await newKey(tempDir("stranger"), "stranger");
    const env = primary.gitEnv({ GIT_SSH_COMMAND: gitSshCommand({ identityFile: key, knownHostsPath: primary.knownHostsPath }) });
    expect(await gitFails(["ls-remote", primary.sshUrl("PRJ", "repo")], env)).toMatch(/Permission denied/);
  });

  test("paths with dot components, odd characters or other commands are refused", async () => {
    const args = primary.sshArgs();
    for (const cmd of [
      "git-upload-pack '/PRJ/../../../etc'",
      "git-upload-pack '/PRJ/./repo.git'",
      "git-upload-pack '/.hidden/repo.git'",
      "git-upload-pack '//PRJ/repo.git'",
      "git-upload-pack '/PRJ/repo.git' '/PRJ/repo.git'",
      "git-upload-pack '/PRJ/re po.git'",
      "git-upload-pack /PRJ/repo.git",
      "ls /",
      "sh -c id",
      "",
    ]) {
      const r = await rawSsh(args, cmd);
      expect({ cmd, code: r.code }).toEqual({ cmd, code: 1 });
      expect(r.stderr).toMatch(/bench primary: refused/);
    }
    // Through git too: a ".." URL is refused, not resolved.
    expect(await gitFails(["ls-remote", `ssh://smgit@127.0.0.1:${primary.port}/PRJ/../PRJ/repo.git`], primary.gitEnv())).toMatch(/refused/);
  });

  test("absolute paths are mapped under the repos root, never taken as they are", async () => {
    // A real repository outside the root, named by its absolute path: not reachable.
    const outside = await initBare(path.join(tempDir("outside"), "secret.git"));
    fs.chmodSync(path.dirname(outside), 0o755);
    const url = `ssh://smgit@127.0.0.1:${primary.port}${outside}`;
    const err = await gitFails(["ls-remote", url], primary.gitEnv());
    expect(err).toMatch(/does not appear to be a git repository/);
    expect(err).toContain(path.join(primary.reposRoot, outside));
    // The raw command shows the same mapping; the valid form works.
    const ok = await rawSsh(primary.sshArgs(), "git-upload-pack '/PRJ/repo.git'", "0000");
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/refs\/heads\/main/);
  });

  test("a read-only key can fetch but not push", async () => {
    const [key, pub] = await newKey(tempDir("reader"), "reader");
    await primary.authorizeKey(pub, { readOnly: true });
    const env = primary.gitEnv({ GIT_SSH_COMMAND: gitSshCommand({ identityFile: key, knownHostsPath: primary.knownHostsPath }) });
    const out = await git(["ls-remote", primary.sshUrl("PRJ", "repo")], { env });
    expect(out).toMatch(/refs\/heads\/main/);
    const w = await workingClone({ url: primary.sshUrl("PRJ", "repo"), env });
    await w.commit({ "x.txt": "x\n" });
    await expect(w.push(["main"])).rejects.toThrow(/read access only/);
    // The same change pushes fine with the read/write key.
    await w.push(["main"], { to: primary.remote("PRJ", "repo") });
  });

  test("extra keys given at start are authorized", async () => {
    const dir = tempDir("extra");
    const [key, pub] = await newKey(dir, "extra");
    const p2 = await startPrimary({ authorizedKeys: [pub] });
    await p2.createRepo("A", "b");
    const env = p2.gitEnv({ GIT_SSH_COMMAND: gitSshCommand({ identityFile: key, knownHostsPath: p2.knownHostsPath }) });
    await git(["ls-remote", p2.sshUrl("A", "b")], { env });
    // Two primaries at once, one account: each maps onto its own root.
    expect(await gitFails(["ls-remote", p2.sshUrl("PRJ", "repo")], p2.gitEnv())).toMatch(/does not appear to be a git repository/);
    await p2.stop();
  });

  test("stop() takes the primary down with its open sessions; restart() keeps port and host key", async () => {
    const { port, hostKeyLine } = primary;
    const hostKeyFile = fs.readFileSync(path.join(primary.dir, "ssh_host_ed25519_key.pub"), "utf8");
    // An open session: upload-pack waits for the client's wants.
    const session = spawn("ssh", [...primary.sshArgs(), "git-upload-pack '/PRJ/repo.git'"], { stdio: ["pipe", "pipe", "pipe"] });
    const advertised = new Promise<void>((resolve) => session.stdout.once("data", () => resolve()));
    const sessionClosed = new Promise<number | null>((resolve) => session.on("close", resolve));
    await within(30000, "the upload-pack advertisement", advertised);
    const serverSide = () =>
      fs.readdirSync("/proc").filter((p) => {
        try {
          return /^\d+$/.test(p) && fs.readFileSync(`/proc/${p}/cmdline`, "utf8").includes(`${primary.reposRoot}/PRJ/repo.git`);
        } catch {
          return false;
        }
      });
    expect(serverSide().length).toBeGreaterThan(0);

    await primary.stop();
    expect(primary.running()).toBe(false);
    await within(15000, "the open session to end", sessionClosed);
    expect(serverSide()).toEqual([]);
    expect(await gitFails(["ls-remote", primary.sshUrl("PRJ", "repo")], primary.gitEnv())).toMatch(/Connection refused|Could not read from remote/);

    await primary.restart();
    expect(primary.running()).toBe(true);
    expect(primary.port).toBe(port);
    expect(primary.hostKeyLine).toBe(hostKeyLine);
    expect(fs.readFileSync(path.join(primary.dir, "ssh_host_ed25519_key.pub"), "utf8")).toBe(hostKeyFile);
    // The same pinned known_hosts still verifies it.
    expect(await git(["ls-remote", primary.sshUrl("PRJ", "repo")], { env: primary.gitEnv() })).toMatch(/refs\/heads\/main/);
  });

  test("importRepo serves a copy of a generated repository exactly, and stays writable over SSH", async () => {
    const source = await ensureLargeRepo(
      { commits: 12, files: 10, filesPerCommit: 2, dirFanout: 2, branches: 1, commitsPerBranch: 2, tagEvery: 4 },
      { cacheDir: tempDir("cache"), log: () => undefined },
    );
    const imported = await primary.importRepo("BIG", "gen", source);
    expect(imported).toBe(primary.repoPath("BIG", "gen"));
    const clone = path.join(tempDir("clone"), "gen.git");
    await git(["clone", "--quiet", "--mirror", primary.sshUrl("BIG", "gen"), clone], { env: primary.gitEnv() });
    await assertSameRefsAndObjects(source, clone);
    // Root writes straight to the path, then the account pushes over SSH into the same objects dirs.
    const direct = await workingClone(imported);
    await direct.commit({ "direct.txt": "by root\n" });
    await direct.push(["main"]);
    const overSsh = await workingClone(primary.remote("BIG", "gen"));
    await overSsh.commit(Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`ssh-${i}.txt`, `over ssh ${i}\n`])));
    await overSsh.push(["main"]);
    expect((await listRefs(imported)).get("refs/heads/main")).toBe(await overSsh.revParse("HEAD"));
    // The source in the cache is untouched.
    expect((await listRefs(source)).get("refs/heads/main")).not.toBe(await overSsh.revParse("HEAD"));
  });
});

describe("primary inside a network namespace (wrap)", () => {
  test("listens only inside the namespace", async () => {
    const ns = `${netnsPrefix()}pr${Math.random().toString(36).slice(2, 6)}`;
    const ip = (...args: string[]) =>
      new Promise<void>((resolve, reject) => spawn("ip", args).on("close", (c) => (c === 0 ? resolve() : reject(new Error(`ip ${args.join(" ")}: ${c}`)))));
    await ip("netns", "add", ns);
    // Registered before the primary, so it runs after the primary's own cleanup (last first).
    onCleanup(() => ip("netns", "del", ns));
    await ip("-n", ns, "link", "set", "lo", "up");
    const p = await startPrimary({ wrap: ["ip", "netns", "exec", ns], port: 2222 });
    await p.createRepo("NS", "repo");
    const inside = await rawSshVia(["ip", "netns", "exec", ns, "ssh"], p.sshArgs(), "git-upload-pack '/NS/repo.git'");
    expect(inside.code).toBe(0);
    // The same address and port from the root namespace: nobody there.
    const outside = await rawSshVia(["ssh"], p.sshArgs(), "git-upload-pack '/NS/repo.git'");
    expect(outside.code).toBe(255);
    expect(outside.stderr).toMatch(/Connection refused/);
    await p.stop();
  });
});

describe("cleanup", () => {
  // Last in the file: cleanupAll() ends every fixture of this file.
  test("cleanupAll ends a primary's open sessions too (sshd puts each in its own session)", async () => {
    const p = await startPrimary();
    await p.createRepo("C", "r");
    const session = spawn("ssh", [...p.sshArgs(), "git-upload-pack '/C/r.git'"], { stdio: ["pipe", "pipe", "pipe"] });
    await within(30000, "the upload-pack advertisement", new Promise<void>((resolve) => session.stdout.once("data", () => resolve())));
    const closed = new Promise<number | null>((resolve) => session.on("close", resolve));
    await cleanupAll();
    await within(15000, "the open session to end", closed);
    const left = fs.readdirSync("/proc").filter((pid) => {
      try {
        return /^\d+$/.test(pid) && fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(p.reposRoot);
      } catch {
        return false;
      }
    });
    expect(left).toEqual([]);
    expect(fs.existsSync(p.dir)).toBe(false);
  });
});

function rawSshVia(cmd: string[], args: string[], command: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd[0], [...cmd.slice(1), ...args, command], { stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    child.stdout.resume();
    child.stdin.on("error", () => undefined); // a refused session may close before reading
    child.stdin.end("0000");
    child.on("close", (code) => resolve({ code, stderr }));
  });
}
