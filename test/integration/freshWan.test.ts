/**
 * The CI race over a WAN, as issue 14 asks: 50 times, push to the primary and at once (no
 * sleep, no webhook: the reconcile interval is an hour) fetch the new commit by id from an
 * existing clone AND clone + check it out, both through the real nginx site in front of the
 * mirror, with 50 ms each way between the mirror and the primary (testbed/latencyProxy.ts).
 * Every attempt must succeed; the time each took is printed (not asserted: shared machine).
 */
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { startFreshMirror } from "../../testbed/freshMirror";
import { startLatencyProxy } from "../../testbed/latencyProxy";
import { startPrimary } from "../../testbed/primary";
import { git, workingClone } from "../../testbed/repos";
import { tempDir } from "../../testbed/resources";

jest.setTimeout(300_000);

const ATTEMPTS = 50;
const WAN_DELAY_MS = 50;
const ID = { project: "PROJ", slug: "app" };

async function timed(what: () => Promise<unknown>): Promise<{ ok: boolean; ms: number; error?: string }> {
  const t0 = performance.now();
  try {
    await what();
    return { ok: true, ms: performance.now() - t0 };
  } catch (e) {
    return { ok: false, ms: performance.now() - t0, error: (e as Error).message };
  }
}

test(`${ATTEMPTS} pushes, each fetched by id and cloned + checked out through nginx at once, over a ${WAN_DELAY_MS} ms WAN: 0 failures`, async () => {
  const primary = await startPrimary();
  await primary.createRepo(ID.project, ID.slug);
  const wc = await workingClone(primary.remote(ID.project, ID.slug));
  await wc.commit({ "a.txt": "0\n" });
  await wc.pushAll();
  const wan = await startLatencyProxy({ targetHost: primary.host, targetPort: primary.port, delayMs: WAN_DELAY_MS });
  const f = await startFreshMirror(primary, [ID], { upstream: wan, nginx: true });
  const env = f.gitEnv();
  const url = f.url(ID.project, ID.slug);
  const fetcher = path.join(tempDir("ci"), "fetcher");
  await git(["clone", "--quiet", url, fetcher], { env });

  const rows: string[] = [];
  const failures: string[] = [];
  for (let i = 1; i <= ATTEMPTS; i++) {
    const sha = await wc.commit({ "a.txt": `${i}\n` });
    await wc.push(["HEAD:refs/heads/main"]);
    // No sleep, no webhook: both CI steps start the moment the push returned.
    const dir = path.join(tempDir("ci"), `clone-${i}`);
    const [fetch, clone] = await Promise.all([
      timed(async () => {
        await git(["fetch", "--quiet", "origin", sha], { cwd: fetcher, env });
        await git(["cat-file", "-e", `${sha}^{commit}`], { cwd: fetcher, env });
      }),
      timed(async () => {
        await git(["clone", "--quiet", "--no-checkout", url, dir], { env });
        await git(["checkout", "--quiet", sha], { cwd: dir, env });
      }),
    ]);
    rows.push(`${String(i).padStart(2)}  fetch-by-sha ${fetch.ok ? "ok  " : "FAIL"} ${Math.round(fetch.ms).toString().padStart(5)} ms   clone+checkout ${clone.ok ? "ok  " : "FAIL"} ${Math.round(clone.ms).toString().padStart(5)} ms`);
    if (!fetch.ok) failures.push(`#${i} fetch ${sha}: ${fetch.error}`);
    if (!clone.ok) failures.push(`#${i} clone+checkout ${sha}: ${clone.error}`);
  }
  console.log(`CI race over a ${WAN_DELAY_MS} ms WAN (mirror <-> primary), through nginx, ${ATTEMPTS} pushes:\n${rows.join("\n")}\nfailures: ${failures.length}`);
  expect(failures).toEqual([]);
});
