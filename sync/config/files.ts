/**
 * Checks of the files the configuration points at: they exist, secrets are not group/world
 * accessible, and each looks like what it should hold (a private key, a non-empty secret, PEM
 * certificates). Reads only; secret contents never reach a message. The decisions are pure
 * functions (secretModeIsLoose, classify*); checkFiles is the thin I/O shell.
 */
import * as fs from "node:fs";
import { FileTarget } from "./schema";
import { Problem, Warning } from "./problems";
import { KEYS } from "./keys";

/**
 * OpenSSH's rule for private keys: refuse when any group/other permission bit is set (it
 * prints "UNPROTECTED PRIVATE KEY FILE" for mode & 077). We apply it to every secret file.
 */
export function secretModeIsLoose(mode: number): boolean {
  return (mode & 0o077) !== 0;
}

export function octalMode(mode: number): string {
  return "0" + (mode & 0o777).toString(8).padStart(3, "0");
}

/** What is wrong with a private key file's content, if anything. */
export function classifyPrivateKey(text: string): "ok" | "public" | "unknown" {
  if (/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(text)) return "ok";
  if (/^(ssh-|ecdsa-|sk-)\S+ [A-Za-z0-9+/=]+/.test(text.trim())) return "public";
  return "unknown";
}

function missingFix(t: FileTarget): string {
  switch (t.key) {
    case KEYS.keyFile.name:
      return `create a key: \`ssh-keygen -t ed25519 -N '' -f ${t.path}\`, then grant its public half (${t.path}.pub) read access on the primary (Bitbucket: an access key on each mirrored project); or point mirror.upstream.keyFile at the existing key`;
    case KEYS.tokenFile.name:
      return `create a Bitbucket HTTP access token with read access to the mirrored projects and store it: \`(umask 077; cat > ${t.path})\`, paste the token, Ctrl-D. Or use mirror.catalog=static with mirror.catalog.repos`;
    case KEYS.webhookSecretFile.name:
      return `generate a secret: \`(umask 077; openssl rand -hex 32 > ${t.path})\` and enter the same secret in the primary's webhook; or delete the mirror.webhook.secretFile line to disable the webhook endpoint`;
    case KEYS.eventsSecretFile.name:
      return `generate a secret: \`(umask 077; openssl rand -hex 32 > ${t.path})\` and give the event receivers the same secret; or delete the mirror.events.* lines to send no events`;
    case KEYS.tokensFile.name:
      return `create it with the tokens clients may use: \`(umask 077; openssl rand -hex 32 > ${t.path})\`; or choose another mirror.serve.auth`;
    case KEYS.farmTokenFile.name:
      return `create the farm's token once (\`(umask 077; openssl rand -hex 32 > ${t.path})\`) and lay the same file on every node of the farm`;
    case KEYS.farmCaCertificatesFile.name:
      return `point mirror.farm.caCertificatesFile at a PEM file of the CA that issued the nodes' certificates, or delete the line to trust the system CAs`;
    case KEYS.caFile.name:
      return `point mirror.upstream.caFile at a PEM file of CA certificates, or delete the line to trust only the system CAs`;
    default:
      return `create ${t.path}`;
  }
}

export function checkFiles(targets: readonly FileTarget[]): { problems: Problem[]; warnings: Warning[] } {
  const problems: Problem[] = [];
  const warnings: Warning[] = [];
  for (const t of targets) {
    // The value shown with each problem is the path; the message need not repeat it.
    const dflt = t.written === undefined ? " (the default path)" : "";
    const problem = (message: string, fix: string) => problems.push({ key: t.key, value: t.written ?? t.path, message, fix });

    let st: fs.Stats;
    try {
      st = fs.statSync(t.path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") problem(`file does not exist${dflt}`, missingFix(t));
      else problem(`file cannot be examined (${code})${dflt}`, `check the permissions of ${t.path} and its directories`);
      continue;
    }
    if (!st.isFile()) {
      problem(`is not a regular file${dflt}`, missingFix(t));
      continue;
    }
    if (t.kind !== "caBundle" && secretModeIsLoose(st.mode)) {
      problem(`names a secret file that group/others can access (mode ${octalMode(st.mode)})${dflt}`, `chmod 600 ${t.path}`);
    }

    let text: string;
    try {
      text = fs.readFileSync(t.path, "utf8");
    } catch (e) {
      problem(`file cannot be read by this user (uid ${process.getuid?.() ?? "?"}): ${(e as NodeJS.ErrnoException).code}`, `make it readable by the user the daemon runs as, e.g. chown that user ${t.path}`);
      continue;
    }
    if (t.kind === "privateKey") {
      const kind = classifyPrivateKey(text);
      if (kind === "public") {
        problem(`names a public key; the private key is needed`, `mirror.upstream.keyFile=${t.path.replace(/\.pub$/, "")}`);
      } else if (kind === "unknown") {
        problem(`names a file that does not look like an SSH private key (no "-----BEGIN ... PRIVATE KEY-----" line)`, missingFix(t));
      }
    } else if (t.kind === "secret") {
      const secret = text.trim();
      if (secret === "") problem(`names an empty file${dflt}`, missingFix(t));
      else if ((t.key === KEYS.webhookSecretFile.name || t.key === KEYS.eventsSecretFile.name) && secret.length < 16) {
        warnings.push({ key: t.key, message: `the secret in ${t.path} is shorter than 16 characters; an HMAC secret that short can be guessed`, fix: missingFix(t) });
      }
    } else if (!text.includes("-----BEGIN CERTIFICATE-----")) {
      problem(`names a file with no PEM certificate ("-----BEGIN CERTIFICATE-----")`, missingFix(t));
    }
  }
  return { problems, warnings };
}
