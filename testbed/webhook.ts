/**
 * Sends what Bitbucket sends on a push: a repo:refs_changed event, signed with HMAC-SHA256.
 * Payload shape: Atlassian, "Event payload" — Repository events, Push
 * (https://confluence.atlassian.com/bitbucketserver/event-payload-938025882.html).
 */
import * as http from "node:http";
import * as https from "node:https";
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

/** The headers the primary sends with a signed repo:refs_changed webhook. */
export function webhookHeaders(secret: string, body: string): http.OutgoingHttpHeaders {
  return { "Content-Type": "application/json; charset=utf-8", "X-Event-Key": "repo:refs_changed", "X-Hub-Signature": signBody(secret, body), "Content-Length": Buffer.byteLength(body) };
}

export interface WebhookTarget {
  port: number;
  host?: string;
  socketPath?: string;
  /** HTTPS (through nginx): trust this CA (PEM) and send this server name. */
  tls?: { ca: string; servername: string };
}

/** POST a signed webhook over a new connection (as the primary does); resolves with the status. */
export function postWebhook(target: WebhookTarget, secret: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const options: http.RequestOptions = {
      host: target.host ?? "127.0.0.1",
      port: target.socketPath ? undefined : target.port,
      socketPath: target.socketPath,
      method: "POST",
      path: "/webhook",
      agent: false,
      headers: webhookHeaders(secret, body),
      timeout: 30000,
    };
    const onResponse = (res: http.IncomingMessage) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    };
    const req = target.tls ? https.request({ ...options, ...target.tls }, onResponse) : http.request(options, onResponse);
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("webhook POST timed out")));
    req.end(body);
  });
}
