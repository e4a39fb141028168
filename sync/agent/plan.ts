/**
 * The deploy plan: data, not code. Rendering happens before (components/render, called by the
 * Pulumi components and by `npm start`); `smart-mirror apply --plan FILE` only applies it, so
 * the daemon bundle never needs the renderers or Pulumi. The plan file is JSON; it is parsed
 * and checked by planSchema.ts, which explains every rejected field.
 *
 * Apply is idempotent: applying the same plan twice changes nothing and restarts nothing.
 *
 * Paths are absolute paths on the target host. `apply --root DIR` lays them down under DIR
 * instead (tests, `npm start`); users and groups are always the host's real ones.
 *
 * Secrets travel inside the plan (file content), never on a command line: the plan file is
 * copied with mode 0600 into a 0700 directory and deleted after apply (components/deploy).
 */

export const PLAN_VERSION = 1;

export interface PlanUser {
  /** System account the daemon runs as (created with no login shell and no password). */
  name: string;
  /** Its home (the mirror home), created (0750, owned by the user) if missing; never modified
   * if it exists (list it in `dirs` to manage its mode and owner). */
  home: string;
  /** Primary group; default: a group named like the user, created if missing. */
  group?: string;
  /**
   * A fixed uid for a new account (unless another account has it: then the system picks one).
   * The same id on every host lets a replaced machine use a kept data volume as it is; when
   * the ids differ anyway, apply re-owns the home (files of the home's previous owner only).
   */
  uid?: number;
  /** Extra groups the user is added to (they must exist or be listed in `Plan.groups`).
   * Apply only adds memberships, never removes one. */
  groups?: string[];
}

/** A system group, created if missing; `members` (existing users or plan users) are added to
 * it, e.g. `{ name: "smart-mirror", members: ["www-data"] }` so nginx can reach the daemon's socket. */
export interface PlanGroup {
  name: string;
  /** A fixed gid for a new group (unless another group has it); see PlanUser.uid. */
  gid?: number;
  members?: string[];
}

export interface PlanDir {
  path: string;
  mode: number;
  /** Default: the user running apply (root in production). */
  owner?: string;
  /** Default: the owner's primary group (like `chown owner:`); the applier's group without an owner. */
  group?: string;
}

export interface PlanFile {
  path: string;
  /** File content, base64 (binary-safe; keys and certificates included). Exactly one of
   * contentBase64 and sourcePath. */
  contentBase64?: string;
  /** Content taken from a file already on the host (not under --root), e.g. the daemon bundle
   * the deploy staged next to the plan: large content stays out of the plan and out of Pulumi
   * state. Hashed and copied as a stream. */
  sourcePath?: string;
  mode: number;
  /** Owner and group: defaults as for PlanDir. */
  owner?: string;
  group?: string;
  /** Secret files: never logged (not even a hash prefix), mode must not grant group/other access. */
  secret?: boolean;
}

export interface PlanService {
  /** systemd unit name, e.g. "smart-mirror.service" or "nginx.service". */
  unit: string;
  /** Restart the unit when any of these plan paths changed (reload if `reload` is set). A
   * directory path also matches every path under it. The unit's own file under a systemd unit
   * directory (and its `.d/` drop-ins) always counts as watched. A change of content, mode or
   * owner counts: a permission fix can change what the service can read. */
  watches: string[];
  /** Prefer `systemctl reload` (nginx) to a restart; a change of the unit file still restarts. */
  reload?: boolean;
  /** Enable at boot; an enabled unit that is not running is started by apply. */
  enable?: boolean;
}

/** A command run after the candidate files are in place and before any service is touched;
 * a non-zero exit restores the previous files and fails the apply with the command's output. */
export interface PlanValidator {
  /** argv, not a shell line, e.g. ["/usr/sbin/nginx", "-t", "-q"]. */
  argv: string[];
  /** Run only when one of these plan paths changed (directory paths match everything under them). */
  when: string[];
}

export interface Plan {
  version: typeof PLAN_VERSION;
  groups?: PlanGroup[];
  users: PlanUser[];
  dirs: PlanDir[];
  files: PlanFile[];
  services: PlanService[];
  /** Commands run to validate a candidate config before it replaces the live one, e.g. `nginx -t`. */
  validate?: PlanValidator[];
}
