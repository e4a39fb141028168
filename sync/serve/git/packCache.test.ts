/**
 * The pack cache with stand-in generators (`sh` writing known bytes, at a known pace) behind a
 * real HTTP server: sharing, hits, failures, abandonment, eviction, expiry, the ref-state check.
 * Real git through the daemon's handler is in test/integration/packCacheServe.test.ts.
 */
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { Registry } from "prom-client";
import { cacheKey, Failure, HAND_OFF_MIN_BYTES, PACK_CACHE_METRIC_NAMES, PackCache, PackCacheOptions, refStateToken, ServeResult } from "./packCache";

jest.setTimeout(60_000);

let tmp: string;
const servers: http.Server[] = [];
const children: ChildProcess[] = [];

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pack-cache-test-"));
});
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => (s.closeAllConnections(), s.close(r)))));
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A generator: `sh -c script`, in its own process group like upload-pack. */
function sh(script: string): ChildProcess {
  const c = spawn("sh", ["-c", script], { detached: true, stdio: ["pipe", "pipe", "pipe"] });
  children.push(c);
  return c;
}

interface Harness {
  cache: PackCache;
  registry: Registry;
  port: number;
  starts: number;
  results: ServeResult[];
  failures: Failure[];
  /** What the next request runs, its ref-state check, its key. */
  script: string;
  valid: boolean;
  busy: boolean;
  key: string;
  /** The size estimate the next request gives (expectedBytes), if any. */
  expected?: number;
}

async function harness(o: Partial<PackCacheOptions> = {}): Promise<Harness> {
  const registry = new Registry();
  const h: Harness = {
    cache: new PackCache({ dir: path.join(tmp, "cache"), maxBytes: 1 << 20, maxAgeMs: 60_000, registry, ...o }),
    registry,
    port: 0,
    starts: 0,
    results: [],
    failures: [],
    script: "printf hello",
    valid: true,
    busy: false,
    key: "k1",
  };
  const server = http.createServer((_req, res) => {
    const script = h.script;
    void h.cache
      .serve(h.key, res, {
        headers: { "Content-Type": "application/octet-stream" },
        prefix: Buffer.from("P:"),
        input: Buffer.from("input"),
        idleTimeoutMs: 30_000,
        start: async () => {
          h.starts++;
          if (h.busy) return undefined;
          return { child: sh(script), release: () => undefined };
        },
        stillValid: () => h.valid,
        expectedBytes: h.expected === undefined ? undefined : () => h.expected as number,
        fail: (f) => {
          h.failures.push(f);
          res.writeHead(f.kind === "busy" ? 503 : 500, { Connection: "close" });
          res.end(f.kind);
        },
      })
      .then((r) => {
        // As the daemon's handler does: a request the cache did not take is served directly.
        if (r.result === "bypass") res.end("direct");
        h.results.push(r);
      });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  h.port = (server.address() as { port: number }).port;
  return h;
}

interface Got {
  status: number;
  body: string;
  /** The connection was cut before the end of the body. */
  cut: boolean;
}

function get(h: Harness, onFirstData?: (req: http.ClientRequest) => void): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port: h.port, path: "/", agent: false }, (res) => {
      let body = "";
      let first = true;
      res.setEncoding("latin1");
      res.on("data", (c: string) => {
        body += c;
        if (first && onFirstData) onFirstData(req);
        first = false;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, cut: false }));
      res.on("error", () => resolve({ status: res.statusCode ?? 0, body, cut: true }));
      res.on("aborted", () => resolve({ status: res.statusCode ?? 0, body, cut: true }));
    });
    req.on("error", (e) => (onFirstData ? resolve({ status: 0, body: "", cut: true }) : reject(e)));
  });
}

async function counter(h: Harness, outcome: string): Promise<number> {
  const m = h.registry.getSingleMetric(PACK_CACHE_METRIC_NAMES.requests);
  const v = (await m?.get())?.values.find((x) => x.labels.outcome === outcome);
  return v?.value ?? 0;
}

const settled = (h: Harness, n: number) =>
  new Promise<void>((resolve, reject) => {
    const deadline = Date.now() + 20_000;
    const tick = () => (h.results.length >= n ? resolve() : Date.now() > deadline ? reject(new Error(`only ${h.results.length} of ${n} requests settled`)) : setTimeout(tick, 10));
    tick();
  });

function alive(pid: number | undefined): boolean {
  try {
    process.kill(pid as number, 0);
    return true;
  } catch {
    return false;
  }
}

test("a miss runs the generator once; the same key then hits, byte for byte (prefix, then stdout)", async () => {
  const h = await harness();
  h.script = "cat; printf ' world'"; // stdin (the request body) goes through
  expect(await get(h)).toEqual({ status: 200, body: "P:input world", cut: false });
  expect(await get(h)).toEqual({ status: 200, body: "P:input world", cut: false });
  expect(h.starts).toBe(1);
  await settled(h, 2);
  expect(h.results.map((r) => [r.outcome, r.result, r.bytes])).toEqual([
    ["miss", "ok", 13],
    ["hit", "ok", 13],
  ]);
  expect(await counter(h, "hit")).toBe(1);
  expect(h.cache.size).toEqual({ entries: 1, bytes: 13 });
});

test("identical requests during a generation share it and each get every byte", async () => {
  const h = await harness();
  // 3 x 100 KiB, slowly: every request arrives while git is still writing.
  h.script = "for i in 1 2 3; do head -c 102400 /dev/zero | tr '\\0' x; sleep 0.3; done";
  const all = await Promise.all([get(h), new Promise<Got>((r) => setTimeout(() => void get(h).then(r), 100)), new Promise<Got>((r) => setTimeout(() => void get(h).then(r), 400))]);
  for (const g of all) expect({ status: g.status, len: g.body.length, cut: g.cut }).toEqual({ status: 200, len: 2 + 3 * 102400, cut: false });
  expect(h.starts).toBe(1);
  await settled(h, 3);
  expect(h.results.map((r) => r.outcome).sort()).toEqual(["miss", "shared", "shared"]);
});

test("different keys never share", async () => {
  const h = await harness();
  h.script = "printf a";
  await get(h);
  h.key = "k2";
  h.script = "printf b";
  expect((await get(h)).body).toBe("P:b");
  expect(h.starts).toBe(2);
  expect(cacheKey({ repoDir: "/r", state: "s", endpoint: "upload-pack", protocol: "version=2", body: Buffer.from("x") })).not.toBe(
    cacheKey({ repoDir: "/r", state: "s", endpoint: "upload-pack", protocol: "", body: Buffer.from("x") }),
  );
  // Length prefixes: moving a byte from one part to the next changes the key.
  expect(cacheKey({ repoDir: "/ra", state: "s", endpoint: "e", protocol: "", body: Buffer.alloc(0) })).not.toBe(cacheKey({ repoDir: "/r", state: "as", endpoint: "e", protocol: "", body: Buffer.alloc(0) }));
});

test("a generator failing before its first byte: every reader gets the error status; nothing is kept", async () => {
  const h = await harness();
  h.script = "sleep 0.3; echo broken >&2; exit 3";
  const [a, b] = await Promise.all([get(h), new Promise<Got>((r) => setTimeout(() => void get(h).then(r), 100))]);
  // The prefix waits for git's first byte: no answer had started, both get the error status.
  for (const g of [a, b]) expect(g).toEqual({ status: 500, body: "git", cut: false });
  await settled(h, 2);
  expect(h.results.map((r) => r.result)).toEqual(["failed", "failed"]);
  expect(h.results[0].failure).toMatchObject({ kind: "git", code: 3, stderr: "broken\n" });
  expect(h.cache.size.entries).toBe(0);
  h.script = "printf ok";
  expect((await get(h)).body).toBe("P:ok"); // a new generation, not the failed one
});

test("no slot for the generator: readers get the busy answer", async () => {
  const h = await harness();
  h.busy = true;
  const g = await get(h);
  expect(g.status).toBe(503);
  await settled(h, 1);
  expect(h.failures.map((f) => f.kind)).toEqual(["busy"]);
});

test("a generator failing after some bytes: its readers' connections are cut, never a short answer", async () => {
  const h = await harness();
  h.script = "printf partial; sleep 0.2; exit 1";
  const g = await get(h);
  expect(g.cut).toBe(true);
  expect(g.body).toBe("P:partial");
  await settled(h, 1);
  expect(h.results[0]).toMatchObject({ result: "failed", failure: { kind: "git", code: 1 } });
});

test("the last reader leaving stops the generator (its process group is killed) and keeps nothing", async () => {
  const h = await harness();
  h.script = "printf start; exec sleep 30";
  let pid: number | undefined;
  await get(h, (req) => {
    pid = children.at(-1)?.pid;
    req.destroy();
  });
  await settled(h, 1);
  expect(h.results[0].result).toBe("aborted");
  const deadline = Date.now() + 10_000;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  expect(alive(pid)).toBe(false);
  expect(h.cache.size.entries).toBe(0);
  // The dropped file is unlinked asynchronously (fs.rm on libuv's thread pool, busy on a loaded
  // machine): give it the same bounded time as the process, then it must be gone.
  const cacheDir = path.join(tmp, "cache");
  while (fs.readdirSync(cacheDir).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  expect(fs.readdirSync(cacheDir)).toEqual([]);
});

/** One GET on a keep-alive connection: status, the Connection header, the body. */
function getKeepAlive(h: Harness, agent: http.Agent): Promise<{ status: number; connection: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port: h.port, path: "/", agent }, (res) => {
        let body = "";
        res.setEncoding("latin1");
        res.on("data", (c: string) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body }));
      })
      .on("error", reject);
  });
}

/** Children of this process running `cat` (the pack cache's senders of finished answers). */
function catChildren(): number[] {
  const out: number[] = [];
  for (const p of fs.readdirSync("/proc").filter((x) => /^\d+$/.test(x))) {
    try {
      const status = fs.readFileSync(`/proc/${p}/status`, "utf8");
      if (/^Name:\s+cat$/m.test(status) && new RegExp(`^PPid:\\s+${process.pid}$`, "m").test(status)) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

test(`a finished answer of ${HAND_OFF_MIN_BYTES} bytes or more goes out through cat, byte for byte, on a closed connection; smaller hits keep theirs`, async () => {
  const h = await harness({ maxBytes: 64 << 20 });
  const agent = new http.Agent({ keepAlive: true });
  try {
    const big = HAND_OFF_MIN_BYTES + 12345;
    h.script = `head -c ${big} /dev/zero | tr '\\0' x`;
    const miss = await getKeepAlive(h, agent);
    const hit = await getKeepAlive(h, agent);
    expect(hit.status).toBe(200);
    expect(hit.body.length).toBe(big + 2);
    expect(hit.body).toBe(miss.body);
    expect(hit.body.startsWith("P:xxx")).toBe(true);
    expect(hit.connection).toBe("close");
    await settled(h, 2);
    expect(h.results[1]).toEqual({ result: "ok", outcome: "hit", bytes: big + 2 });
    expect(h.starts).toBe(1);
    // A small answer: relayed by the daemon, and the connection is kept for the next request.
    h.key = "small";
    h.script = "printf hello";
    await getKeepAlive(h, agent);
    const small = await getKeepAlive(h, agent);
    expect(small).toEqual({ status: 200, connection: "keep-alive", body: "P:hello" });
  } finally {
    agent.destroy();
  }
});

test("a client that leaves during a handed-off hit takes cat with it; the entry stays", async () => {
  const h = await harness({ maxBytes: 128 << 20 });
  h.script = "head -c 67108864 /dev/zero";
  await get(h); // the miss: generated and kept
  // The hit, on a client that reads the first bytes and then stops reading and hangs up.
  await get(h, (req) => {
    expect(catChildren().length).toBe(1);
    req.destroy();
  });
  await settled(h, 2);
  expect(h.results[1].outcome).toBe("hit");
  expect(h.results[1].result).toBe("aborted");
  expect(h.results[1].bytes).toBeLessThan(64 << 20);
  const deadline = Date.now() + 10_000;
  while (catChildren().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  expect(catChildren()).toEqual([]);
  expect(h.cache.size.entries).toBe(1);
});

test("a reader leaving while another still reads does not stop the generation", async () => {
  const h = await harness();
  h.script = "printf start; sleep 0.6; printf end";
  const staying = get(h);
  const leaving = new Promise<Got>((r) => setTimeout(() => void get(h, (req) => req.destroy()).then(r), 200));
  await leaving;
  expect(await staying).toEqual({ status: 200, body: "P:startend", cut: false });
  expect(h.starts).toBe(1);
  await settled(h, 2);
  expect(h.results.map((r) => r.result).sort()).toEqual(["aborted", "ok"]);
});

test("the ref state changed while generating: the readers get the answer, the cache does not keep it", async () => {
  const h = await harness();
  h.valid = false;
  expect((await get(h)).body).toBe("P:hello");
  expect(h.cache.size.entries).toBe(0);
  h.valid = true;
  await get(h);
  expect(h.starts).toBe(2);
});

test("bounded: least recently used entries are evicted; one bigger than the budget is served but not kept", async () => {
  const h = await harness({ maxBytes: 250 });
  const body = (c: string) => `head -c 100 /dev/zero | tr '\\0' ${c}`;
  for (const k of ["a", "b"]) {
    h.key = k;
    h.script = body(k);
    await get(h);
  }
  h.key = "a";
  await get(h); // a is now the most recently used
  h.key = "c";
  h.script = body("c");
  await get(h); // 3 x 102 bytes > 250: b goes
  expect(h.cache.size).toEqual({ entries: 2, bytes: 204 });
  h.key = "b";
  await get(h);
  expect(h.starts).toBe(4); // a hit, b was generated again
  h.key = "big";
  h.script = "head -c 1000 /dev/zero";
  expect((await get(h)).body.length).toBe(1002);
  expect(h.cache.size.bytes).toBeLessThanOrEqual(250);
  // Evicted and unkept files are unlinked in the background.
  const deadline = Date.now() + 5000;
  while (fs.readdirSync(path.join(tmp, "cache")).length !== h.cache.size.entries && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  expect(fs.readdirSync(path.join(tmp, "cache")).length).toBe(h.cache.size.entries);
});

test("an answer expected to exceed the budget bypasses the cache: no generation, no file; within it, a normal miss", async () => {
  const h = await harness({ maxBytes: 1000 });
  h.expected = 1001;
  expect(await get(h)).toEqual({ status: 200, body: "direct", cut: false });
  await settled(h, 1);
  expect(h.results[0]).toEqual({ result: "bypass", outcome: "too_large", bytes: 0 });
  expect(h.starts).toBe(0);
  expect(fs.readdirSync(path.join(tmp, "cache"))).toEqual([]);
  expect(await counter(h, "too_large")).toBe(1);
  expect(h.cache.enabled).toBe(true); // not a disk error
  h.expected = 1000;
  expect((await get(h)).body).toBe("P:hello");
  expect((await get(h)).body).toBe("P:hello");
  await settled(h, 3);
  expect(h.results.slice(1).map((r) => r.outcome)).toEqual(["miss", "hit"]);
  // A running or finished answer is shared whatever the estimate says now.
  h.expected = 5000;
  await get(h);
  await settled(h, 4);
  expect(h.results[3].outcome).toBe("hit");
});

test("entries expire after maxAgeMs", async () => {
  let now = 1_000_000;
  const h = await harness({ maxAgeMs: 1000, now: () => now });
  await get(h);
  now += 999;
  await get(h);
  expect(h.starts).toBe(1);
  now += 2;
  await get(h);
  expect(h.starts).toBe(2);
});

test("the directory is emptied at start; a directory that cannot be written turns the cache into a bypass", async () => {
  const dir = path.join(tmp, "cache");
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, "leftover"), "x");
  const h = await harness();
  expect(fs.readdirSync(dir)).toEqual([]);
  fs.rmSync(dir, { recursive: true });
  fs.writeFileSync(dir, "not a directory");
  expect(await get(h)).toEqual({ status: 200, body: "direct", cut: false });
  await settled(h, 1);
  expect(h.results[0].result).toBe("bypass");
  expect(h.starts).toBe(0);
  expect(h.cache.enabled).toBe(false);
});

test("refStateToken: the daemon's fingerprint plus packed-refs' identity; none without a fingerprint", () => {
  const repo = path.join(tmp, "r.git");
  fs.mkdirSync(repo);
  expect(refStateToken(repo)).toBeUndefined();
  fs.writeFileSync(path.join(repo, "smart-mirror.fingerprint"), "abc\n");
  const a = refStateToken(repo);
  expect(a).toMatch(/^abc /);
  fs.writeFileSync(path.join(repo, "packed-refs"), "# pack-refs\n");
  const b = refStateToken(repo);
  expect(b).not.toBe(a);
  fs.writeFileSync(path.join(repo, "smart-mirror.fingerprint"), "abd\n");
  expect(refStateToken(repo)).not.toBe(b);
});
