import { isDue } from "./maintenance";

test.each([
  [undefined, 1000, 5000, true],
  [4500, 1000, 5000, false],
  [4000, 1000, 5000, true],
  [0, 0, 5000, false],
  [undefined, 0, 5000, false],
])("last=%s interval=%s now=%s due=%s", (last, interval, now, due) => {
  expect(isDue(last, interval, now)).toBe(due);
});
