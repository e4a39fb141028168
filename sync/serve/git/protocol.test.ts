import { advertisementPreamble, parseGitProtocol, pktLine } from "./protocol";

describe("pkt-line", () => {
  test("length prefix counts itself, in lower-case hex", () => {
    expect(pktLine("# service=git-upload-pack\n").toString()).toBe("001e# service=git-upload-pack\n");
    expect(pktLine("").toString()).toBe("0004");
    expect(pktLine("x".repeat(250)).subarray(0, 4).toString()).toBe("00fe");
  });

  test("v0/v1 advertisements start with the service line and a flush, v2 with nothing (like git-http-backend)", () => {
    expect(advertisementPreamble("git-upload-pack", 0).toString()).toBe("001e# service=git-upload-pack\n0000");
    expect(advertisementPreamble("git-upload-pack", 1).toString()).toBe("001e# service=git-upload-pack\n0000");
    expect(advertisementPreamble("git-upload-pack", 2).length).toBe(0);
  });
});

describe("parseGitProtocol", () => {
  test.each([
    [undefined, { version: 0 }],
    ["version=2", { env: "version=2", version: 2 }],
    ["version=1", { env: "version=1", version: 1 }],
    ["version=0", { env: "version=0", version: 0 }],
    // the highest version among the entries wins, as in git's protocol.c
    ["version=1:version=2", { env: "version=1:version=2", version: 2 }],
    ["object-format=sha256:version=2", { env: "object-format=sha256:version=2", version: 2 }],
    ["version=3", { env: "version=3", version: 0 }],
    // not passed on to git at all
    ["version=2\nGIT_DIR=/etc", { version: 0 }],
    ["version=2; rm -rf /", { version: 0 }],
    ["x".repeat(300), { version: 0 }],
    ["", { version: 0 }],
  ])("%j", (header, want) => expect(parseGitProtocol(header)).toEqual(want));

  test("a repeated header is ignored", () => expect(parseGitProtocol(["version=2", "version=2"])).toEqual({ version: 0 }));
});
