import * as fs from "node:fs";
import { README, renderReadme } from "../../scripts/docs";

// The README's config reference is generated from the key table: a key added to the daemon
// without regenerating the README fails here.
test("README's generated sections are up to date (run `npm run docs`)", () => {
  const text = fs.readFileSync(README, "utf8");
  expect(renderReadme(text)).toBe(text);
});
