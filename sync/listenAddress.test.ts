import { Invalid } from "./config/problems";
import { parseListen } from "./config/values";
import { formatListenAddress, parseListenAddress } from "./listenAddress";
import { parseListenAddress as serveParse } from "./serve/listen";

// Whatever `check` accepts, the server binds as is (the two once had different grammars).
test.each(["[::1]:7990", "[fd00::1]:443", "127.0.0.1:7990", "localhost:8080", "unix:/run/smart-mirror/http.sock"])("%s: config, format and serve agree", (spec) => {
  const fromConfig = parseListen(spec, "mirror.serve.listen", "/home/m");
  expect(fromConfig).toEqual(parseListenAddress(spec));
  expect(serveParse(formatListenAddress(fromConfig as never))).toEqual(fromConfig);
});

test.each([
  ["::1:7990", /must be unix:PATH or HOST:PORT/],
  ["[::1]:70000", /out of range/],
  ["unix:", /no socket path/],
])("%s is refused by both with the same reason", (spec, why) => {
  expect(parseListenAddress(spec)).toEqual({ problem: expect.stringMatching(why) });
  expect(() => serveParse(spec)).toThrow(why);
  expect((parseListen(spec, "k", "/h") as Invalid).message).toMatch(why);
});
