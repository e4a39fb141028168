import { parseAdvertisement, PktLineReader } from "./advertisement";
import { describeMismatch, knownHostsText, matchesPinned, parsePinnedKeys, sshFingerprint } from "./hostKeys";
import { fingerprint, makeRefFilter, mirrorRefspecs } from "./refFilter";
import { uploadPackCommand, upstreamPath } from "./upstreamPool";

const A = "a".repeat(40);
const B = "b".repeat(40);
const pkt = (s: string) => (s.length + 4).toString(16).padStart(4, "0") + s;

describe("pkt-line advertisement", () => {
  const wire = pkt(`${A} HEAD\0multi_ack symref=HEAD:refs/heads/main agent=git/2.39\n`) + pkt(`${A} refs/heads/main\n`) + pkt(`${B} refs/tags/v1\n`) + pkt(`${A} refs/tags/v1^{}\n`) + "0000";

  test("parses refs, drops HEAD and peeled entries, reads HEAD's symref", () => {
    const r = new PktLineReader();
    const out = r.push(Buffer.from(wire));
    const flush = out.indexOf(null);
    const adv = parseAdvertisement(out.slice(0, flush) as Buffer[]);
    expect([...adv.refs]).toEqual([["refs/heads/main", A], ["refs/tags/v1", B]]);
    expect(adv.headTarget).toBe("refs/heads/main");
  });

  test("reassembles pkt-lines split at any byte", () => {
    for (let cut = 1; cut < wire.length; cut += 7) {
      const r = new PktLineReader();
      const out = [...r.push(Buffer.from(wire.slice(0, cut))), ...r.push(Buffer.from(wire.slice(cut)))];
      expect(out.filter((x) => x !== null)).toHaveLength(4);
      expect(out[out.length - 1]).toBeNull();
    }
  });

  test("empty repository advertises no refs", () => {
    const adv = parseAdvertisement([Buffer.from(`${"0".repeat(40)} capabilities^{}\0agent=x\n`)]);
    expect(adv.refs.size).toBe(0);
  });

  test("ERR packets and garbage are errors, not empty repos", () => {
    expect(() => parseAdvertisement([Buffer.from("ERR access denied\n")])).toThrow(/primary refused: access denied/);
    expect(() => parseAdvertisement([Buffer.from("nonsense\n")])).toThrow(/malformed/);
    expect(() => new PktLineReader().push(Buffer.from("zzzz"))).toThrow(/malformed pkt-line/);
  });
});

describe("ref filter and fingerprint", () => {
  const keep = makeRefFilter(["refs/pull-requests/*", "refs/keep-around/*"]);
  test.each([
    ["refs/heads/main", true],
    ["refs/tags/v1.0", true],
    ["refs/pull-requests/1/from", false],
    ["refs/keep-around/abc", false],
    ["HEAD", false],
  ])("%s kept=%s", (ref, kept) => expect(keep(ref)).toBe(kept));

  test("refspecs are the mirror refspec plus negative ones", () => {
    expect(mirrorRefspecs(["refs/pull-requests/*"])).toEqual(["+refs/*:refs/*", "^refs/pull-requests/*"]);
  });

  test("fingerprint ignores order and excluded refs, but sees every kept change and HEAD", () => {
    const base = fingerprint([["refs/heads/main", A], ["refs/tags/v1", B]], "refs/heads/main", keep);
    expect(fingerprint([["refs/tags/v1", B], ["refs/heads/main", A], ["refs/pull-requests/1/from", B]], "refs/heads/main", keep)).toBe(base);
    expect(fingerprint([["refs/heads/main", B], ["refs/tags/v1", B]], "refs/heads/main", keep)).not.toBe(base);
    expect(fingerprint([["refs/heads/main", A]], "refs/heads/main", keep)).not.toBe(base);
    expect(fingerprint([["refs/heads/main", A], ["refs/tags/v1", B]], "refs/heads/dev", keep)).not.toBe(base);
  });
});

describe("pinned host keys", () => {
  // A real ed25519 public key blob (type string + 32-byte key).
  const blob = Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from("ssh-ed25519"), Buffer.from([0, 0, 0, 32]), Buffer.alloc(32, 7)]);
  const line = `ssh-ed25519 ${blob.toString("base64")} host@example`;

  test("parses .pub and known_hosts forms, comma or newline separated", () => {
    expect(parsePinnedKeys(line)).toEqual([{ type: "ssh-ed25519", base64: blob.toString("base64") }]);
    expect(parsePinnedKeys(`[h]:7999 ${line}\n${line}`)).toHaveLength(2);
    expect(parsePinnedKeys(`${line}, ${line}`)).toHaveLength(2);
  });

  test("rejects non-keys and blobs whose type does not match", () => {
    expect(() => parsePinnedKeys("hello world")).toThrow(/not an SSH public host key/);
    expect(() => parsePinnedKeys(`ssh-rsa ${blob.toString("base64")}`)).toThrow(/does not match its type ssh-rsa/);
  });

  test("matches only the exact key; mismatch message names both fingerprints and the fix", () => {
    const pinned = parsePinnedKeys(line);
    expect(matchesPinned(blob, pinned)).toBe(true);
    const other = Buffer.from(blob);
    other[other.length - 1] ^= 1;
    expect(matchesPinned(other, pinned)).toBe(false);
    const msg = describeMismatch(other, pinned, "h", 7999);
    expect(msg).toContain(sshFingerprint(other));
    expect(msg).toContain(sshFingerprint(blob));
    expect(msg).toMatch(/update mirror.upstream.hostKeys/);
  });

  test("known_hosts brackets non-default ports", () => {
    const pinned = parsePinnedKeys(line);
    expect(knownHostsText("h", 7999, pinned)).toBe(`[h]:7999 ssh-ed25519 ${blob.toString("base64")}\n`);
    expect(knownHostsText("h", 22, pinned)).toBe(`h ssh-ed25519 ${blob.toString("base64")}\n`);
  });
});

test("upload-pack command quotes the path as git does", () => {
  expect(uploadPackCommand(upstreamPath("PROJ", "repo"))).toBe("git-upload-pack '/PROJ/repo.git'");
  expect(uploadPackCommand("/a'b.git")).toBe("git-upload-pack '/a'\\''b.git'");
  // As git sends ssh://host/~jdoe/r.git (connect.c): the primary sees what a git client sends.
  expect(uploadPackCommand(upstreamPath("~JOHN.DOE", "notes"))).toBe("git-upload-pack '~JOHN.DOE/notes.git'");
});
