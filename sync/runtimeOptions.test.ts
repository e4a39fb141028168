import { parseProperties } from "./config/properties";
import { validateEntries } from "./config/schema";
import { minimalExample } from "./config/keys";
import { DEFAULT_SCAN, RETRY_BASE_MS } from "./daemon/settings";
import { runtimeOptions } from "./runtimeOptions";
import { Scheduler } from "./scheduler/scheduler";

function config(extra = "") {
  const v = validateEntries(parseProperties(`${minimalExample("/m")}\n${extra}`).entries, "/m");
  if (!v.config) throw new Error(JSON.stringify(v.problems));
  return v.config;
}

const files: Record<string, string> = {
  "/m/shared/secrets/upstream-token": "tok\n",
  "/m/shared/secrets/webhook-secret": "0123456789abcdef0123456789abcdef\n",
  "/m/ca.pem": "PEM",
  "/m/shared/secrets/events-secret": "evsec-0123456789abcdef\n",
};
const read = (f: string) => {
  if (!(f in files)) throw new Error(`unexpected read of ${f}`);
  return files[f];
};

describe("runtimeOptions: the configuration as the daemon, the Git routes and access control take it", () => {
  test("defaults", () => {
    const c = config();
    const o = runtimeOptions(c, read);
    expect(o.daemon).toMatchObject({
      home: "/m",
      intervalMs: 180_000,
      concurrency: 8,
      backoff: { baseMs: RETRY_BASE_MS, maxMs: 600_000 },
      scanParallelism: DEFAULT_SCAN.parallelism,
      scanConnections: DEFAULT_SCAN.connections,
      catalog: { kind: "rest", baseUrl: "https://bitbucket.example.com", token: "tok", ca: undefined },
    });
    expect(o.serve).toEqual({
      bodyBudgetBytes: 64 * 2 ** 20,
      bodyIdleMs: 30_000,
      packCache: { dir: "/m/cache/packs", maxBytes: 2048 * 2 ** 20, scope: "clones" },
      maxPerClient: undefined,
      transferLimits: { minBytesPerSec: 16 * 1024, windowMs: 60_000, maxTransferMs: 6 * 3_600_000 },
      freshness: { waitMs: 5000, advertisement: "always" },
      // mirror.push=proxy (default): forwarded to the primary's URL, waiting as long as on-demand fetches.
      push: { upstreamUrl: "https://bitbucket.example.com", caPem: undefined, waitMs: 5000 },
    });
    expect(o.auth).toEqual({ serve: c.serve, upstream: c.upstream });
    expect(o.webhookSecret).toBeUndefined();
    expect(o.log.level).toBe("info");
    // The parsed address itself, not a string to parse again.
    expect(o.listen).toBe(c.serve.listen);
  });

  test("mirror.push: refuse turns the forwarding off; the primary's CA file is read for it", () => {
    expect(runtimeOptions(config("mirror.push=refuse"), read).serve.push).toBeUndefined();
    const ca = runtimeOptions(config("mirror.upstream.caFile=/m/shared/primary-ca.pem"), (f) => (f === "/m/shared/primary-ca.pem" ? "PEM" : read(f)));
    expect(ca.serve.push).toEqual({ upstreamUrl: "https://bitbucket.example.com", caPem: "PEM", waitMs: 5000 });
  });

  test("synced events: off by default (no ref tracking); on with URLs and the secret read from its file", () => {
    const off = runtimeOptions(config(), read);
    expect(off.events).toBeUndefined();
    expect(off.daemon.trackRefChanges).toBe(false);
    const on = runtimeOptions(config("mirror.events.urls=https://ci.example.com/h, http://127.0.0.1:9/h\nmirror.events.secretFile=/m/shared/secrets/events-secret\nmirror.events.timeout=3s"), read);
    expect(on.events).toEqual({
      urls: ["https://ci.example.com/h", "http://127.0.0.1:9/h"],
      secret: "evsec-0123456789abcdef",
      queueSize: 1000,
      maxAttempts: 8,
      timeoutMs: 3000,
      mirror: { id: "mirror-syd.example.com", name: "Sydney mirror", baseUrl: "https://mirror-syd.example.com" },
    });
    expect(on.daemon.trackRefChanges).toBe(true);
  });

  test("set values, secrets read through the injected reader", () => {
    const o = runtimeOptions(
      config(
        [
          "mirror.serve.packCacheMb=0",
          "mirror.serve.uploadPacksPerClient=3",
          "mirror.webhook.secretFile=DIR/shared/secrets/webhook-secret".replace("DIR", "/m"),
          "mirror.upstream.caFile=/m/ca.pem",
          "mirror.serve.listen=[::1]:7990",
        ].join("\n"),
      ),
      read,
    );
    expect(o.serve.packCache).toBeUndefined();
    expect(o.serve.maxPerClient).toBe(3);
    expect(o.webhookSecret).toBe("0123456789abcdef0123456789abcdef");
    expect(o.daemon.catalog).toMatchObject({ ca: "PEM" });
    expect(o.listen).toEqual({ kind: "tcp", host: "::1", port: 7990 });
  });
});

test("the smallest mirror.sync.retryMax `check` accepts is one the scheduler accepts (once 1s passed check and `run` died on it)", () => {
  const c = config("mirror.sync.retryMax=2s");
  expect(() => new Scheduler({ sync: async () => undefined, backoff: runtimeOptions(c, read).daemon.backoff })).not.toThrow();
  expect(validateEntries(parseProperties(`${minimalExample("/m")}\nmirror.sync.retryMax=1s`).entries, "/m").problems.map((p) => p.key)).toEqual(["mirror.sync.retryMax"]);
  expect(RETRY_BASE_MS).toBe(2000);
});
