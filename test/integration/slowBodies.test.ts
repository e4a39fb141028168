/**
 * Stalled request bodies (issue 12, item 3): many POSTs that stop short of their Content-Length
 * used to pin ~1 MB each until the client gave up. Now the bytes held for bodies across all
 * requests stay within the budget (the rest are answered 503 + Retry-After before a byte of
 * their body is read), stalled bodies are answered 408 after the idle timeout, and every byte is
 * given back. Asserted on the budget's accounting and metric, not on timing or RSS.
 */
import * as path from "node:path";
import { BodyBudget } from "../../sync/serve/bodyBudget";
import { signBody } from "../../sync/serve/webhookSignature";
import { startInProcessGitServer, InProcessGitServer } from "../../testbed/gitServer";
import { initBare } from "../../testbed/repos";
import { stalledPost } from "../../testbed/stalledBody";
import { tempDir, waitFor } from "../../testbed/resources";

jest.setTimeout(120_000);

const BUDGET = 2 * 1024 * 1024;
const BODY = 256 * 1024;

let srv: InProcessGitServer;
let budget: BodyBudget;

beforeAll(async () => {
  const dir = path.join(tempDir("slow"), "app.git");
  await initBare(dir);
  budget = new BodyBudget(BUDGET);
  srv = await startInProcessGitServer(new Map([["PROJ/app", dir]]), { bodyBudget: budget, bodyIdleMs: 1500 }, { bodyBudget: budget, bodyIdleMs: 1500, webhook: { secret: "s", onRefsChanged: () => undefined } });
});
afterAll(() => srv.close());

test("60 stalled upload-pack and webhook bodies: held bytes within the budget, the rest 503, the stalled ones 408, all memory given back", async () => {
  const posts = Array.from({ length: 60 }, (_, i) =>
    i % 4 === 3
      ? stalledPost(srv.port, "/webhook", 64 * 1024, { "X-Hub-Signature": signBody("s", "x"), "Content-Type": "application/json" })
      : stalledPost(srv.port, "/scm/PROJ/app.git/git-upload-pack", BODY, { "Content-Type": "application/x-git-upload-pack-request" }),
  );
  await Promise.all(posts.map((p) => p.sent));
  // Everyone has sent what they will send: some are held, the others were refused.
  await waitFor("held or refused", () => budget.refusals > 0 && budget.held > BUDGET / 2, 30_000, 20);
  expect(budget.peak).toBeLessThanOrEqual(BUDGET);

  const statuses = await Promise.all(posts.map((p) => p.answer));
  const count = (code: number) => statuses.filter((s) => s === code).length;
  expect(count(503)).toBeGreaterThan(0);
  expect(count(408)).toBeGreaterThan(0);
  expect(count(503) + count(408)).toBe(60);
  expect(budget.peak).toBeLessThanOrEqual(BUDGET);
  // Every reservation came back, and the metric says so.
  await waitFor("budget back to 0", () => budget.held === 0, 10_000, 20);
});

test("after the attack a normal request is served again", async () => {
  const r = await srv.send("POST", "/scm/PROJ/app.git/git-upload-pack", { headers: { "Content-Type": "application/x-git-upload-pack-request", "Content-Length": "4" }, body: Buffer.from("0000") });
  expect(r.status).toBeLessThan(500);
});
