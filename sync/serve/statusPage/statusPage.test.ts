/**
 * The status page: its wording (statusView), its HTML (renderStatusPage), the negotiation on
 * /status, the shipped script (compiles, and the view it carries is self-contained), and the
 * routes over a real unix socket. The page in a real browser behind nginx: test/statusPage/.
 */
import * as path from "node:path";
import * as vm from "node:vm";
import { onCleanup, tempDir } from "../../../testbed/resources";
import { request } from "../../../testbed/httpClient";
import { StatusBoard } from "../../state/statusBoard";
import { listen } from "../listen";
import { createServer } from "../server";
import { PublicStatusDocument, statusDocument } from "../statusDocument";
import { STATUS_PAGE_CSP, STATUS_PAGE_CSS_PATH, STATUS_PAGE_SCRIPT_PATH, statusPageScript } from "./assets";
import { prefersHtml, qualityOf } from "./negotiate";
import { cloneCommand, escapeHtml, renderStatusPage } from "./render";
import { statusView } from "./view";

const NOW = Date.parse("2026-12-03T04:00:00Z");
const ago = (ms: number) => new Date(NOW - ms).toISOString();

function doc(over: Partial<PublicStatusDocument> = {}): PublicStatusDocument {
  return {
    state: "SYNCHRONIZED",
    syncedRepos: 40,
    totalRepos: 40,
    displayName: "Sydney mirror",
    baseUrl: "https://syd.example.com/",
    startedAt: ago(3_600_000),
    initialSync: { done: 40, total: 40, complete: true, completedAt: ago(3_000_000) },
    primary: { reachable: true, checkedAt: ago(10_000) },
    lastReconcile: { at: ago(120_000), result: "ok", durationMs: 1500 },
    repos: { new: 0, syncing: 0, synced: 40, failing: 0, delayed: 0 },
    delayedSync: { count: 0, toleranceMs: 600_000 },
    syncLagMaxMs: 0,
    skippedRepos: 0,
    disk: "ok",
    ready: true,
    draining: false,
    ...over,
  };
}

describe("statusView: what the page says", () => {
  test("synchronized: no progress, no reasons, times in words, the clone layout from setup.baseUrl", () => {
    const v = statusView(doc(), NOW);
    expect(v).toMatchObject({
      state: "SYNCHRONIZED",
      stateLabel: "Synchronized",
      progress: null,
      reasons: [],
      synced: "40 of 40 repositories",
      primary: "Reachable (checked 10 seconds ago)",
      lag: "None: up to date",
      lastReconcile: "Succeeded 2 minutes ago, took 2 seconds",
      failing: "0",
      delayed: "0",
      disk: "OK",
      cloneExample: "https://syd.example.com/scm/PROJECT/repo.git",
      title: "Sydney mirror: Git mirror status",
    });
  });

  test("initial sync: a progress bar of synced/total with the count and percentage in words", () => {
    const v = statusView(doc({ state: "INITIAL_SYNC", ready: false, initialSync: { done: 12, total: 40, complete: false, completedAt: null } }), NOW);
    expect(v.stateLabel).toBe("Initial sync");
    expect(v.progress).toEqual({ value: 12, max: 40, text: "12 of 40 repositories copied (30%)" });
    expect(v.ready).toMatch(/^No/);
    // An empty catalog: a bar that cannot divide by zero.
    expect(statusView(doc({ state: "INITIAL_SYNC", initialSync: { done: 0, total: 0, complete: false, completedAt: null } }), NOW).progress).toEqual({ value: 0, max: 1, text: "0 of 0 repositories copied" });
  });

  test("degraded: every public reason in words, counts only", () => {
    const v = statusView(
      doc({
        state: "DEGRADED",
        primary: { reachable: false, checkedAt: ago(5_000) },
        repos: { new: 0, syncing: 0, synced: 37, failing: 3, delayed: 1 },
        delayedSync: { count: 1, toleranceMs: 600_000 },
        disk: "low",
        lastReconcile: { at: ago(7_200_000), result: "error", durationMs: 200 },
        syncLagMaxMs: 754_000,
      }),
      NOW,
    );
    expect(v.reasons).toEqual([
      "The primary cannot be reached: new changes are not coming in.",
      "3 repositories are failing to sync.",
      "1 repository is behind the primary for longer than the tolerance.",
      "Disk space is low: syncs that need more space are paused.",
      "The last comparison with the primary (reconcile) failed.",
    ]);
    expect(v).toMatchObject({ primary: "Unreachable (checked 5 seconds ago)", lag: "13 minutes behind the primary", lastReconcile: "Failed 2 hours ago, took under a second", failing: "3", delayed: "1" });
  });

  test("before the first probe and reconcile; no setup.baseUrl", () => {
    const v = statusView(doc({ state: "STARTING", primary: { reachable: null, checkedAt: null }, lastReconcile: null, disk: null, baseUrl: null, displayName: null }), NOW);
    expect(v).toMatchObject({ stateLabel: "Starting", primary: "Not checked yet", lastReconcile: "None yet", disk: "Not measured yet", cloneExample: null, title: "Git mirror status" });
    expect(cloneCommand(v)).toBe("git clone https://<this mirror>/scm/PROJECT/repo.git");
    expect(cloneCommand(v, "https://m.test:8443")).toBe("git clone https://m.test:8443/scm/PROJECT/repo.git");
  });
});

describe("renderStatusPage", () => {
  test("headings, a labelled progress bar, the state in words on the badge, the copy-able clone command", () => {
    const html = renderStatusPage(doc({ state: "INITIAL_SYNC", initialSync: { done: 3, total: 4, complete: false, completedAt: null } }), NOW);
    expect(html).toMatch(/^<!doctype html>\n<html lang="en">/);
    expect(html).toContain("<h1><span data-field=\"title\">Sydney mirror: Git mirror status</span></h1>");
    expect(html.match(/<h2 id="[a-z-]+">/g)).toHaveLength(3);
    expect(html).toContain('<label for="initial-sync">Initial sync</label>\n<progress id="initial-sync" max="4" value="3">3 of 4 repositories copied (75%)</progress>');
    expect(html).toContain('<strong data-field="stateLabel" class="badge" data-state="INITIAL_SYNC">Initial sync</strong>');
    expect(html).toContain('<label for="clone-command">');
    expect(html).toContain('value="git clone https://syd.example.com/scm/PROJECT/repo.git"');
    // Nothing inline for the CSP to refuse: external script and stylesheet, no style=, no on*=.
    expect(html).toContain(`<script src="${STATUS_PAGE_SCRIPT_PATH}" defer></script>`);
    expect(html).toContain(`<link rel="stylesheet" href="${STATUS_PAGE_CSS_PATH}">`);
    expect(html).not.toMatch(/<script>|<style|\sstyle=|\son[a-z]+=|https?:\/\/(?!syd\.example\.com)/);
  });

  test("synchronized: the progress and the reasons are hidden", () => {
    const html = renderStatusPage(doc(), NOW);
    expect(html).toContain('<div data-show="progress" hidden>');
    expect(html).toContain('<div data-show="reasons" hidden>');
  });

  test("configured names are escaped", () => {
    expect(escapeHtml(`<a href="x">'&`)).toBe("&#60;a href=&#34;x&#34;&#62;&#39;&#38;");
    const html = renderStatusPage(doc({ displayName: "<script>alert(1)</script>", baseUrl: 'https://x/"><img src=x>' }), NOW);
    expect(html).not.toContain("<script>alert");
    expect(html).not.toContain('"><img');
  });
});

describe("negotiation on /status", () => {
  test.each([
    [undefined, false],
    ["*/*", false], // curl: a tie keeps JSON
    ["application/json", false],
    ["text/html", true],
    ["text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8", true], // Chromium's navigation
    ["application/json, text/html;q=0.9", false],
    ["text/html;q=0.5, application/json;q=0.4", true],
    ["text/*", true],
    ["text/html;q=0", false],
  ] as const)("Accept %s -> HTML %s", (accept, html) => {
    expect(prefersHtml(accept)).toBe(html);
  });

  test("the most specific range decides the q", () => {
    expect(qualityOf("text/*;q=0.2, text/html;q=0.7, */*;q=0.1", "text/html")).toBe(0.7);
    expect(qualityOf("text/*;q=0.2, */*;q=0.1", "application/json")).toBe(0.1);
    expect(qualityOf("text/plain", "application/json")).toBe(0);
  });
});

describe("the shipped script", () => {
  test("compiles, and the view it carries gives the same answer run with no module around it", () => {
    const script = statusPageScript(1000);
    expect(() => new vm.Script(script)).not.toThrow();
    // statusView's own source, evaluated in an empty context: any reference to a module-level
    // helper or import would throw here.
    const isolated = vm.runInNewContext(`(${statusView.toString()})`) as typeof statusView;
    const d = doc({ state: "DEGRADED", repos: { new: 0, syncing: 0, synced: 39, failing: 1, delayed: 0 } });
    expect(JSON.parse(JSON.stringify(isolated(d, NOW)))).toEqual(statusView(d, NOW));
  });
});

describe("routes over a real socket", () => {
  let at: Awaited<ReturnType<typeof listen>>;
  let board: StatusBoard;

  beforeAll(async () => {
    board = new StatusBoard({ info: { displayName: "Sydney mirror", baseUrl: "https://syd.example.com", upstreamUrl: "ssh://git@bitbucket.internal:7999" }, defaultMetrics: false });
    const server = createServer({ board });
    at = await listen(server, `unix:${path.join(tempDir("page"), "http.sock")}`);
    onCleanup(() => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }));
  });

  const get = (p: string, accept?: string) => request(at, { path: p, headers: accept ? { Accept: accept } : {} });

  test("GET / is the page with its CSP; /status stays JSON for health checks, HTML for browsers", async () => {
    board.setCatalog(["PROJ/one", "PROJ/two"]);
    board.primaryReachable(true);
    board.syncSucceeded("PROJ/one", { durationMs: 10, changed: true });
    const page = await get("/");
    expect(page.status).toBe(200);
    expect(page.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(page.headers["content-security-policy"]).toBe(STATUS_PAGE_CSP);
    expect(page.headers["content-security-policy"]).toMatch(/default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:/);
    expect(page.body).toContain('<progress id="initial-sync" max="2" value="1">');

    for (const accept of [undefined, "*/*", "application/json"]) {
      const r = await get("/status", accept);
      expect([accept, r.headers["content-type"]]).toEqual([accept, "application/json; charset=utf-8"]);
      expect(r.headers.vary).toBe("Accept");
    }
    const html = await get("/status", "text/html,application/xhtml+xml,*/*;q=0.8");
    expect(html.status).toBe(200);
    expect(html.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(html.body).toContain('data-state="INITIAL_SYNC"');
  });

  test("the page shows what the public JSON shows and no more: no repository names, errors or the primary's address", async () => {
    board.syncFailed("PROJ/two", new Error("ssh: connect to host bitbucket.internal port 7999: Connection refused"));
    board.primaryReachable(false, new Error("ssh: connect to host bitbucket.internal port 7999: timed out"));
    const r = await get("/");
    expect(r.body).toContain("1 repository is failing to sync.");
    expect(r.body).not.toMatch(/PROJ\/|bitbucket\.internal|7999|refused|timed out/);
    // Rendered from the same document curl gets.
    const json = statusDocument(board.snapshot());
    expect(r.body).toContain(`${json.syncedRepos} of ${json.totalRepos} repositories`);
  });

  test("the script and the stylesheet, with their types and the same CSP; HEAD works, POST does not", async () => {
    const js = await get(STATUS_PAGE_SCRIPT_PATH);
    expect([js.status, js.headers["content-type"]]).toEqual([200, "text/javascript; charset=utf-8"]);
    expect(js.body).toBe(statusPageScript());
    expect(js.headers["x-content-type-options"]).toBe("nosniff");
    const css = await get(STATUS_PAGE_CSS_PATH);
    expect([css.status, css.headers["content-type"]]).toEqual([200, "text/css; charset=utf-8"]);
    expect((await request(at, { method: "HEAD", path: "/" })).status).toBe(200);
    expect((await request(at, { method: "POST", path: "/", body: "x" })).status).toBe(405);
  });
});
