import { freshPublicKey } from "../../testbed/configHome";
import { Invalid } from "./problems";
import {
  HostKey,
  parseHostKeys,
  parseHttpsUrl,
  parseListen,
  parsePercent,
  parseProjects,
  parseRefPatterns,
  parseRepoList,
  parseSshBase,
} from "./values";

const K = "mirror.upstream.sshUrl";

describe("parseSshBase", () => {
  test.each([
    ["ssh://git@bb.example.com:7999", { user: "git", host: "bb.example.com", port: 7999, url: "ssh://git@bb.example.com:7999" }],
    ["ssh://git@bb.example.com", { user: "git", host: "bb.example.com", port: 22, url: "ssh://git@bb.example.com" }],
    ["ssh://git@bb.example.com:7999/", { user: "git", host: "bb.example.com", port: 7999, url: "ssh://git@bb.example.com:7999" }],
    ["ssh://mirror@[::1]:2222", { user: "mirror", host: "::1", port: 2222, url: "ssh://mirror@[::1]:2222" }],
    ["ssh://git@127.0.0.1:40022", { user: "git", host: "127.0.0.1", port: 40022, url: "ssh://git@127.0.0.1:40022" }],
  ])("accepts %s", (value, want) => {
    expect(parseSshBase(value, K)).toEqual(want);
  });

  test.each([
    ["https://bb.example.com/scm/PROJ/repo.git", /SSH only, never HTTP/, "ssh://git@bb.example.com:7999"],
    ["http://bb.example.com", /SSH only/, "ssh://git@bb.example.com:7999"],
    ["git@bb.example.com:PROJ/repo.git", /scp-like/, "ssh://git@bb.example.com:7999"],
    ["bb.example.com:PROJ/repo.git", /scp-like/, "ssh://git@bb.example.com:7999"],
    ["ssh://bb.example.com:7999", /SSH user/, "ssh://git@bb.example.com:7999"],
    ["ssh://git@bb.example.com:7999/PROJ/repo.git", /repository URL/, `${K}=ssh://git@bb.example.com:7999`],
    ["ssh://git@bb.example.com:7999/srv/git", /must not have a path/, `${K}=ssh://git@bb.example.com:7999`],
    ["ssh://git:secret@bb.example.com:7999", /password/, `${K}=ssh://git@bb.example.com:7999`],
    ["git://bb.example.com/repo", /ssh:\/\/ URL, not git:/, "ssh://git@bb.example.com"],
    ["not a url", /not a URL/, "ssh://git@"],
  ])("refuses %s with a fix", (value, message, fix) => {
    const r = parseSshBase(value, K);
    expect(r).toBeInstanceOf(Invalid);
    expect((r as Invalid).message).toMatch(message);
    expect((r as Invalid).fix).toContain(fix);
  });
});

describe("parseHttpsUrl", () => {
  const rules = { why: "WHY", otherScheme: "OTHER" };
  const U = "plugin.mirroring.upstream.url";
  test.each([
    ["https://bitbucket.example.com", "https://bitbucket.example.com"],
    ["https://Bitbucket.Example.com/", "https://bitbucket.example.com"],
    ["https://example.com/bitbucket/", "https://example.com/bitbucket"],
    ["https://example.com:8443", "https://example.com:8443"],
  ])("accepts %s as %s", (v, want) => {
    expect(parseHttpsUrl(v, U, rules)).toBe(want);
  });
  test.each([
    ["http://bitbucket.example.com", /must start with https:\/\/ \(WHY\)/, `${U}=https://bitbucket.example.com`],
    ["ssh://git@bb:7999", /OTHER/, `${U}=https://bb:7999`],
    ["https://admin:pw@bb.example.com", /user name or password/, `${U}=https://bb.example.com`],
    ["https://bb.example.com/?x=1", /query/, `${U}=https://bb.example.com`],
    ["bitbucket.example.com", /not a URL/, `${U}=https://bitbucket.example.com`],
  ])("refuses %s", (v, message, fix) => {
    const r = parseHttpsUrl(v, U, rules) as Invalid;
    expect(r).toBeInstanceOf(Invalid);
    expect(r.message).toMatch(message);
    expect(r.fix).toContain(fix);
  });
});

describe("parseHostKeys", () => {
  let ed: string;
  let ecdsa: string;
  let rsa: string;
  beforeAll(() => {
    ed = freshPublicKey("ed25519");
    ecdsa = freshPublicKey("ecdsa");
    rsa = freshPublicKey("rsa");
  });
  const H = "mirror.upstream.hostKeys";
  const where = { host: "bb.example.com", port: 7999 };

  test("one key, comment dropped, with OpenSSH's fingerprint", () => {
    const keys = parseHostKeys(ed, H) as HostKey[];
    expect(keys).toHaveLength(1);
    expect(keys[0].type).toBe("ssh-ed25519");
    expect(keys[0].base64).toBe(ed.split(" ")[1]);
    expect(keys[0].fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  test("several keys separated by commas and newlines; ssh-keyscan lines; duplicates once", () => {
    const keyscan = `[bb.example.com]:7999 ${ecdsa.split(" ").slice(0, 2).join(" ")}`;
    const keys = parseHostKeys(`${ed},\n${keyscan}\n# a comment\n${rsa}, ${ed}`, H) as HostKey[];
    expect(keys.map((k) => k.type)).toEqual(["ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"]);
  });

  test.each([
    ["truncated blob", (k: string) => k.slice(0, k.indexOf(" ") + 30), /not valid base64|wrong length|damaged/],
    ["blob cut at a multiple of 4", (k: string) => k.slice(0, k.indexOf(" ") + 1 + 48), /wrong length/],
    ["type label does not match the blob", (k: string) => k.replace("ssh-ed25519", "ssh-rsa"), /is a ssh-ed25519 key but is labelled ssh-rsa/],
    ["not base64", (k: string) => k.replace(/ \S+/, " !!!notbase64!!!"), /not valid base64/],
    ["unknown type", () => "ssh-foo AAAA", /not an SSH public key/],
    ["DSA", () => "ssh-dss AAAAB3NzaC1kc3MAAACBAP", /DSA/],
    ["a private key pasted by mistake", () => "-----BEGIN OPENSSH PRIVATE KEY-----", /not an SSH public key/],
    ["only a type", () => "ssh-ed25519", /no base64 blob/],
  ])("%s is refused, the fix says how to get and verify keys", (_name, mangle, message) => {
    const r = parseHostKeys(mangle(ed), H, where) as Invalid;
    expect(r).toBeInstanceOf(Invalid);
    expect(r.message).toMatch(message);
    expect(r.fix).toContain("ssh-keyscan -p 7999 bb.example.com");
    expect(r.fix).toMatch(/fingerprint/);
  });

  test("every bad entry is named, not just the first", () => {
    const r = parseHostKeys(`${ed}, ssh-foo AAAA, ssh-rsa ${ed.split(" ")[1]}`, H) as Invalid;
    expect(r.message).toMatch(/entry 2 .*entry 3/);
  });

  test("an empty list is refused", () => {
    expect(parseHostKeys(" , # only a comment", H)).toBeInstanceOf(Invalid);
  });
});

describe("parseListen", () => {
  test.each([
    ["unix:/run/sm.sock", { kind: "unix", path: "/run/sm.sock" }],
    ["unix:run/sm.sock", { kind: "unix", path: "/home/m/run/sm.sock" }],
    ["127.0.0.1:7990", { kind: "tcp", host: "127.0.0.1", port: 7990 }],
    ["[::1]:7990", { kind: "tcp", host: "::1", port: 7990 }],
    ["localhost:8080", { kind: "tcp", host: "localhost", port: 8080 }],
  ])("%s", (v, want) => {
    expect(parseListen(v, "mirror.serve.listen", "/home/m")).toEqual(want);
  });
  test.each(["7990", "127.0.0.1:0", "127.0.0.1:70000", "unix:", "http://127.0.0.1:7990", "::1:7990"])("refuses %s", (v) => {
    expect(parseListen(v, "mirror.serve.listen", "/home/m")).toBeInstanceOf(Invalid);
  });
});

describe("lists", () => {
  test.each([
    ["ALL", "ALL"],
    ["PROJ", ["PROJ"]],
    ["PROJ, OPS,PROJ", ["PROJ", "OPS"]],
    ["PROJ,\nOPS", ["PROJ", "OPS"]],
  ])("projects %j", (v, want) => {
    expect(parseProjects(v, "mirror.projects")).toEqual(want);
  });
  test.each(["", "ALL, PROJ", "My Project", "PROJ OPS", "PROJ/repo"])("projects %j refused", (v) => {
    expect(parseProjects(v, "mirror.projects")).toBeInstanceOf(Invalid);
  });

  test("static repos", () => {
    expect(parseRepoList("PROJ/repo, OPS/tools\nPROJ/repo,", "mirror.catalog.repos")).toEqual([
      { project: "PROJ", slug: "repo" },
      { project: "OPS", slug: "tools" },
    ]);
  });
  test.each([
    ["PROJ/repo.git", "mirror.catalog.repos=PROJ/repo"],
    ["repo", "PROJ/repo"],
    ["PROJ/a/b", "PROJ/repo"],
    ["/PROJ/repo", "PROJ/repo"],
    ["PROJ/..", "PROJ/repo"],
  ])("static repo %j refused, fix %j", (v, fix) => {
    const r = parseRepoList(v, "mirror.catalog.repos") as Invalid;
    expect(r).toBeInstanceOf(Invalid);
    expect(r.fix).toContain(fix);
  });

  test.each([
    ["", []],
    ["refs/pull-requests/*", ["refs/pull-requests/*"]],
    ["refs/pull-requests/*, refs/changes/*/meta", ["refs/pull-requests/*", "refs/changes/*/meta"]],
  ])("ref patterns %j", (v, want) => {
    expect(parseRefPatterns(v, "mirror.sync.excludeRefs")).toEqual(want);
  });
  test.each(["pull-requests/*", "refs/*/x/*", "refs/a..b", "refs/x/", "refs/a b", "refs/x.lock", "refs/[x]"])("ref pattern %j refused", (v) => {
    expect(parseRefPatterns(v, "mirror.sync.excludeRefs")).toBeInstanceOf(Invalid);
  });

  test.each([
    ["5", 5],
    ["5%", 5],
    ["0.5", 0.5],
    ["100", 100],
  ])("percent %j", (v, want) => {
    expect(parsePercent(v, "mirror.purge.protect")).toBe(want);
  });
  test.each(["101", "-1", "five", "5%%"])("percent %j refused", (v) => {
    expect(parsePercent(v, "mirror.purge.protect")).toBeInstanceOf(Invalid);
  });
});
