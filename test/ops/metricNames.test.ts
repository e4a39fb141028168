/**
 * The shipped dashboard and alert rules against the metrics the daemon really exports: the
 * built daemon behind nginx (as deployed: it reads the certificate nginx serves), scraped
 * through nginx; any metric named in a dashboard expression, a dashboard variable query or a
 * rule expression that the exposition lacks fails the test, by name.
 */
import { X509Certificate } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { ensureBundle } from "../../testbed/daemonProcess";
import { MirrorBehindNginx, startMirrorBehindNginx } from "../../testbed/mirrorBehindNginx";
import { Primary, startPrimary } from "../../testbed/primary";
import { exportedNames, metricNamesIn, metricNamesInGrafanaQuery } from "../../testbed/promql";
import { pushSampleHistory, workingClone } from "../../testbed/repos";

jest.setTimeout(300_000);

const OPS = path.resolve(__dirname, "../../ops");
const DASHBOARD = path.join(OPS, "grafana/smart-mirror.json");
const RULES = path.join(OPS, "prometheus/smart-mirror.rules.yml");

interface Panel {
  title?: string;
  targets?: { expr?: string }[];
  panels?: Panel[];
}
interface Dashboard {
  __inputs: { name: string; pluginId: string; type: string }[];
  panels: Panel[];
  templating: { list: { name: string; query: string | { query: string } }[] };
}

/** [where, expression] for every PromQL expression of the dashboard. */
function dashboardExpressions(d: Dashboard): [string, string][] {
  const out: [string, string][] = [];
  const walk = (ps: Panel[]) => {
    for (const p of ps) {
      for (const t of p.targets ?? []) if (t.expr) out.push([`panel "${p.title}"`, t.expr]);
      walk(p.panels ?? []);
    }
  };
  walk(d.panels);
  return out;
}

function ruleExpressions(): [string, string][] {
  const doc = yaml.load(fs.readFileSync(RULES, "utf8")) as { groups: { rules: { alert?: string; record?: string; expr: string }[] }[] };
  return doc.groups.flatMap((g) => g.rules.map((r): [string, string] => [`rule ${r.alert ?? r.record}`, r.expr]));
}

describe("the dashboard and the rules name only metrics the daemon exports", () => {
  let primary: Primary;
  let m: MirrorBehindNginx;
  let exported: Set<string>;
  let exposition: string;

  beforeAll(async () => {
    ensureBundle();
    primary = await startPrimary();
    await primary.createRepo("PROJ", "app");
    await pushSampleHistory(await workingClone(primary.remote("PROJ", "app")), 1);
    m = await startMirrorBehindNginx({ primary, repos: [{ project: "PROJ", slug: "app" }] });
    await m.waitSynchronized();
    const r = await m.request("GET", "/metrics");
    expect(r.status).toBe(200);
    exposition = r.body.toString("utf8");
    exported = exportedNames(exposition);
  });

  test("the dashboard imports as is (a Prometheus datasource input) and every expression's metrics exist", () => {
    const d = JSON.parse(fs.readFileSync(DASHBOARD, "utf8")) as Dashboard;
    expect(d.__inputs).toEqual([expect.objectContaining({ name: "DS_PROMETHEUS", type: "datasource", pluginId: "prometheus" })]);
    const exprs = dashboardExpressions(d);
    expect(exprs.length).toBeGreaterThan(20);
    for (const v of d.templating.list) exprs.push([`variable $${v.name}`, typeof v.query === "string" ? v.query : v.query.query]);
    const missing = exprs.flatMap(([where, e]) => (where.startsWith("variable") ? metricNamesInGrafanaQuery(e) : metricNamesIn(e)).filter((n) => !exported.has(n)).map((n) => `${where}: ${n}`));
    expect(missing).toEqual([]);
    // What the issue asks the dashboard to show, by the metrics that show it.
    const used = new Set(exprs.flatMap(([, e]) => metricNamesIn(e)));
    for (const name of [
      "smart_mirror_sync_lag_max_seconds",
      "smart_mirror_sync_failures_total",
      "smart_mirror_reconcile_duration_seconds_bucket",
      "smart_mirror_git_pack_cache_requests_total",
      "smart_mirror_git_upload_packs_running",
      "smart_mirror_git_upload_packs_waiting",
      "smart_mirror_git_sent_bytes_total",
      "smart_mirror_git_auth_total",
      "smart_mirror_disk_free_bytes",
    ])
      expect([name, used.has(name)]).toEqual([name, true]);
  });

  test("every rule expression's metrics exist", () => {
    const exprs = ruleExpressions();
    expect(exprs.length).toBeGreaterThan(10);
    const missing = exprs.flatMap(([where, e]) => metricNamesIn(e).filter((n) => !exported.has(n)).map((n) => `${where}: ${n}`));
    expect(missing).toEqual([]);
  });

  test("the check can fail: a misspelt or unexported name is reported", () => {
    expect(metricNamesIn("smart_mirror_sync_lag_max_second > 600").filter((n) => !exported.has(n))).toEqual(["smart_mirror_sync_lag_max_second"]);
    // Events metrics exist only with mirror.events.urls set: not exported by this daemon.
    expect(exported.has("smart_mirror_events_delivered_total")).toBe(false);
  });

  test("the certificate-expiry metric is the served certificate's notAfter", () => {
    const chain = fs.readFileSync(m.cert.chainPath, "utf8");
    const leaf = new X509Certificate(chain.slice(0, chain.indexOf("-----END CERTIFICATE-----") + "-----END CERTIFICATE-----".length));
    const line = exposition.split("\n").find((l) => l.startsWith("smart_mirror_tls_certificate_expiry_timestamp_seconds "));
    expect(Number(line?.split(" ")[1])).toBe(Math.floor(Date.parse(leaf.validTo) / 1000));
  });
});
