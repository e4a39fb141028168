/**
 * The deploy plan of a mirror host (sync/agent/plan.ts): which files, with which modes and
 * owners, and which services to restart or reload when they change. Pure: plain values in, a
 * Plan out; the component serializes it, stages it on the host and runs `smart-mirror apply`.
 *
 * Modes follow what reads each file: the daemon (user smart-mirror) reads the properties, its
 * SSH key and the secrets (0600, owned by it); nginx's master (root) reads the TLS key (0600
 * root); nginx's workers (www-data, in the smart-mirror group) reach the daemon's socket.
 */
import * as path from "node:path";
import { PLAN_VERSION, Plan, PlanFile } from "../../sync/agent/plan";
import { HOME_LAYOUT } from "../../sync/homeLayout";
import { DAEMON_GID, DAEMON_UID, DAEMON_USER, INSTALL_DIR, MirrorPaths, TLS_DIR } from "./layout";

export interface MirrorPlanInput {
  paths: MirrorPaths;
  propertiesText: string;
  /** The mirror's SSH key, OpenSSH format. */
  mirrorPrivateKey: string;
  mirrorPublicKey: string;
  catalogToken?: string;
  webhookSecret?: string;
  /** The synced events' HMAC secret (mirror.events.secretFile). */
  eventsSecret?: string;
  cloneTokens?: string[];
  primaryCaPem?: string;
  tlsCertificateChainPem: string;
  tlsPrivateKeyPem: string;
  nginxSite: string;
  daemonUnit: string;
  /** Where the deploy staged the bundle on the host; the plan installs it from there. */
  stagedBundle: string;
  /** nginx's worker user (Debian/Ubuntu: www-data). */
  nginxUser?: string;
  /** Run `smart-mirror check` on the candidate config before restarting the daemon. Default true. */
  checkBeforeRestart?: boolean;
}

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");
const withNewline = (s: string) => (s.endsWith("\n") ? s : `${s}\n`);

type HomeFileEntry = "properties" | "keyFile" | "catalogTokenFile" | "webhookSecretFile" | "eventsSecretFile" | "cloneTokensFile" | "primaryCaFile";
type HomeDirEntry = "shared" | "sshDir" | "secretsDir" | "caDir" | "runDir";

export function buildMirrorPlan(i: MirrorPlanInput): Plan {
  const p = i.paths;
  const daemon = { owner: DAEMON_USER, group: DAEMON_USER };
  const root = { owner: "root", group: "root" };
  // Files and dirs under the home take their mode from the home's layout (sync/homeLayout.ts).
  const homeFile = (entry: HomeFileEntry, text: string, secret = false): PlanFile => ({ path: p[entry], contentBase64: b64(text), mode: HOME_LAYOUT[entry].mode, ...daemon, ...(secret ? { secret } : {}) });
  const secretFile = (entry: HomeFileEntry, content: string) => homeFile(entry, withNewline(content), true);
  const homeDir = (entry: HomeDirEntry) => ({ path: p[entry], mode: HOME_LAYOUT[entry].mode, ...daemon });

  const files: PlanFile[] = [
    homeFile("properties", i.propertiesText),
    secretFile("keyFile", i.mirrorPrivateKey),
    { path: `${p.keyFile}.pub`, contentBase64: b64(withNewline(i.mirrorPublicKey.trim())), mode: 0o644, ...daemon },
  ];
  if (i.catalogToken !== undefined) files.push(secretFile("catalogTokenFile", i.catalogToken.trim()));
  if (i.webhookSecret !== undefined) files.push(secretFile("webhookSecretFile", i.webhookSecret.trim()));
  if (i.eventsSecret !== undefined) files.push(secretFile("eventsSecretFile", i.eventsSecret.trim()));
  if (i.cloneTokens !== undefined) files.push(secretFile("cloneTokensFile", i.cloneTokens.map((t) => t.trim()).join("\n")));
  if (i.primaryCaPem !== undefined) files.push(homeFile("primaryCaFile", withNewline(i.primaryCaPem.trim())));
  files.push(
    { path: p.bundle, sourcePath: i.stagedBundle, mode: 0o755, ...root },
    { path: p.tlsCert, contentBase64: b64(withNewline(i.tlsCertificateChainPem.trim())), mode: 0o644, ...root },
    { path: p.tlsKey, contentBase64: b64(withNewline(i.tlsPrivateKeyPem.trim())), mode: 0o600, ...root, secret: true },
    { path: p.nginxSite, contentBase64: b64(i.nginxSite), mode: 0o644, ...root },
    { path: p.unitFile, contentBase64: b64(i.daemonUnit), mode: 0o644, ...root },
  );

  const plan: Plan = {
    version: PLAN_VERSION,
    // nginx's workers join the daemon's group: the socket directory is group-accessible only.
    groups: [{ name: DAEMON_USER, gid: DAEMON_GID, members: [i.nginxUser ?? "www-data"] }],
    // Fixed ids: a kept data volume fits a replaced machine's account (see layout.ts).
    users: [{ name: DAEMON_USER, home: p.home, group: DAEMON_USER, uid: DAEMON_UID }],
    dirs: [
      { path: p.home, mode: 0o750, ...daemon },
      homeDir("shared"),
      homeDir("sshDir"),
      homeDir("secretsDir"),
      homeDir("caDir"),
      homeDir("runDir"),
      { path: INSTALL_DIR, mode: 0o755, ...root },
      { path: path.posix.dirname(TLS_DIR), mode: 0o755, ...root },
      // Searchable, not listable: the daemon reads the certificate (0644) for its expiry
      // metric; the key stays 0600 root.
      { path: TLS_DIR, mode: 0o711, ...root },
    ],
    files,
    services: [
      { unit: "smart-mirror.service", watches: [p.shared, p.bundle, p.unitFile], enable: true },
      { unit: "nginx.service", watches: [p.nginxSite, TLS_DIR], reload: true, enable: true },
    ],
    validate: [{ argv: ["/usr/sbin/nginx", "-t", "-q"], when: [p.nginxSite, TLS_DIR] }],
  };
  if (i.checkBeforeRestart ?? true) {
    // The daemon's own check on the candidate files: a bad config never replaces a running one.
    plan.validate?.push({ argv: ["/usr/bin/node", p.bundle, "check", "--home", p.home], when: [p.shared, p.bundle] });
  }
  return plan;
}

/** Stable JSON (the plan's field order is fixed by construction), so its hash is a deploy trigger. */
export function serializePlan(plan: Plan): string {
  return JSON.stringify(plan, null, 1) + "\n";
}
