/**
 * `check` and `run` read mirror.serve.listen with one parser: an address that passes `check`
 * is the address `run` listens on (an IPv6 literal once passed one and failed the other).
 */
import { spawnSync } from "node:child_process";
import * as http from "node:http";
import { ensureBundle, runDaemon } from "../../testbed/daemonProcess";
import { makeMirrorHome, writeMirrorProperties } from "../../testbed/mirrorHome";
import { startPrimary } from "../../testbed/primary";
import { freePort, waitFor } from "../../testbed/resources";

jest.setTimeout(180_000);

function statusOver(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: "/healthz", timeout: 5000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("timeout")));
  });
}

test("mirror.serve.listen=[::1]:PORT passes check and run serves on it", async () => {
  ensureBundle();
  const primary = await startPrimary();
  await primary.createRepo("PROJ", "a");
  const mh = await makeMirrorHome(primary);
  const port = await freePort("::1");
  writeMirrorProperties(mh, primary, { repos: [{ project: "PROJ", slug: "a" }], listen: `[::1]:${port}` });
  const check = spawnSync("node", [ensureBundle(), "check", "--home", mh.home], { encoding: "utf8" });
  expect(check.stderr).toBe("");
  expect(check.status).toBe(0);
  expect(check.stdout).toContain(`[::1]:${port}`);

  const p = runDaemon(mh.home);
  const served = await Promise.race([
    waitFor("the daemon on [::1]", () => statusOver("::1", port).then((s) => s === 200).catch(() => false), 60000, 50),
    p.exited.then((code) => {
      throw new Error(`run exited ${code} instead of listening on [::1]:${port}:\n${p.output()}`);
    }),
  ]);
  expect(served).toBe(true);
  p.child.kill("SIGTERM");
  expect(await p.exited).toBe(0);
});
