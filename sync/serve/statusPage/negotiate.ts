/**
 * Content negotiation for GET /status: the page for people only when the client prefers
 * text/html over application/json (a browser's navigation: "text/html,...,*\/*;q=0.8"); JSON
 * on a tie, with no Accept header and for "*\/*" (curl, Route53's health checker, Bitbucket
 * tooling), so every existing reader of /status keeps its JSON.
 */

/** The q of `type` under an Accept header: that of its most specific matching range (RFC 9110 §12.5.1), 0 if none. */
export function qualityOf(accept: string, type: string): number {
  const [major] = type.split("/");
  let best = { specificity: -1, q: 0 };
  for (const part of accept.split(",")) {
    const [range, ...params] = part.split(";").map((s) => s.trim().toLowerCase());
    if (!range) continue;
    const specificity = range === type ? 2 : range === `${major}/*` ? 1 : range === "*/*" ? 0 : -1;
    if (specificity <= best.specificity) continue;
    const qParam = params.find((p) => p.startsWith("q="));
    const q = qParam === undefined ? 1 : Number(qParam.slice(2));
    best = { specificity, q: Number.isFinite(q) && q >= 0 && q <= 1 ? q : 0 };
  }
  return best.q;
}

export function prefersHtml(accept: string | string[] | undefined): boolean {
  if (accept === undefined) return false;
  const a = Array.isArray(accept) ? accept.join(",") : accept;
  return qualityOf(a, "text/html") > qualityOf(a, "application/json");
}
