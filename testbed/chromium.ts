/**
 * Debian's headless Chromium driven over the DevTools protocol, for tests of pages the mirror
 * serves. The protocol runs over --remote-debugging-pipe (fd 3: commands in, fd 4: answers
 * and events out, each message JSON ending in a NUL), the transport puppeteer's `pipe: true`
 * uses: no WebSocket client, no port, no dependency.
 *
 * TLS is verified for real: the browser gets a HOME of its own whose NSS database (what
 * Chromium on Linux trusts besides the system store) holds the bench CA, and names resolve
 * through --host-resolver-rules, so https://mirror.test:PORT/ is checked for its name exactly
 * as a person's browser checks the real mirror.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Readable, Writable } from "node:stream";
import { spawnTracked, tempDir, TrackedProcess } from "./resources";

export const CHROMIUM_BIN = "/usr/bin/chromium";
export const CERTUTIL_BIN = "/usr/bin/certutil";

/** What is missing to run a browser test, with the package that brings it (empty: all there). */
export function missingBrowserPrerequisites(has: (p: string) => boolean = fs.existsSync): string[] {
  const out: string[] = [];
  if (!has(CHROMIUM_BIN)) out.push(`${CHROMIUM_BIN} is missing (install the chromium package)`);
  if (!has(CERTUTIL_BIN)) out.push(`${CERTUTIL_BIN} is missing (install the libnss3-tools package)`);
  return out;
}

interface Pending {
  resolve(v: Record<string, unknown>): void;
  reject(e: Error): void;
  method: string;
}

export interface CdpEvent {
  method: string;
  params: Record<string, unknown>;
  sessionId?: string;
}

/** One DevTools protocol connection over the two pipes: commands by id, events to listeners. */
export class CdpPipe {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Set<(e: CdpEvent) => void>();
  private buffered = "";
  private closed?: Error;

  constructor(
    private readonly toBrowser: Writable,
    fromBrowser: Readable,
  ) {
    fromBrowser.setEncoding("utf8");
    fromBrowser.on("data", (chunk: string) => this.receive(chunk));
    fromBrowser.on("close", () => this.fail(new Error("the browser closed its DevTools pipe")));
    toBrowser.on("error", (e: Error) => this.fail(e));
  }

  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    if (this.closed) return Promise.reject(this.closed);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method });
      this.toBrowser.write(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }) + "\0");
    });
  }

  on(listener: (e: CdpEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private receive(chunk: string): void {
    this.buffered += chunk;
    let end: number;
    while ((end = this.buffered.indexOf("\0")) !== -1) {
      const msg = JSON.parse(this.buffered.slice(0, end)) as { id?: number; result?: Record<string, unknown>; error?: { message: string }; method?: string; params?: Record<string, unknown>; sessionId?: string };
      this.buffered = this.buffered.slice(end + 1);
      if (msg.id !== undefined) {
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        if (msg.error) p?.reject(new Error(`${p.method}: ${msg.error.message}`));
        else p?.resolve(msg.result ?? {});
      } else if (msg.method) {
        for (const l of this.listeners) l({ method: msg.method, params: msg.params ?? {}, sessionId: msg.sessionId });
      }
    }
  }

  private fail(e: Error): void {
    if (this.closed) return;
    this.closed = e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }
}

/** A page (tab) in flat-session mode: commands go to its session. */
export interface CdpPage {
  sessionId: string;
  send(method: string, params?: Record<string, unknown>): Promise<Record<string, unknown>>;
  /** Evaluate an expression in the page; its JSON-able value (throws on a page exception). */
  evaluate<T>(expression: string): Promise<T>;
  /** This page's events of one method; returns the unsubscribe. */
  on(method: string, fn: (params: Record<string, unknown>) => void): () => void;
  /** Console errors, uncaught exceptions and browser log errors (CSP violations among them), as text. */
  errors: string[];
}

export interface Browser {
  process: TrackedProcess;
  cdp: CdpPipe;
  newPage(): Promise<CdpPage>;
  close(): Promise<void>;
}

export interface BrowserOptions {
  /** PEM files of CAs to trust (put in the browser's own NSS database). */
  trustCaFiles?: string[];
  /** host -> address, e.g. { "mirror.test": "127.0.0.1" }. */
  resolve?: Record<string, string>;
  windowSize?: { width: number; height: number };
}

/** An NSS database (HOME/.pki/nssdb) trusting `caFiles` for TLS servers. */
function nssHome(caFiles: string[]): string {
  const home = tempDir("chromium-home");
  const db = path.join(home, ".pki", "nssdb");
  fs.mkdirSync(db, { recursive: true });
  execFileSync(CERTUTIL_BIN, ["-d", `sql:${db}`, "-N", "--empty-password"]);
  caFiles.forEach((f, i) => execFileSync(CERTUTIL_BIN, ["-d", `sql:${db}`, "-A", "-n", `bench-ca-${i}`, "-t", "C,,", "-i", f]));
  return home;
}

export async function launchChromium(opts: BrowserOptions = {}): Promise<Browser> {
  const missing = missingBrowserPrerequisites();
  if (missing.length) throw new Error(`cannot start a browser: ${missing.join("; ")}`);
  const home = nssHome(opts.trustCaFiles ?? []);
  const size = opts.windowSize ?? { width: 1000, height: 1100 };
  const rules = Object.entries(opts.resolve ?? {}).map(([host, addr]) => `MAP ${host} ${addr}`);
  const args = [
    "--headless",
    "--remote-debugging-pipe",
    `--user-data-dir=${path.join(home, "profile")}`,
    `--window-size=${size.width},${size.height}`,
    // Root on the bench: Chromium refuses to run its sandbox as root.
    ...(process.geteuid?.() === 0 ? ["--no-sandbox"] : []),
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
    ...(rules.length ? [`--host-resolver-rules=${rules.join(", ")}`] : []),
    "about:blank",
  ];
  const proc = spawnTracked(CHROMIUM_BIN, args, { env: { ...process.env, HOME: home }, stdio: ["ignore", "pipe", "pipe", "pipe", "pipe"] });
  const stdio = proc.child.stdio as unknown as [null, Readable, Readable, Writable, Readable];
  const cdp = new CdpPipe(stdio[3], stdio[4]);
  await cdp.send("Browser.getVersion");

  const newPage = async (): Promise<CdpPage> => {
    const { targetId } = (await cdp.send("Target.createTarget", { url: "about:blank" })) as { targetId: string };
    const { sessionId } = (await cdp.send("Target.attachToTarget", { targetId, flatten: true })) as { sessionId: string };
    const send = (method: string, params: Record<string, unknown> = {}) => cdp.send(method, params, sessionId);
    const errors: string[] = [];
    cdp.on((e) => {
      if (e.sessionId !== sessionId) return;
      if (e.method === "Runtime.consoleAPICalled" && (e.params.type === "error" || e.params.type === "assert")) {
        errors.push(`console.${String(e.params.type)}: ${JSON.stringify(e.params.args)}`);
      } else if (e.method === "Runtime.exceptionThrown") {
        errors.push(`exception: ${JSON.stringify(e.params.exceptionDetails)}`);
      } else if (e.method === "Log.entryAdded") {
        const entry = e.params.entry as { level: string; source: string; text: string; url?: string };
        if (entry.level === "error") errors.push(`log (${entry.source}): ${entry.text}${entry.url ? ` [${entry.url}]` : ""}`);
      }
    });
    await Promise.all([send("Page.enable"), send("Runtime.enable"), send("Log.enable")]);
    const evaluate = async <T>(expression: string): Promise<T> => {
      const r = (await send("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true })) as { result: { value?: T }; exceptionDetails?: unknown };
      if (r.exceptionDetails) throw new Error(`evaluating ${expression}: ${JSON.stringify(r.exceptionDetails)}`);
      return r.result.value as T;
    };
    const on = (method: string, fn: (params: Record<string, unknown>) => void) =>
      cdp.on((e) => {
        if (e.sessionId === sessionId && e.method === method) fn(e.params);
      });
    return { sessionId, send, evaluate, on, errors };
  };

  return {
    process: proc,
    cdp,
    newPage,
    close: async () => {
      await cdp.send("Browser.close").catch(() => undefined);
      await proc.stop();
    },
  };
}

/** Navigate and wait for the load event (the page's deferred script has run by then). */
export async function navigate(page: CdpPage, url: string): Promise<void> {
  const loaded = new Promise<void>((resolve) => {
    const off = page.on("Page.loadEventFired", () => {
      off();
      resolve();
    });
  });
  const r = (await page.send("Page.navigate", { url })) as { errorText?: string };
  if (r.errorText) throw new Error(`navigating to ${url}: ${r.errorText}`);
  await loaded;
}

/** A PNG screenshot of the page's viewport. */
export async function screenshot(page: CdpPage): Promise<Buffer> {
  const { data } = (await page.send("Page.captureScreenshot", { format: "png" })) as { data: string };
  return Buffer.from(data, "base64");
}
