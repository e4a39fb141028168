import { Registry } from "prom-client";
import { BodyBudget, BODY_METRIC_NAMES } from "./bodyBudget";

test("reservations grow within the budget, are refused beyond it, and come back once", async () => {
  const registry = new Registry();
  const b = new BodyBudget(100, registry);
  const r1 = b.reserve();
  const r2 = b.reserve();
  expect(r1.ensure(60)).toBe(true);
  expect(r2.ensure(50)).toBe(false);
  expect(r2.ensure(40)).toBe(true);
  expect(b.held).toBe(100);
  expect(r1.ensure(30)).toBe(true); // already holds more
  const text = await registry.metrics();
  expect(text).toContain(`${BODY_METRIC_NAMES.held} 100`);
  r1.release();
  r1.release();
  expect(b.held).toBe(40);
  expect(r1.ensure(1)).toBe(false); // released for good
  r2.release();
  expect(b.held).toBe(0);
  expect(b.peak).toBe(100);
  b.refused();
  expect(await registry.metrics()).toContain(`${BODY_METRIC_NAMES.refused} 1`);
});
