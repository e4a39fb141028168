/**
 * The exec supervisor reads units with this parser: the daemon unit the renderer produces must
 * come out as the same command, account, environment and stop behaviour systemd would use.
 */
import { renderDaemonUnit } from "../../components/render/systemd";
import { commandArgv, execSpec, parseTimeSpan, parseUnitFile, splitWords, values } from "./unitFile";

describe("unit files for the exec supervisor", () => {
  test("the rendered daemon unit yields its ExecStart, account, environment and stop policy", () => {
    const text = renderDaemonUnit({ user: "smart-mirror", home: "/var/lib/smart-mirror", bundlePath: "/opt/smart-mirror/smart-mirror.js", drainTimeoutSec: 1, timeoutStopSec: 40 });
    const s = execSpec(parseUnitFile(text), "smart-mirror.service");
    expect(s).toEqual({
      start: ["/usr/bin/node", "/opt/smart-mirror/smart-mirror.js", "run", "--home", "/var/lib/smart-mirror"],
      reload: undefined,
      user: "smart-mirror",
      group: "smart-mirror",
      env: { NODE_ENV: "production" },
      workingDirectory: "/var/lib/smart-mirror",
      stopTimeoutMs: 40_000,
      killMode: "mixed",
      wantedBy: ["multi-user.target"],
      umask: 0o027,
    });
  });

  test("continuations, comments, quoting, escapes, $VAR and ${VAR}, %% and list resets", () => {
    const u = parseUnitFile(
      [
        "[Service]",
        "# comment",
        'Environment="GREETING=hello world" DIR=/srv',
        "Environment=",
        'Environment="GREETING=hi there" DIR=/srv/x ARGS="-a -b"',
        "ExecStart=-/bin/echo \\",
        "  ${GREETING} $ARGS \"${DIR}/f 1\" 100%% 'single q' a\\tb",
        "ExecReload=/bin/kill -s HUP $MAINPID",
        "TimeoutStopSec=1min 30s",
      ].join("\n"),
    );
    expect(values(u, "Service", "Environment")).toHaveLength(1);
    const s = execSpec(u, "x.service");
    expect(s.env).toEqual({ GREETING: "hi there", DIR: "/srv/x", ARGS: "-a -b" });
    expect(s.start).toEqual(["/bin/echo", "hi there", "-a", "-b", "/srv/x/f 1", "100%", "single q", "a\tb"]);
    expect(s.reload).toEqual(["/bin/kill", "-s", "HUP", "${MAINPID}"]);
    expect(s.stopTimeoutMs).toBe(90_000);
    expect(s.killMode).toBe("control-group");
  });

  test.each([
    ["ExecStart=@/bin/sh sh", /prefix "@"/],
    ["ExecStart=/bin/echo %h", /specifier "%h" .* write the value out/],
    ["ExecStart=echo hi", /must be an absolute path/],
    ["ExecStart=/bin/echo 'open", /unterminated/],
  ])("%s is refused with a reason", (line, msg) => {
    expect(() => execSpec(parseUnitFile(`[Service]\n${line}\n`), "x.service")).toThrow(msg);
  });

  test("Type=forking and ExecStartPre are outside the supervisor's subset", () => {
    expect(() => execSpec(parseUnitFile("[Service]\nType=forking\nExecStart=/bin/true\n"), "x.service")).toThrow(/Type=forking is not supported/);
    expect(() => execSpec(parseUnitFile("[Service]\nExecStartPre=/bin/true\nExecStart=/bin/true\n"), "x.service")).toThrow(/ExecStartPre= is not supported/);
    expect(() => execSpec(parseUnitFile("[Service]\nType=simple\n"), "x.service")).toThrow(/exactly one ExecStart=/);
  });

  test("time spans", () => {
    expect(parseTimeSpan("30s")).toBe(30_000);
    expect(parseTimeSpan("90")).toBe(90_000);
    expect(parseTimeSpan("500ms")).toBe(500);
    expect(parseTimeSpan("2min 5s")).toBe(125_000);
    expect(parseTimeSpan("infinity")).toBe(Number.POSITIVE_INFINITY);
    expect(() => parseTimeSpan("soon")).toThrow(/not like "30s"/);
    expect(() => parseTimeSpan("5 fortnights")).toThrow(/unknown unit "fortnights"/);
  });

  test("words and commands", () => {
    expect(splitWords(`a "b c" 'd e' f\\ g`)).toEqual(["a", "b c", "d e", "f g"]);
    expect(commandArgv("/bin/x $EMPTY y", {})).toEqual(["/bin/x", "y"]);
    expect(() => parseUnitFile("Key=before any section\n")).toThrow(/line 1: expected/);
  });
});
