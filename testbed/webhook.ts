/**
 * Sends what Bitbucket sends on a push: a repo:refs_changed event, signed with HMAC-SHA256.
 * Payload shape: Atlassian, "Event payload" — Repository events, Push
 * (https://confluence.atlassian.com/bitbucketserver/event-payload-938025882.html).
 */
import * as http from "node:http";
import { signBody } from "../sync/serve/webhookSignature";

export function refsChangedPayload(project: string, slug: string, ref = "refs/heads/main", fromHash = "0".repeat(40), toHash = "1".repeat(40)): string {
  return JSON.stringify({
    eventKey: "repo:refs_changed",
    date: new Date().toISOString(),
    actor: { name: "admin", emailAddress: "admin@example.com", id: 1, displayName: "Administrator", active: true, slug: "admin", type: "NORMAL" },
    repository: {
      slug,
      id: 84,
      name: slug,
      scmId: "git",
      state: "AVAILABLE",
      statusMessage: "Available",
      forkable: true,
      project: { key: project, id: 84, name: project, public: false, type: "NORMAL" },
      public: false,
    },
    changes: [{ ref: { id: ref, displayId: ref.replace(/^refs\/(heads|tags)\//, ""), type: ref.startsWith("refs/tags/") ? "TAG" : "BRANCH" }, refId: ref, fromHash, toHash, type: "UPDATE" }],
  });
}

export function postWebhook(target: { port: number; host?: string; socketPath?: string }, secret: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: target.host ?? "127.0.0.1",
        port: target.socketPath ? undefined : target.port,
        socketPath: target.socketPath,
        method: "POST",
        path: "/webhook",
        headers: { "Content-Type": "application/json; charset=utf-8", "X-Event-Key": "repo:refs_changed", "X-Hub-Signature": signBody(secret, body), "Content-Length": Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}
