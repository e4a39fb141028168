/**
 * Pinned SSH host keys of the primary: parsing, matching and the OpenSSH known_hosts text.
 * Pure functions; the SSH clients (ssh2 for scans, OpenSSH for fetches) both use these, so a
 * mismatch is refused the same way on both paths.
 */
import { createHash } from "node:crypto";

export interface PinnedKey {
  type: string;
  /** The key blob (SSH wire format), base64 as written in known_hosts / .pub files. */
  base64: string;
}

const KEY_TYPES = new Set([
  "ssh-ed25519",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "ssh-rsa",
]);

/** Accepts "type base64 [comment]" lines and known_hosts lines ("host type base64"). */
export function parsePinnedKeys(text: string): PinnedKey[] {
  const keys: PinnedKey[] = [];
  for (const raw of text.split(/[\n,]/)) {
    const parts = raw.trim().split(/\s+/).filter(Boolean);
    if (parts.length === 0 || parts[0].startsWith("#")) continue;
    const at = parts.findIndex((p) => KEY_TYPES.has(p));
    if (at < 0 || at + 1 >= parts.length) throw new Error(`not an SSH public host key: ${JSON.stringify(raw.trim().slice(0, 80))}`);
    const type = parts[at];
    const base64 = parts[at + 1];
    const blob = Buffer.from(base64, "base64");
    // The blob starts with its own type name; a mismatch means a damaged or mislabelled key.
    const nameLen = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
    if (nameLen <= 0 || blob.subarray(4, 4 + nameLen).toString("latin1") !== type) {
      throw new Error(`host key blob does not match its type ${type}: ${base64.slice(0, 24)}...`);
    }
    keys.push({ type, base64 });
  }
  return keys;
}

/** OpenSSH's fingerprint format: "SHA256:" + unpadded base64 of the blob's SHA-256. */
export function sshFingerprint(blob: Buffer): string {
  return "SHA256:" + createHash("sha256").update(blob).digest("base64").replace(/=+$/, "");
}

export function matchesPinned(presented: Buffer, pinned: readonly PinnedKey[]): boolean {
  return pinned.some((k) => Buffer.from(k.base64, "base64").equals(presented));
}

/** known_hosts lines for OpenSSH's UserKnownHostsFile (non-default ports are bracketed). */
export function knownHostsText(host: string, port: number, pinned: readonly PinnedKey[]): string {
  const name = port === 22 ? host : `[${host}]:${port}`;
  return pinned.map((k) => `${name} ${k.type} ${k.base64}\n`).join("");
}

export function describeMismatch(presented: Buffer, pinned: readonly PinnedKey[], host: string, port: number): string {
  const nameLen = presented.readUInt32BE(0);
  const type = presented.subarray(4, 4 + nameLen).toString("latin1");
  return (
    `host key mismatch for ${host}:${port}: the primary presented ${type} ${sshFingerprint(presented)}, ` +
    `but mirror.upstream.hostKeys pins ${pinned.map((k) => `${k.type} ${sshFingerprint(Buffer.from(k.base64, "base64"))}`).join(", ")}. ` +
    `Refusing to connect. If the primary's key really changed, verify the new key out of band and update mirror.upstream.hostKeys.`
  );
}
