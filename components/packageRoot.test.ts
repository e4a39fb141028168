import * as fs from "node:fs";
import * as path from "node:path";
import { tempDir } from "../testbed/resources";
import { DEFAULT_BUNDLE_PATH } from "./smartMirror";
import { packageRoot } from "./packageRoot";

describe("packageRoot", () => {
  test("from the sources: components/ -> the repository", () => {
    expect(packageRoot(__dirname)).toBe(path.resolve(__dirname, ".."));
    expect(DEFAULT_BUNDLE_PATH).toBe(path.resolve(__dirname, "..", "dist", "smart-mirror.js"));
  });

  test("compiled inside an installed package: lib/components/ -> the package, not lib/", () => {
    const pkg = path.join(tempDir("package-root"), "node_modules", "smart-mirror");
    fs.mkdirSync(path.join(pkg, "lib", "components"), { recursive: true });
    fs.writeFileSync(path.join(pkg, "package.json"), "{}");
    expect(packageRoot(path.join(pkg, "lib", "components"))).toBe(pkg);
  });
});
