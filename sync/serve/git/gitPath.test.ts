import { decodeUnreserved, parseGitRequest } from "./gitPath";

const INFO = "/info/refs?service=git-upload-pack";

describe("parseGitRequest: the endpoints", () => {
  test.each([
    ["GET", `/scm/PROJ/repo.git${INFO}`, { project: "PROJ", slug: "repo" }, "info-refs", "git-upload-pack"],
    ["GET", `/scm/PROJ/repo${INFO}`, { project: "PROJ", slug: "repo" }, "info-refs", "git-upload-pack"],
    ["HEAD", `/scm/proj/repo.git${INFO}`, { project: "proj", slug: "repo" }, "info-refs", "git-upload-pack"],
    ["GET", "/scm/~alice/dotfiles.git/info/refs?service=git-upload-pack", { project: "~alice", slug: "dotfiles" }, "info-refs", "git-upload-pack"],
    ["POST", "/scm/PROJ/my.repo_1-x.git/git-upload-pack", { project: "PROJ", slug: "my.repo_1-x" }, "rpc", "git-upload-pack"],
    ["POST", "/scm/PROJ/repo/git-upload-pack", { project: "PROJ", slug: "repo" }, "rpc", "git-upload-pack"],
    ["GET", "/scm/PROJ/repo.git/info/refs?service=git-receive-pack", { project: "PROJ", slug: "repo" }, "info-refs", "git-receive-pack"],
    ["POST", "/scm/PROJ/repo.git/git-receive-pack", { project: "PROJ", slug: "repo" }, "rpc", "git-receive-pack"],
    // Unreserved characters may be percent-encoded (RFC 3986 6.2.2.2).
    ["GET", `/scm/%50ROJ/r%65po.git${INFO}`, { project: "PROJ", slug: "repo" }, "info-refs", "git-upload-pack"],
    ["GET", `/scm/%7Ealice/r.git${INFO}`, { project: "~alice", slug: "r" }, "info-refs", "git-upload-pack"],
  ])("%s %s", (method, target, repo, endpoint, service) => {
    expect(parseGitRequest(method, target)).toEqual({ ok: true, repo, endpoint, service });
  });
});

describe("parseGitRequest: everything else is refused, never mapped to a file", () => {
  test.each([
    // traversal, literal and encoded
    ["GET", `/scm/PROJ/../../etc/passwd${INFO}`, 400],
    ["GET", `/scm/../PROJ/repo.git${INFO}`, 400],
    ["GET", `/scm/PROJ/..${INFO}`, 400],
    ["GET", `/scm/PROJ/...git${INFO}`, 400],
    ["GET", `/scm/%2e%2e/%2e%2e/etc/passwd${INFO}`, 400],
    ["GET", `/scm/PROJ/%2e%2e${INFO}`, 400],
    ["GET", `/scm/PROJ/%2E%2E%2Fetc${INFO}`, 400],
    ["GET", `/scm/PROJ/repo%2Fx.git${INFO}`, 400],
    ["GET", `/scm/PROJ/repo%252e.git${INFO}`, 400],
    ["GET", `/scm/PROJ%00/repo.git${INFO}`, 400],
    ["GET", `/scm/PROJ/repo\0.git${INFO}`, 400],
    ["GET", `/scm/PROJ\\..\\x/repo.git${INFO}`, 400],
    ["GET", `/scm/PROJ/repo%5c.git${INFO}`, 400],
    ["GET", `/scm/PROJ/re po.git${INFO}`, 400],
    ["GET", `/scm/PROJ/repo%.git${INFO}`, 400],
    ["GET", `/scm/PROJ/repo%zz.git${INFO}`, 400],
    ["GET", `/scm/PROJ/répo.git${INFO}`, 400],
    // empty segments
    ["GET", `/scm//PROJ/repo.git${INFO}`, 400],
    ["GET", `/scm/PROJ//repo.git${INFO}`, 400],
    ["GET", "/scm/PROJ/repo.git//info/refs?service=git-upload-pack", 400],
    ["GET", "/scm/PROJ/repo.git/info/refs/?service=git-upload-pack", 400],
    // names the store would refuse
    ["GET", `/scm/PROJ/repo.git.git${INFO}`, 400],
    ["GET", `/scm/PROJ/.hidden.git${INFO}`, 400],
    ["GET", `/scm/PROJ/x.lock${INFO}`, 400],
    ["GET", `/scm/-P/repo.git${INFO}`, 400],
    ["GET", `/scm/PROJ/${"a".repeat(200)}.git${INFO}`, 400],
    // dumb HTTP and repository files
    ["GET", "/scm/PROJ/repo.git/HEAD", 404],
    ["GET", "/scm/PROJ/repo.git/config", 404],
    ["GET", "/scm/PROJ/repo.git/objects/info/packs", 404],
    ["GET", "/scm/PROJ/repo.git/objects/info/alternates", 404],
    ["GET", "/scm/PROJ/repo.git/objects/ab/cdef0123456789abcdef0123456789abcdef01", 404],
    ["GET", "/scm/PROJ/repo.git/objects/pack/pack-0123456789abcdef0123456789abcdef01234567.pack", 404],
    ["GET", "/scm/PROJ/repo.git/refs/heads/main", 404],
    ["GET", "/scm/PROJ/repo.git/info/refs/extra?service=git-upload-pack", 404],
    ["POST", "/scm/PROJ/repo.git/git-upload-archive", 404],
    ["GET", "/scm/PROJ/repo.git", 404],
    ["GET", "/scm/PROJ", 404],
    ["GET", "/scm/", 400],
    ["GET", "/other/PROJ/repo.git/info/refs?service=git-upload-pack", 404],
    // services
    ["GET", "/scm/PROJ/repo.git/info/refs", 403],
    ["GET", "/scm/PROJ/repo.git/info/refs?service=", 403],
    ["GET", "/scm/PROJ/repo.git/info/refs?service=git-upload-archive", 403],
    ["GET", "/scm/PROJ/repo.git/info/refs?service=upload-pack", 403],
    ["GET", "/scm/PROJ/repo.git/info/refs?service=git-upload-pack&service=git-receive-pack", 403],
    // methods
    ["POST", `/scm/PROJ/repo.git${INFO}`, 405],
    ["DELETE", `/scm/PROJ/repo.git${INFO}`, 405],
    ["GET", "/scm/PROJ/repo.git/git-upload-pack", 405],
    ["PUT", "/scm/PROJ/repo.git/git-receive-pack", 405],
    // size
    ["GET", `/scm/PROJ/${"a".repeat(3000)}${INFO}`, 414],
  ])("%s %j -> %i", (method, target, status) => {
    const r = parseGitRequest(method, target);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.status).toBe(status);
  });

  test("405 answers say what is allowed", () => {
    expect(parseGitRequest("POST", `/scm/P/r.git${INFO}`)).toMatchObject({ ok: false, allow: "GET, HEAD" });
    expect(parseGitRequest("GET", "/scm/P/r.git/git-upload-pack")).toMatchObject({ ok: false, allow: "POST" });
  });
});

describe("decodeUnreserved", () => {
  test.each([
    ["/a%2eb", "/a.b"],
    ["%41%7e%5F%2D", "A~_-"],
    ["plain", "plain"],
  ])("%s -> %s", (input, out) => expect(decodeUnreserved(input)).toBe(out));
  test.each(["%2f", "%00", "%25", "%5c", "%", "%4", "%g0", "%20"])("%s is refused", (input) => expect(decodeUnreserved(input)).toBeUndefined());
});
