/**
 * Where this package's own files are (dist/smart-mirror.js, the daemon bundle), found from a
 * module's folder: the nearest folder upwards that holds a package.json. The same code runs
 * from the sources (components/ -> the repository) and compiled inside an installed package
 * (node_modules/smart-mirror/lib/components/ -> node_modules/smart-mirror), so no fixed
 * number of `..` fits both.
 */
import * as fs from "node:fs";
import * as path from "node:path";

export function packageRoot(from: string): string {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, "package.json"))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`smart-mirror: no package.json above ${from}; is the package installed whole?`);
  }
}
