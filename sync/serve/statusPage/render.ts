/**
 * The status page's HTML, rendered from the public /status document alone (pure: the document
 * and the clock in, a string out). Every element the live script updates carries
 * `data-field="NAME"`, NAME being a StatusView field, so the script needs no knowledge of the
 * layout. No inline script or style (the page's Content-Security-Policy forbids both): the
 * stylesheet and the script are files of their own under /assets/.
 */
import type { PublicStatusDocument } from "../statusDocument";
import { statusView, StatusView } from "./view";
import { STATUS_PAGE_CSS_PATH, STATUS_PAGE_SCRIPT_PATH } from "./assets";

/** Text and attribute values: the five characters HTML gives meaning to. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** What stands for the mirror's origin when setup.baseUrl is not set (the script puts location.origin there). */
export const ORIGIN_PLACEHOLDER = "https://<this mirror>";

export function cloneCommand(v: Pick<StatusView, "cloneExample">, origin: string = ORIGIN_PLACEHOLDER): string {
  return `git clone ${v.cloneExample ?? `${origin}/scm/PROJECT/repo.git`}`;
}

const field = (name: keyof StatusView | "updated" | "cloneCommand" | "progressText", text: string, tag = "span", attrs = ""): string =>
  `<${tag} data-field="${name}"${attrs}>${escapeHtml(text)}</${tag}>`;

function detail(label: string, name: keyof StatusView, v: StatusView): string {
  return `<dt>${escapeHtml(label)}</dt>${field(name, String(v[name]), "dd")}`;
}

export function renderStatusPage(doc: PublicStatusDocument, now: number): string {
  const v = statusView(doc, now);
  const p = v.progress;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(v.title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${STATUS_PAGE_CSS_PATH}">
<script src="${STATUS_PAGE_SCRIPT_PATH}" defer></script>
</head>
<body>
<main>
<h1>${field("title", v.title)}</h1>

<section aria-labelledby="state-heading">
<h2 id="state-heading">State</h2>
<p class="state">${field("stateLabel", v.stateLabel, "strong", ` class="badge" data-state="${escapeHtml(v.state)}"`)}</p>
${field("summary", v.summary, "p")}
<div data-show="progress"${p ? "" : " hidden"}>
<label for="initial-sync">Initial sync</label>
<progress id="initial-sync" max="${p ? p.max : 1}" value="${p ? p.value : 0}">${escapeHtml(p ? p.text : "")}</progress>
${field("progressText", p ? p.text : "", "p")}
</div>
<div data-show="reasons"${v.reasons.length ? "" : " hidden"}>
<h3>Why</h3>
<ul data-field="reasons">${v.reasons.map((r) => `<li>${escapeHtml(r)}</li>`).join("")}</ul>
</div>
</section>

<section aria-labelledby="details-heading">
<h2 id="details-heading">Details</h2>
<dl>
${detail("Repositories synced", "synced", v)}
${detail("Ready for clients", "ready", v)}
${detail("Primary", "primary", v)}
${detail("Sync lag (oldest change on the primary not here yet)", "lag", v)}
${detail("Last reconcile (every repository compared with the primary)", "lastReconcile", v)}
${detail("Repositories failing to sync", "failing", v)}
${detail("Repositories delayed beyond the tolerance", "delayed", v)}
${detail("Repositories skipped (names the mirror cannot carry)", "skipped", v)}
${detail("Disk space", "disk", v)}
</dl>
</section>

<section aria-labelledby="clone-heading">
<h2 id="clone-heading">Cloning from this mirror</h2>
<p>Repositories keep the primary's layout: <code>/scm/PROJECT/repo.git</code>. The mirror is read-only: push to the primary.</p>
<label for="clone-command">Clone command (example)</label>
<div class="copy">
<input id="clone-command" data-field="cloneCommand" type="text" readonly spellcheck="false" value="${escapeHtml(cloneCommand(v))}">
<button type="button" id="copy-clone-command">Copy</button>
</div>
<p id="copy-result" data-field="copyResult" role="status" aria-live="polite"></p>
</section>
</main>
<footer>
<p>Updated ${field("updated", new Date(now).toISOString())}. <span data-field="connection" role="status" aria-live="polite"></span></p>
<p>For scripts and health checks: <code>curl ${escapeHtml(v.cloneExample ? v.cloneExample.replace(/\/scm\/PROJECT\/repo\.git$/, "") : ORIGIN_PLACEHOLDER)}/status</code> answers JSON.${v.version ? ` Version ${field("version", v.version)}.` : ""}</p>
</footer>
</body>
</html>
`;
}
