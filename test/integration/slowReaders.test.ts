/**
 * Slow readers must not starve other clones (issue 12, item 2). Clients that read their pack at
 * a trickle (4 KB per 100 ms, straight on the socket, from their own loopback addresses) used to
 * hold every upload-pack slot while other clones waited and got 503. Now:
 * - a transfer slower than the minimum rate is cut while another client waits for a slot;
 * - one client address never holds every slot (its share leaves one for the others).
 * The victim is a real `git clone` from another address; nothing here asserts on timing.
 */
import { randomBytes } from "node:crypto";
import * as net from "node:net";
import * as path from "node:path";
import { GIT_METRIC_NAMES } from "../../sync/serve/git";
import { startInProcessGitServer, InProcessGitServer } from "../../testbed/gitServer";
import { pkt } from "../../testbed/hostileRequests";
import { git, initBare, workingClone } from "../../testbed/repos";
import { onCleanup, tempDir, waitFor } from "../../testbed/resources";

jest.setTimeout(240_000);

let catalog: Map<string, string>;
let head: string;

beforeAll(async () => {
  const dir = path.join(tempDir("slow"), "big.git");
  await initBare(dir);
  const w = await workingClone(dir);
  // Incompressible and larger than the loopback socket buffers on both sides, so a reader that
  // does not read holds git up.
  head = await w.commit({ "blob.bin": randomBytes(24 * 1024 * 1024) });
  await w.push(["main"]);
  catalog = new Map([["PROJ/big", dir]]);
});

/** A clone's POST from `localAddress`, read 4 KB at a time every 100 ms until stopped. */
function slowReader(port: number, localAddress: string): { received: () => number; closed: Promise<void> } {
  let got = 0;
  const s = net.connect({
    host: "127.0.0.1",
    port,
    localAddress,
    onread: {
      buffer: Buffer.alloc(4096),
      callback: (n: number) => {
        got += n;
        return false; // pause: the timer below reads the next 4 KB
      },
    },
  });
  const body = Buffer.concat([pkt(`want ${head}\n`), Buffer.from("0000"), pkt("done\n")]);
  s.write(`POST /scm/PROJ/big.git/git-upload-pack HTTP/1.1\r\nHost: mirror\r\nContent-Type: application/x-git-upload-pack-request\r\nContent-Length: ${body.length}\r\n\r\n`);
  s.write(body);
  const timer = setInterval(() => s.resume(), 100);
  const closed = new Promise<void>((resolve) => {
    s.on("error", () => undefined);
    s.on("close", () => {
      clearInterval(timer);
      resolve();
    });
  });
  onCleanup(() => {
    s.destroy();
    return closed;
  });
  return { received: () => got, closed };
}

async function clone(srv: InProcessGitServer): Promise<void> {
  const dest = path.join(tempDir("victim"), "v.git");
  await git(["clone", "--quiet", "--bare", `${srv.base}/scm/PROJ/big.git`, dest], { env: { GIT_TERMINAL_PROMPT: "0" } });
  expect((await git(["rev-parse", "main"], { cwd: dest })).trim()).toBe(head);
}

async function counter(srv: InProcessGitServer, name: string, labels: Record<string, string>): Promise<number> {
  const m = srv.registry.getSingleMetric(name);
  if (!m) return 0;
  const { values } = await m.get();
  return values.filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want)).reduce((a, v) => a + v.value, 0);
}

test("slow readers on every slot are cut once another client waits: its clone gets through", async () => {
  const srv = await startInProcessGitServer(catalog, {
    maxConcurrent: 2,
    maxPerClient: 2,
    queueWaitMs: 90_000,
    transferLimits: { minBytesPerSec: 256 * 1024, windowMs: 2000, maxTransferMs: 0 },
  });
  const readers = [slowReader(srv.port, "127.0.0.2"), slowReader(srv.port, "127.0.0.3")];
  await waitFor("both slots held by slow readers", () => srv.routes.slots.running === 2 && readers.every((r) => r.received() > 0), 30_000, 20);
  await clone(srv);
  // The slow transfer whose slot the clone needed was cut; one that nobody needed may go on.
  expect(await counter(srv, GIT_METRIC_NAMES.uploadPacks, { result: "too_slow" })).toBeGreaterThanOrEqual(1);
  expect(srv.logs.some((l) => l.obj.result === "too_slow" && l.msg === "git upload-pack cut: slower than the minimum rate while others waited")).toBe(true);
  expect(await counter(srv, GIT_METRIC_NAMES.requests, { code: "503" })).toBe(0);
  await srv.close();
});

test("one address with four slow readers holds at most its share: another client clones at once (minimum rate off)", async () => {
  const srv = await startInProcessGitServer(catalog, {
    maxConcurrent: 4,
    queueWaitMs: 90_000,
    transferLimits: { minBytesPerSec: 0, windowMs: 2000, maxTransferMs: 0 },
  });
  const readers = [1, 2, 3, 4].map(() => slowReader(srv.port, "127.0.0.2"));
  await waitFor("three slots held, one reader waiting", () => srv.routes.slots.running === 3 && srv.routes.slots.waiting === 1, 30_000, 20);
  await clone(srv);
  expect(srv.routes.slots.runningFor("127.0.0.2")).toBe(3);
  expect(await counter(srv, GIT_METRIC_NAMES.requests, { code: "503" })).toBe(0);
  expect(readers.length).toBe(4);
  await srv.close();
});
