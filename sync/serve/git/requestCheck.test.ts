import { errPacket, framingProblem, printable, refusalMessage, refusedByGit, stderrForLog, MAX_LOGGED_STDERR } from "./requestCheck";

describe("framingProblem", () => {
  test.each([
    ["flush only", "0000"],
    ["v0 request", "0032want 1111111111111111111111111111111111111111\n00000009done\n"],
    ["v2 with delim", "0014command=ls-refs\n00010000"],
    ["empty", ""],
  ])("whole pkt-lines: %s", (_n, body) => expect(framingProblem(Buffer.from(body, "latin1"))).toBeUndefined());

  test.each([
    ["zzzz", "zzzz", /bad pkt-line length "zzzz"/],
    ["length 3", "0003", /length 3/],
    ["too long", "fff5xx", /longer than 65520/],
    ["cut payload", "0032want 11", /ends inside a pkt-line of 50 bytes/],
    ["cut length", "00", /ends inside a pkt-line length/],
    ["control characters are not echoed raw", "\u0000\u0001\u001b[", /"\?\?\?\["/],
  ])("refused: %s", (_n, body, re) => expect(framingProblem(Buffer.from(body, "latin1"))).toMatch(re));

  test("70 KB of A: a 43690-byte pkt-line followed by a cut one", () => {
    expect(framingProblem(Buffer.alloc(70 * 1024, "A"))).toMatch(/ends inside a pkt-line of 43690 bytes at byte 43690/);
  });
});

describe("refusedByGit", () => {
  test.each([
    "fatal: protocol error: bad line length character: zzzz",
    "fatal: git upload-pack: protocol error, expected to get object ID, not 'done'",
    "fatal: git upload-pack: not our ref 1111111111111111111111111111111111111111",
    "fatal: git upload-pack: ambiguous deepen-not: deepen-not refs/heads",
    "fatal: invalid command 'bogus'",
    "fatal: the remote end hung up unexpectedly",
  ])("the request's fault: %s", (stderr) => expect(refusedByGit(128, null, stderr)).toBe(true));

  test.each([
    [128, null, "fatal: git upload-pack: aborting due to possible repository corruption on the remote side."],
    [128, null, "error: pack-objects died of signal 9\nfatal: git upload-pack: protocol error, expected..."],
    [128, null, "fatal: unable to read 1234: No such file"],
    [1, null, "fatal: protocol error: bad line length character: zzzz"],
    [null, "SIGKILL" as NodeJS.Signals, "fatal: protocol error"],
    [128, null, "warning: something"],
  ])("the mirror's: %s %s %s", (code, signal, stderr) => expect(refusedByGit(code, signal, stderr)).toBe(false));
});

describe("bounded and printable", () => {
  test("log field", () => {
    const s = stderrForLog(`fatal: expected object ID, not '${"A".repeat(70_000)}'\n`);
    expect(s.length).toBe(MAX_LOGGED_STDERR + 3);
  });
  test("client message: git's fatal line, cut, no control characters", () => {
    const m = refusalMessage(`fatal: not our ref \u001b[31m${"x".repeat(500)}`);
    expect(m).toMatch(/^git upload-pack refused the request: not our ref \?\[31mx+\.\.\.$/);
    expect(m.length).toBeLessThan(260);
  });
  test("ERR pkt-line", () => expect(errPacket("no").toString()).toBe("000bERR no\n"));
  test("printable", () => expect(printable("a\u00e9b", 10)).toBe("a?b"));
});
