/**
 * Push on the primary -> signed webhook -> the change is on the mirror, through the built
 * daemon's real HTTP endpoint. A bad signature does no work.
 */
import * as path from "node:path";
import { getJson, runDaemon, waitForState } from "../../testbed/daemonProcess";
import { makeMirrorHome, writeMirrorProperties } from "../../testbed/mirrorHome";
import { startPrimary } from "../../testbed/primary";
import { git, workingClone } from "../../testbed/repos";
import { freePort, waitFor } from "../../testbed/resources";
import { postWebhook, refsChangedPayload } from "../../testbed/webhook";

jest.setTimeout(180_000);

test("a signed repo:refs_changed webhook syncs the repository; a forged one is refused", async () => {
  const primary = await startPrimary();
  await primary.createRepo("PROJ", "app");
  const wc = await workingClone(primary.remote("PROJ", "app"));
  await wc.commit({ "a.txt": "1\n" });
  await wc.pushAll();
  const mh = await makeMirrorHome(primary);
  const port = await freePort();
  const secret = "s3cret-for-tests";
  // A long interval: only the webhook can bring the change in time.
  writeMirrorProperties(mh, primary, { repos: [{ project: "PROJ", slug: "app" }], listen: `127.0.0.1:${port}`, webhookSecret: secret, extra: { "plugin.mirroring.synchronization.interval": "1h" } });
  const p = runDaemon(mh.home);
  await waitForState(port, ["SYNCHRONIZED"]);
  const mirrorRepo = path.join(mh.home, "repos", "PROJ", "app.git");
  const head = () => git(["rev-parse", "refs/heads/main"], { cwd: mirrorRepo }).then((s) => s.trim());

  const tip = await wc.commit({ "a.txt": "2\n" });
  await wc.push(["main"]);
  // Forged signature: 401, and the mirror does not move.
  expect(await postWebhook({ port }, "wrong-secret", refsChangedPayload("PROJ", "app"))).toBe(401);
  await new Promise((r) => setTimeout(r, 1000));
  expect(await head()).not.toBe(tip);

  expect(await postWebhook({ port }, secret, refsChangedPayload("PROJ", "app"))).toBe(202);
  await waitFor("the pushed commit on the mirror", async () => (await head()) === tip, 20000, 20);
  const metrics = String((await getJson(port, "/metrics")).body);
  expect(metrics).toMatch(/smart_mirror_webhooks_total\{result="accepted"\} 1/);
  expect(metrics).toMatch(/smart_mirror_webhooks_total\{result="unauthorized"\} 1/);
  p.child.kill("SIGTERM");
  expect(await p.exited).toBe(0);
});
