/**
 * Writing small JSON answers. Bodies here are status documents and error notes, never packs;
 * they are serialized whole and sent with a Content-Length.
 */
import { OutgoingHttpHeaders } from "node:http";
import type { RequestContext } from "./http";

export function sendJson(ctx: Pick<RequestContext, "res">, status: number, body: unknown, headers: OutgoingHttpHeaders = {}): void {
  const text = JSON.stringify(body) + "\n";
  ctx.res.writeHead(status, {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": Buffer.byteLength(text),
    // Status documents are live readings; no proxy or browser should answer from a cache.
    "Cache-Control": "no-store",
    ...headers,
  });
  ctx.res.end(text);
}

/**
 * An error answer: `{"error": code, "message": ..., "requestId": ...}`. The request id lets an
 * operator find the matching log line; messages never contain secrets or request bodies.
 */
export function sendError(ctx: Pick<RequestContext, "res" | "requestId">, status: number, code: string, message: string, headers: OutgoingHttpHeaders = {}): void {
  sendJson(ctx, status, { error: code, message, requestId: ctx.requestId }, headers);
}
