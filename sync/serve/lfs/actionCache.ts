/**
 * The primary's actions for an object (download, upload, verify hrefs with their headers),
 * remembered between the batch request that got them and the transfer that uses them, so a
 * transfer through the mirror costs no second batch round trip to the primary. Keyed by the
 * client's credentials (a one-way fingerprint), the repository and the oid: an action minted
 * for one user is never used for another. Bounded: oldest entries go first; an entry lives at
 * most as long as the primary said the action does (expires_in/expires_at), capped.
 */
import { Credentials, credentialsFingerprint } from "../../auth/credentials";
import type { RepoId } from "../../types";
import type { LfsObjectAnswer } from "./upstreamLfs";

const MAX_AGE_MS = 10 * 60_000;

export class ActionCache {
  private readonly entries = new Map<string, { answer: LfsObjectAnswer; until: number }>();

  constructor(
    private readonly max = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  private key(creds: Credentials | undefined, repo: RepoId, op: string, oid: string): string {
    const scope = `${op}\0${repo.project}/${repo.slug}\0${oid}`;
    return creds ? credentialsFingerprint(creds, scope) : `anon\0${scope}`;
  }

  remember(creds: Credentials | undefined, repo: RepoId, op: "download" | "upload", answer: LfsObjectAnswer): void {
    const a = answer.actions?.download ?? answer.actions?.upload;
    let ttl = MAX_AGE_MS;
    if (a?.expires_in !== undefined) ttl = Math.min(ttl, (a.expires_in - 5) * 1000);
    else if (a?.expires_at !== undefined) ttl = Math.min(ttl, Date.parse(a.expires_at) - Date.now() - 5000);
    if (!(ttl > 0)) return;
    const k = this.key(creds, repo, op, answer.oid);
    this.entries.delete(k);
    this.entries.set(k, { answer, until: this.now() + ttl });
    while (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value as string);
  }

  get(creds: Credentials | undefined, repo: RepoId, op: "download" | "upload", oid: string): LfsObjectAnswer | undefined {
    const k = this.key(creds, repo, op, oid);
    const e = this.entries.get(k);
    if (!e) return undefined;
    if (e.until <= this.now()) {
      this.entries.delete(k);
      return undefined;
    }
    return e.answer;
  }
}
