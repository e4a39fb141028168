import { decodeProperties, findMalformedUnicodeEscape, parseProperties } from "./properties";

describe("parseProperties", () => {
  test("Java syntax: separators, escapes, continuation lines, comments, with line numbers", () => {
    const text = [
      "# comment",
      "! also a comment",
      "a=1",
      "b : 2",
      "c 3",
      "d = first \\",
      "    second",
      "e=caf\\u00e9",
      "key\\ with\\ space=x",
      "",
      "f=last",
    ].join("\n");
    const { entries, problems, warnings } = parseProperties(text);
    expect(problems).toEqual([]);
    expect(warnings).toEqual([]);
    expect(Object.fromEntries([...entries].map(([k, e]) => [k, [e.value, e.line]]))).toEqual({
      a: ["1", 3],
      b: ["2", 4],
      c: ["3", 5],
      d: ["first second", 6],
      e: ["café", 8],
      "key with space": ["x", 9],
      f: ["last", 11],
    });
  });

  test("a repeated key: last one wins, with a warning naming both lines", () => {
    const { entries, warnings } = parseProperties("a=1\nb=2\na=3\n");
    expect(entries.get("a")).toEqual({ value: "3", line: 3 });
    expect(warnings).toEqual([expect.objectContaining({ key: "a", line: 3, message: expect.stringContaining("lines 1 and 3") })]);
  });

  test("a malformed \\u escape is a problem with its line (Java would refuse the file)", () => {
    const { entries, problems } = parseProperties("a=1\nsetup.displayName=Caf\\u00g9\nb=2\n");
    expect(problems).toEqual([expect.objectContaining({ key: "setup.displayName", line: 2, value: "Caf\\u00g9", fix: expect.stringContaining("four hex digits") })]);
    expect(entries.has("setup.displayName")).toBe(false);
    expect(entries.get("b")?.line).toBe(3);
  });

  test("the bad escape's own line is reported inside a continuation", () => {
    const { problems } = parseProperties("x=1\nk=abc \\\n  def\\u12\n");
    expect(problems[0].line).toBe(3);
  });

  test("a line with a value but no key is warned about and ignored", () => {
    const { entries, warnings } = parseProperties("=oops\n");
    expect(entries.size).toBe(0);
    expect(warnings[0]).toMatchObject({ line: 1, message: expect.stringContaining("no key") });
  });

  test.each([
    ["\\u00e9", undefined],
    ["\\\\u12", undefined], // escaped backslash, then literal "u12"
    ["a\\u12", 1],
    ["\\u", 0],
    ["ok\\n\\t", undefined],
  ])("findMalformedUnicodeEscape(%j) = %j", (raw, at) => {
    expect(findMalformedUnicodeEscape(raw)).toBe(at);
  });
});

describe("decodeProperties", () => {
  test("UTF-8 passes", () => {
    expect(decodeProperties(Buffer.from("a=café\n"))).toEqual({ text: "a=café\n" });
  });
  test("latin1 bytes are refused with the line and a fix", () => {
    const r = decodeProperties(Buffer.concat([Buffer.from("a=1\nb=caf"), Buffer.from([0xe9]), Buffer.from("\n")]));
    expect("problem" in r && r.problem).toMatchObject({ key: "bitbucket.properties", line: 2, fix: expect.stringContaining("UTF-8") });
  });
});
