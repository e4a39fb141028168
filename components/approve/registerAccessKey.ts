/**
 * The "approve the mirror" step as a resource: a command.local.Command running
 * accessKeyScript.mjs with plain node on the machine that runs `pulumi up`.
 *
 * Why a local Command and not a dynamic provider: a dynamic provider serializes its code
 * (closures included) into the state and runs it inside the engine's node process, which breaks
 * easily with TypeScript transpilers and module-level state; and its inputs would have to carry
 * the token anyway. A local Command keeps the script a plain file the tests run for real against
 * the Bitbucket REST double, gets the token through its `environment` (secret in state, never in
 * the command text or the logs), and revokes the grants on destroy.
 *
 * The script travels in the environment too, so the command text is the same on every machine
 * (a path to this file would differ between a laptop and CI and show up as a diff).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";

export const ACCESS_KEY_SCRIPT_PATH = path.join(__dirname, "accessKeyScript.mjs");

const RUN = (action: "register" | "revoke") => `node --input-type=module -e "$SMART_MIRROR_ACCESS_KEY_SCRIPT" ${action}`;

export interface AccessKeyTargets {
  /** "ALL" (every project the token can see) or project keys. */
  projects: "ALL" | string[];
  /** PROJECT/slug. */
  repos: string[];
}

/**
 * What to grant: explicit registerAccessKey targets win; otherwise the mirror's own selection
 * (its project list, its fixed repository list, or every project when it mirrors ALL).
 */
export function accessKeyTargets(
  explicit: { projects?: string[]; repos?: string[] },
  mirror: { projects?: "ALL" | string[]; repos?: string[] },
): AccessKeyTargets {
  if (explicit.projects !== undefined || explicit.repos !== undefined) return { projects: explicit.projects ?? [], repos: explicit.repos ?? [] };
  if (mirror.repos !== undefined) {
    const projects = mirror.projects;
    return { projects: [], repos: projects === undefined || projects === "ALL" ? mirror.repos : mirror.repos.filter((r) => projects.includes(r.split("/")[0])) };
  }
  return { projects: mirror.projects ?? "ALL", repos: [] };
}

export interface RegisterAccessKeyInput {
  name: string;
  primaryUrl: string;
  token: pulumi.Input<string>;
  publicKey: pulumi.Input<string>;
  targets: AccessKeyTargets;
  primaryCaPem?: pulumi.Input<string>;
  parent: pulumi.Resource;
}

export function registerAccessKey(i: RegisterAccessKeyInput): command.local.Command {
  const projects = i.targets.projects === "ALL" ? "ALL" : i.targets.projects.join(",");
  const repos = i.targets.repos.join(",");
  return new command.local.Command(
    `${i.name}-access-key`,
    {
      create: RUN("register"),
      delete: RUN("revoke"),
      environment: {
        SMART_MIRROR_ACCESS_KEY_SCRIPT: fs.readFileSync(ACCESS_KEY_SCRIPT_PATH, "utf8"),
        BITBUCKET_URL: i.primaryUrl,
        BITBUCKET_TOKEN: pulumi.secret(i.token),
        MIRROR_PUBLIC_KEY: i.publicKey,
        ACCESS_KEY_PROJECTS: projects,
        ACCESS_KEY_REPOS: repos,
        ...(i.primaryCaPem !== undefined ? { PRIMARY_CA_PEM: i.primaryCaPem } : {}),
      },
      // A new key or other targets: revoke the old grants first, then grant anew (the default
      // create-then-delete order would revoke a project that is in both sets).
      triggers: [i.publicKey, i.primaryUrl, projects, repos],
      logging: "stdoutAndStderr",
    },
    { parent: i.parent, deleteBeforeReplace: true },
  );
}
