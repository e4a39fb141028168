import { formatDuration, parseDuration } from "./duration";

describe("parseDuration", () => {
  test.each([
    ["180", 180_000],
    ["0", 0],
    ["1.5", 1500],
    ["500ms", 500],
    ["30s", 30_000],
    ["5m", 300_000],
    ["1h", 3_600_000],
    ["7d", 604_800_000],
    ["1h30m", 5_400_000],
    ["1m30s", 90_000],
    ["  3m  ", 180_000],
    ["0.5s", 500],
  ])("%j -> %d ms", (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  test.each(["", "m", "5M", "5 m", "-5s", "5w", "1h-30m", "five", "3mins", "1e3", "s5"])("%j is not a duration", (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
});

describe("formatDuration", () => {
  test.each([
    [0, "0s"],
    [500, "500ms"],
    [180_000, "3m"],
    [5_400_000, "1h30m"],
    [86_400_000, "1d"],
    [1500, "1s500ms"],
  ])("%d ms -> %s", (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
    expect(parseDuration(text)).toBe(ms); // round-trips
  });
});
