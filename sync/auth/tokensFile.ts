/**
 * mirror.serve.auth=tokens: clients authenticate with tokens listed in mirror.serve.tokensFile.
 *
 * File format, one token per line (blank lines and `#` comments ignored):
 *
 *     # NAME:SHA256-HEX-OF-THE-TOKEN
 *     ci-bot:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8
 *
 * Only the SHA-256 of each token is stored (make one with `printf %s "$TOKEN" | sha256sum`), so
 * the file (and a backup of it) does not hand out access. Tokens should be long random strings
 * (e.g. `openssl rand -hex 32`): with that much entropy a fast hash is enough, no password KDF.
 * A line holding anything else than 64 hex digits after the name is refused, so a plaintext
 * token pasted by mistake never works (and is reported, without echoing it).
 *
 * Clients send `NAME:TOKEN` as HTTP Basic (git: https://ci-bot:TOKEN@mirror/scm/...), or
 * `Authorization: Bearer TOKEN`. Comparison is constant-time (timingSafeEqual over the hashes).
 * A token grants read access to every repository the mirror serves.
 *
 * The file is re-read when it changes (checked at most once per `checkEveryMs`, by inode, size and
 * mtime), so adding or revoking a token needs no restart. If it cannot be read, no token is
 * accepted until it can (fail closed: revocation must not depend on the file being readable).
 */
import { createHash, timingSafeEqual } from "node:crypto";
import * as fs from "node:fs";
import type { Credentials } from "./credentials";

export interface TokenEntry {
  name: string;
  /** SHA-256 of the token (32 bytes). */
  hash: Buffer;
}

export interface TokensProblem {
  line: number;
  message: string;
}

const NAME_RE = /^[A-Za-z0-9._@+-]{1,128}$/;
const HASH_RE = /^[0-9a-fA-F]{64}$/;

export function hashToken(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

/** One line per token as described above; the problems name the line, never its secret part. Pure. */
export function parseTokensFile(text: string): { entries: TokenEntry[]; problems: TokensProblem[] } {
  const entries: TokenEntry[] = [];
  const problems: TokensProblem[] = [];
  const seen = new Set<string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    const n = i + 1;
    if (line === "" || line.startsWith("#")) return;
    const colon = line.indexOf(":");
    const name = colon < 0 ? line : line.slice(0, colon).trim();
    const value = colon < 0 ? "" : line.slice(colon + 1).trim();
    if (!NAME_RE.test(name)) return problems.push({ line: n, message: "want NAME:SHA256HEX; the name may use letters, digits and . _ @ + - (at most 128)" });
    if (!HASH_RE.test(value)) return problems.push({ line: n, message: `the value for ${name} is not a SHA-256 (64 hex digits): store printf %s "$TOKEN" | sha256sum, never the token itself` });
    if (seen.has(name)) return problems.push({ line: n, message: `${name} is listed twice; only the first line counts` });
    seen.add(name);
    entries.push({ name, hash: Buffer.from(value, "hex") });
  });
  return { entries, problems };
}

/** The entry the credentials match, if any; constant time in the secret. Pure. */
export function matchToken(entries: readonly TokenEntry[], creds: Credentials): TokenEntry | undefined {
  if (creds.scheme === "basic") {
    const h = hashToken(creds.secret);
    const e = entries.find((x) => x.name === creds.user);
    // Compare against something even for an unknown name, so timing does not tell names apart.
    const ok = timingSafeEqual(h, e?.hash ?? DUMMY) && e !== undefined;
    return ok ? e : undefined;
  }
  const h = hashToken(creds.token);
  let found: TokenEntry | undefined;
  for (const e of entries) if (timingSafeEqual(h, e.hash) && !found) found = e; // no early exit
  return found;
}

const DUMMY = Buffer.alloc(32);

export interface TokenStoreOptions {
  /** Minimum time between two stat() calls of the file (default 1000 ms; 0: every request). */
  checkEveryMs?: number;
  now?: () => number;
  onProblem?: (message: string) => void;
}

/** The tokens file, re-read when it changes. */
export class TokenStore {
  private entries: TokenEntry[] = [];
  private signature = "";
  private lastCheck = -Infinity;
  private readonly every: number;
  private readonly now: () => number;

  constructor(readonly file: string, private readonly o: TokenStoreOptions = {}) {
    this.every = o.checkEveryMs ?? 1000;
    this.now = o.now ?? Date.now;
    this.refresh(true);
  }

  /** Names currently accepted (for logs and tests; never the hashes). */
  names(): string[] {
    return this.entries.map((e) => e.name);
  }

  verify(creds: Credentials): TokenEntry | undefined {
    this.refresh(false);
    return matchToken(this.entries, creds);
  }

  private refresh(force: boolean): void {
    const now = this.now();
    if (!force && now - this.lastCheck < this.every) return;
    this.lastCheck = now;
    let sig: string;
    try {
      const st = fs.statSync(this.file);
      sig = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch (e) {
      return this.fail(`cannot read the tokens file ${this.file}: ${(e as Error).message}`);
    }
    if (sig === this.signature && !force) return;
    let text: string;
    try {
      text = fs.readFileSync(this.file, "utf8");
    } catch (e) {
      return this.fail(`cannot read the tokens file ${this.file}: ${(e as Error).message}`);
    }
    const parsed = parseTokensFile(text);
    for (const p of parsed.problems) this.o.onProblem?.(`${this.file}:${p.line}: ${p.message}`);
    this.entries = parsed.entries;
    this.signature = sig;
  }

  private fail(message: string): void {
    if (this.signature !== "unreadable") this.o.onProblem?.(`${message}; no token is accepted until it can be read`);
    this.entries = [];
    this.signature = "unreadable";
  }
}
