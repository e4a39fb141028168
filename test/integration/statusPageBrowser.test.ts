/**
 * The status page in a real browser: Debian's headless Chromium loads https://mirror.test:PORT/
 * through nginx + TLS (the bench CA trusted in the browser's own NSS database, the name
 * verified) from the built daemon syncing from a bench primary over SSH, during the initial
 * sync and after it, without reloading the page in between.
 *
 * The initial sync is held open deterministically: the primary's git runs pack-objects through
 * uploadpack.packObjectsHook (honoured from its global config), and the hook waits while a gate
 * file exists for one repository, so the other two finish and the page must show 2 of 3.
 *
 * Screenshots go to a temp dir, or to docs/screenshots/ with SMART_MIRROR_SCREENSHOTS=docs
 * (how the README's pictures are made).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { CdpPage, launchChromium, navigate, screenshot } from "../../testbed/chromium";
import { ensureBundle } from "../../testbed/daemonProcess";
import { MIRROR_NAME, MirrorBehindNginx, startMirrorBehindNginx } from "../../testbed/mirrorBehindNginx";
import { pngStats } from "../../testbed/png";
import { Primary, startPrimary } from "../../testbed/primary";
import { pushSampleHistory, workingClone } from "../../testbed/repos";
import { onCleanup, tempDir, waitFor } from "../../testbed/resources";
import { STATUS_PAGE_CSP } from "../../sync/serve/statusPage/assets";

jest.setTimeout(600_000);

const REPOS = [
  { project: "PROJ", slug: "one" },
  { project: "PROJ", slug: "two" },
  { project: "PROJ", slug: "held" },
];
const VIEWPORT = { width: 1000, height: 1100 };

/** A gate on the primary: pack-objects for PROJ/held waits while the gate file exists. */
function gateHeldRepository(primary: Primary): { open(): void } {
  // Outside the bench root (0755 all the way): the primary's git runs as its own account.
  const dir = fs.mkdtempSync("/tmp/sm-gate-");
  fs.chmodSync(dir, 0o755);
  onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  const gate = path.join(dir, "closed");
  const hook = path.join(dir, "pack-objects-hook");
  fs.writeFileSync(gate, "");
  // upload-pack runs the hook as "HOOK git pack-objects ..." in the repository's directory.
  fs.writeFileSync(hook, `#!/bin/sh\ncase "$PWD" in */PROJ/held.git) while [ -e ${gate} ]; do sleep 0.1; done ;; esac\nexec "$@"\n`, { mode: 0o755 });
  fs.appendFileSync(path.join(primary.dir, "gitconfig"), `[uploadpack]\n\tpackObjectsHook = ${hook}\n`);
  return { open: () => fs.rmSync(gate, { force: true }) };
}

interface PageState {
  stateLabel: string;
  dataState: string;
  progressHidden: boolean;
  progressValue: number;
  progressMax: number;
  progressText: string;
  reasonsHidden: boolean;
  synced: string;
  primary: string;
  cloneCommand: string;
  marker: unknown;
  violations: string[];
}

const READ_PAGE = `(() => {
  const text = (f) => document.querySelector('[data-field="' + f + '"]').textContent;
  const bar = document.querySelector("progress");
  return {
    stateLabel: text("stateLabel"),
    dataState: document.querySelector('[data-field="stateLabel"]').getAttribute("data-state"),
    progressHidden: document.querySelector('[data-show="progress"]').hidden,
    progressValue: bar.value,
    progressMax: bar.max,
    progressText: text("progressText"),
    reasonsHidden: document.querySelector('[data-show="reasons"]').hidden,
    synced: text("synced"),
    primary: text("primary"),
    cloneCommand: document.querySelector("#clone-command").value,
    marker: window.__loadedOnce,
    violations: window.__cspViolations,
  };
})()`;

const UPDATED = "document.querySelector('[data-field=\"updated\"]').textContent";

function screenshotDir(): string {
  if (process.env.SMART_MIRROR_SCREENSHOTS === "docs") {
    const dir = path.resolve(__dirname, "../../docs/screenshots");
    fs.mkdirSync(dir, { recursive: true });
    return dir;
  }
  return tempDir("screenshots");
}

async function saveScreenshot(page: CdpPage, name: string): Promise<string> {
  // The whole page, however long, at the viewport's width.
  const { cssContentSize } = (await page.send("Page.getLayoutMetrics")) as { cssContentSize: { height: number } };
  await page.send("Emulation.setDeviceMetricsOverride", { width: VIEWPORT.width, height: Math.ceil(cssContentSize.height), deviceScaleFactor: 1, mobile: false });
  const png = await screenshot(page);
  await page.send("Emulation.clearDeviceMetricsOverride");
  const file = path.join(screenshotDir(), name);
  fs.writeFileSync(file, png);
  const stats = pngStats(png);
  // Not blank: the page's width, text and boxes (many colours, a wide spread of luminance).
  expect(stats.width).toBe(VIEWPORT.width);
  expect(stats.height).toBeGreaterThan(400);
  expect(stats.distinctColours).toBeGreaterThan(20);
  expect(stats.luminanceStdDev).toBeGreaterThan(20);
  expect(stats.nonBackgroundShare).toBeGreaterThan(0.02);
  return file;
}

describe("the status page in headless Chromium, through nginx + TLS", () => {
  let primary: Primary;
  let m: MirrorBehindNginx;
  let gate: { open(): void };
  let page: CdpPage;

  beforeAll(async () => {
    ensureBundle();
    primary = await startPrimary();
    for (const r of REPOS) {
      await primary.createRepo(r.project, r.slug);
      await pushSampleHistory(await workingClone(primary.remote(r.project, r.slug)), 1);
    }
    gate = gateHeldRepository(primary);
    m = await startMirrorBehindNginx({ primary, repos: REPOS });
    const browser = await launchChromium({ trustCaFiles: [m.ca.certPath], resolve: { [MIRROR_NAME]: "127.0.0.1" }, windowSize: VIEWPORT });
    onCleanup(() => browser.close());
    page = await browser.newPage();
    // CSP violations as the page itself sees them (the browser's log reports them too).
    await page.send("Page.addScriptToEvaluateOnNewDocument", {
      source: "window.__cspViolations = []; document.addEventListener('securitypolicyviolation', (e) => window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));",
    });
  });

  test("during the initial sync: the state and the progress of synced/total", async () => {
    // Two of three copied, the third held at the primary.
    await waitFor(
      "2 of 3 repositories synced, the third held",
      async () => {
        const doc = JSON.parse((await m.request("GET", "/status")).body.toString("utf8")) as { state: string; initialSync: { done: number; total: number } };
        return doc.state === "INITIAL_SYNC" && doc.initialSync.done === 2 && doc.initialSync.total === 3;
      },
      120_000,
      100,
    );
    const url = `https://${MIRROR_NAME}:${m.port}/`;
    const response = new Promise<Record<string, unknown>>((resolve) => {
      const off = page.on("Network.responseReceived", (p) => {
        const r = p.response as { url: string };
        if (r.url === url) {
          off();
          resolve(p.response as Record<string, unknown>);
        }
      });
    });
    await page.send("Network.enable");
    await navigate(page, url);
    const res = (await response) as { status: number; headers: Record<string, string>; securityState: string };
    expect(res.status).toBe(200);
    // Verified TLS (the CA is trusted, not the errors ignored), and the page's own CSP.
    expect(res.securityState).toBe("secure");
    expect(res.headers["content-security-policy"] ?? res.headers["Content-Security-Policy"]).toBe(STATUS_PAGE_CSP);
    await page.evaluate("window.__loadedOnce = 'first load'");

    const s = await page.evaluate<PageState>(READ_PAGE);
    expect(s).toMatchObject({
      stateLabel: "Initial sync",
      dataState: "INITIAL_SYNC",
      progressHidden: false,
      progressValue: 2,
      progressMax: 3,
      progressText: "2 of 3 repositories copied (66%)",
      synced: "2 of 3 repositories",
      cloneCommand: "git clone https://mirror.test/scm/PROJECT/repo.git",
      violations: [],
    });
    // The script ran (its first poll replaced the server's timestamp) under the CSP.
    const rendered = await page.evaluate<string>(UPDATED);
    await waitFor("the script's next poll", async () => (await page.evaluate<string>(UPDATED)) !== rendered, 30_000, 100);
    await saveScreenshot(page, "status-page-initial-sync.png");
    expect(page.errors).toEqual([]);
  });

  test("after it, live: SYNCHRONIZED without a reload, the progress gone", async () => {
    gate.open();
    await m.waitSynchronized();
    // The page's own polling brings the change: same document (the marker survives), new state.
    const s = await waitFor(
      "the page to show Synchronized",
      async () => {
        const st = await page.evaluate<PageState>(READ_PAGE);
        return st.dataState === "SYNCHRONIZED" ? st : undefined;
      },
      60_000,
      200,
    );
    expect(s).toMatchObject({ stateLabel: "Synchronized", progressHidden: true, reasonsHidden: true, synced: "3 of 3 repositories", marker: "first load", violations: [] });
    // The syncs talked to the primary (the first reconcile of a fresh mirror scans nothing).
    expect(s.primary).toMatch(/^Reachable \(checked /);
    await saveScreenshot(page, "status-page.png");
    expect(page.errors).toEqual([]);
  });

  test("/status answers the browser with the page (it asks for HTML); the CSP is enforced, and a violation would be seen", async () => {
    await navigate(page, `https://${MIRROR_NAME}:${m.port}/status`);
    expect(await page.evaluate<string>("document.querySelector('[data-field=\"stateLabel\"]').textContent")).toBe("Synchronized");
    expect(page.errors).toEqual([]);
    // The control: an inline script is refused and both detectors report it.
    await page.evaluate("(() => { const s = document.createElement('script'); s.textContent = 'window.__inlineRan = true'; document.body.append(s); })()");
    expect(await page.evaluate<unknown>("window.__inlineRan === undefined")).toBe(true);
    await waitFor("the violation to be reported", () => page.errors.length > 0, 10_000, 50);
    expect(await page.evaluate<string[]>("window.__cspViolations")).toEqual([expect.stringMatching(/^script-src/)]);
    expect(page.errors.join("\n")).toMatch(/Content Security Policy/);
  });
});
