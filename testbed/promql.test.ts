import { exportedNames, metricNamesIn, metricNamesInGrafanaQuery } from "./promql";

describe("metric names out of PromQL", () => {
  test.each([
    ['smart_mirror_state{state=~"DEGRADED|ERROR"} == 1', ["smart_mirror_state"]],
    ["histogram_quantile(0.99, sum by (instance, le) (rate(smart_mirror_sync_lag_seconds_bucket{instance=~\"$instance\"}[$__rate_interval])))", ["smart_mirror_sync_lag_seconds_bucket"]],
    ["smart_mirror_disk_free_bytes / smart_mirror_disk_size_bytes < 0.10", ["smart_mirror_disk_free_bytes", "smart_mirror_disk_size_bytes"]],
    ["(time() - a_timestamp > 1800) and a_timestamp > 0", ["a_timestamp"]],
    ["x_running >= on (instance) group_left(job) x_slots and ignoring(kind) x_waiting > 0", ["x_running", "x_slots", "x_waiting"]],
    ['sum without (code) (rate(req_total{path="a{b}"}[5m] offset 1h))', ["req_total"]],
    ["min_over_time(up[10m:1m]) < 1 or vector(0)", ["up"]],
    ["expiry - time() < 21 * 86400", ["expiry"]],
  ])("%s", (expr, names) => {
    expect(metricNamesIn(expr)).toEqual(names);
  });

  test("Grafana variable queries", () => {
    expect(metricNamesInGrafanaQuery("label_values(smart_mirror_state, job)")).toEqual(["smart_mirror_state"]);
    expect(metricNamesInGrafanaQuery('label_values(smart_mirror_state{job=~"$job"}, instance)')).toEqual(["smart_mirror_state"]);
    expect(metricNamesInGrafanaQuery("label_values(instance)")).toEqual([]);
  });

  test("what an exposition exports: histograms with their series", () => {
    const names = exportedNames(["# HELP a_seconds x", "# TYPE a_seconds histogram", "a_seconds_bucket{le=\"1\"} 0", "# TYPE b_total counter", "# TYPE c gauge", "c 1"].join("\n"));
    expect([...names].sort()).toEqual(["a_seconds", "a_seconds_bucket", "a_seconds_count", "a_seconds_sum", "b_total", "c"]);
  });
});
