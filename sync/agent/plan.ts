/**
 * The deploy plan: data, not code. Rendering happens before (components/render, called by the
 * Pulumi components and by `npm start`); `smart-mirror apply --plan FILE` only applies it, so
 * the daemon bundle never needs the renderers or Pulumi. The plan file is JSON.
 *
 * Apply is idempotent: applying the same plan twice changes nothing and restarts nothing.
 */

export const PLAN_VERSION = 1;

export interface PlanUser {
  /** System account the daemon runs as (created with no login shell and no password). */
  name: string;
  /** Its home (the mirror home), created if missing. */
  home: string;
  /** Extra groups, e.g. so nginx ("www-data") can reach the daemon's socket. */
  groups?: string[];
}

export interface PlanDir {
  path: string;
  mode: number;
  owner?: string;
  group?: string;
}

export interface PlanFile {
  path: string;
  /** File content, base64 (binary-safe; keys and certificates included). */
  contentBase64: string;
  mode: number;
  owner?: string;
  group?: string;
  /** Secret files: never logged, compared by hash only. */
  secret?: boolean;
}

export interface PlanService {
  /** systemd unit name, e.g. "smart-mirror.service" or "nginx.service". */
  unit: string;
  /** Restart the unit when any of these plan paths changed (reload if `reload` is set). */
  watches: string[];
  /** Prefer `systemctl reload` (nginx) to a restart. */
  reload?: boolean;
  /** Enable at boot. */
  enable?: boolean;
}

export interface Plan {
  version: typeof PLAN_VERSION;
  users: PlanUser[];
  dirs: PlanDir[];
  files: PlanFile[];
  services: PlanService[];
  /** Commands run to validate a candidate config before it replaces the live one, e.g. `nginx -t -c FILE`. */
  validate?: Array<{ argv: string[]; when: string[] }>;
}
