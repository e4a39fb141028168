/**
 * The status page's two static files and its response headers. They are built into the
 * daemon (the bundle is one file; nothing to install next to it): the stylesheet is text here,
 * the script is the source of two self-contained functions (client.ts, view.ts).
 */
import { statusPageClient } from "./client";
import { statusView } from "./view";

export const STATUS_PAGE_SCRIPT_PATH = "/assets/status-page.js";
export const STATUS_PAGE_CSS_PATH = "/assets/status-page.css";

/** How often the page polls /status. */
export const STATUS_PAGE_POLL_MS = 5000;

/**
 * Same origin only, nothing inline: the page loads its own stylesheet and script and talks to
 * /status, nothing else (img data: for the empty favicon, so the browser asks for no
 * /favicon.ico). frame-ancestors: nobody frames it; form-action/base-uri: none used.
 */
export const STATUS_PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Headers for the page and its assets: the CSP, no sniffing, no referrer to elsewhere. */
export const STATUS_PAGE_HEADERS = {
  "Content-Security-Policy": STATUS_PAGE_CSP,
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
} as const;

/** The script browsers run: the client called with statusView, both as their own source. */
export function statusPageScript(pollMs: number = STATUS_PAGE_POLL_MS): string {
  return `"use strict";\n(${statusPageClient.toString()})(${statusView.toString()}, ${JSON.stringify(pollMs)});\n`;
}

// Contrast: every text/background pair below is at least 4.5:1 (WCAG AA); the state badge
// carries its state in words, the colour only repeats it.
export const STATUS_PAGE_CSS = `:root { color-scheme: light; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; line-height: 1.5; color: #1a1a1a; background: #ffffff; }
body { margin: 0; }
main, footer { max-width: 48rem; margin: 0 auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin: 1.5rem 0 1rem; }
h2 { font-size: 1.2rem; margin: 1.5rem 0 .5rem; border-bottom: 1px solid #c8c8c8; }
h3 { font-size: 1rem; margin: .75rem 0 .25rem; }
.badge { display: inline-block; padding: .2rem .7rem; border-radius: .3rem; border: 2px solid currentColor; font-size: 1.1rem; }
.badge[data-state="SYNCHRONIZED"] { color: #0b5d1e; background: #e6f4ea; }
.badge[data-state="INITIAL_SYNC"], .badge[data-state="STARTING"] { color: #0b3f8c; background: #e8f0fe; }
.badge[data-state="DEGRADED"] { color: #7a3e00; background: #fff4e0; }
.badge[data-state="ERROR"] { color: #a50e0e; background: #fce8e6; }
progress { width: 100%; height: 1.25rem; }
label { display: block; font-weight: 600; margin-top: .5rem; }
dl { display: grid; grid-template-columns: minmax(12rem, 1fr) 2fr; gap: .35rem 1rem; }
dt { font-weight: 600; }
dd { margin: 0; }
code, input { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
code { background: #f1f1f1; padding: 0 .2rem; }
.copy { display: flex; gap: .5rem; }
.copy input { flex: 1; padding: .4rem; border: 1px solid #5f5f5f; border-radius: .25rem; color: #1a1a1a; background: #ffffff; }
button { padding: .4rem 1rem; border: 1px solid #0b3f8c; border-radius: .25rem; color: #ffffff; background: #0b3f8c; cursor: pointer; }
:focus-visible { outline: 3px solid #0b3f8c; outline-offset: 2px; }
footer { margin-top: 2rem; color: #4a4a4a; font-size: .9rem; }
[hidden] { display: none !important; }
`;
