/**
 * The status page's script, run in the browser: polls GET /status (JSON) and updates the page
 * in place, no reload. What to show is decided by statusView (view.ts), whose source is sent
 * along with this one (assets.ts), so this function only finds `data-field` elements and sets
 * their text. Like statusView it is self-contained: its source is what browsers get.
 *
 * The DOM types are declared here, module-scoped and for what this file touches, instead of
 * adding lib "dom" to the whole program (it would make `document` look valid in daemon code).
 */
import type { PublicStatusDocument } from "../statusDocument";
import type { StatusView } from "./view";

interface El {
  textContent: string | null;
  hidden: boolean;
  value: string | number;
  max: number;
  getAttribute(name: string): string | null;
  setAttribute(name: string, value: string): void;
  replaceChildren(...nodes: El[]): void;
  addEventListener(type: string, fn: () => void): void;
  select(): void;
}
declare const document: {
  querySelectorAll(selector: string): Iterable<El>;
  querySelector(selector: string): El | null;
  createElement(tag: string): El;
};
declare const location: { origin: string };
declare const navigator: { clipboard?: { writeText(text: string): Promise<void> } };

export function statusPageClient(view: (doc: PublicStatusDocument, now: number) => StatusView, pollMs: number): void {
  const all = (sel: string): El[] => Array.from(document.querySelectorAll(sel));
  const setText = (name: string, text: string): void => {
    for (const el of all(`[data-field="${name}"]`)) if (el.textContent !== text) el.textContent = text;
  };
  const show = (name: string, on: boolean): void => {
    for (const el of all(`[data-show="${name}"]`)) el.hidden = !on;
  };
  const cloneCommand = (v: StatusView): string => `git clone ${v.cloneExample ?? `${location.origin}/scm/PROJECT/repo.git`}`;

  const apply = (v: StatusView, now: number): void => {
    for (const name of ["title", "stateLabel", "summary", "synced", "ready", "primary", "lag", "lastReconcile", "failing", "delayed", "skipped", "disk", "version"] as const) {
      setText(name, v[name]);
    }
    for (const el of all('[data-field="stateLabel"]')) el.setAttribute("data-state", v.state);
    const p = v.progress;
    show("progress", p !== null);
    const bar = document.querySelector("progress");
    if (bar && p) {
      bar.max = p.max;
      bar.value = p.value;
      bar.textContent = p.text;
    }
    setText("progressText", p ? p.text : "");
    show("reasons", v.reasons.length > 0);
    for (const list of all('[data-field="reasons"]')) {
      list.replaceChildren(
        ...v.reasons.map((r) => {
          const li = document.createElement("li");
          li.textContent = r;
          return li;
        }),
      );
    }
    for (const input of all('input[data-field="cloneCommand"]')) input.value = cloneCommand(v);
    setText("updated", new Date(now).toISOString());
  };

  const poll = async (): Promise<void> => {
    try {
      const res = await fetch("/status", { headers: { Accept: "application/json" } });
      // 503 (STARTING, ERROR) carries the same document: show it.
      const doc = (await res.json()) as PublicStatusDocument;
      const now = Date.now();
      apply(view(doc, now), now);
      setText("connection", "");
    } catch {
      setText("connection", "Live updates paused: the mirror did not answer; retrying.");
    }
    setTimeout(() => void poll(), pollMs);
  };

  const copy = document.querySelector("#copy-clone-command");
  const input = document.querySelector("#clone-command");
  if (copy && input) {
    copy.addEventListener("click", () => {
      const text = String(input.value);
      const done = (msg: string) => setText("copyResult", msg);
      if (navigator.clipboard) navigator.clipboard.writeText(text).then(() => done("Copied."), () => done("Copy failed: select the text and copy it."));
      else {
        input.select();
        done("Selected: press Ctrl+C (or Cmd+C) to copy.");
      }
    });
  }
  // The first paint came from the server; the first poll follows at once so the copy example
  // gets this page's origin when setup.baseUrl is not set.
  void poll();
}
