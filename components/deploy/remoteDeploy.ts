/**
 * Ship the bundle and the plan to the host and apply it, with @pulumi/command:
 *
 *   wait (SSH up, cloud-init done, tools present, data volume mounted)
 *     -> stage (0700 directory owned by the SSH user)
 *       -> copy bundle, copy plan (remote.CopyToRemote)
 *         -> apply (`node BUNDLE apply --plan PLAN`)
 *
 * Every step's `triggers` are content hashes (bundle, plan) plus the machine's identity, so a
 * change of anything rendered redeploys, a replaced machine gets everything again, and a
 * `pulumi up` with nothing changed runs nothing. Secrets travel only inside the plan (a
 * secret output, copied into the private stage directory); no command text holds one.
 *
 * The plan is kept after apply (0600 in the 0700 stage directory, whose owner can sudo
 * anyway): CopyToRemote does not run again when its triggers are unchanged, so a plan deleted
 * by a failed apply could not be retried.
 */
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type { HostResult } from "../host/hostResult";
import { sha256, stableBundle } from "./bundleAsset";
import { remoteApplyCommand, remoteRemoveCommand, RemoveArgs, remoteStageCommand, stagedPaths } from "./commands";
import { growFsCommand } from "./growFs";
import { hostReadyCommand } from "./hostReady";
import { MirrorPaths, mirrorPaths, STAGING_DIR } from "./layout";

export interface DeployInput {
  name: string;
  host: HostResult;
  home: string;
  /** Local path of the daemon bundle. */
  bundlePath: string;
  /** The serialized plan (secret). */
  planJson: pulumi.Output<string>;
  sshTimeoutSeconds: number;
  /** Bump to force a redeploy with unchanged content. */
  revision?: string;
  /** Resources the apply waits for (e.g. the access-key registration). */
  dependsOn?: pulumi.Resource[];
  parent: pulumi.Resource;
}

export interface Deployment {
  ready: command.remote.Command;
  stage: command.remote.Command;
  bundle: command.remote.CopyToRemote;
  plan: command.remote.CopyToRemote;
  apply: command.remote.Command;
  /** EC2 data volume: grows the filesystem when the volume's size changed. */
  growFs?: command.remote.Command;
  /** Existing hosts: the delete step (stop the daemon, remove its secrets). */
  remove?: command.remote.Command;
}

/** What the delete step removes: every file that holds a secret or serves with one. */
export function removalTargets(paths: MirrorPaths): Pick<RemoveArgs, "files" | "dirs" | "unit"> {
  return {
    unit: "smart-mirror.service",
    files: [paths.keyFile, paths.tlsKey, paths.tlsCert, paths.nginxSite, paths.unitFile],
    dirs: [paths.secretsDir, STAGING_DIR],
  };
}

export function deployToHost(i: DeployInput): Deployment {
  const { name, parent, host } = i;
  const opts = { parent };
  const sudo = host.sshUser !== "root";
  const staged = stagedPaths(STAGING_DIR);
  // A content-addressed copy: the same inputs from every checkout path (bundleAsset.ts).
  const { sha: bundleSha, assetPath } = stableBundle(i.bundlePath);
  const planSha = i.planJson.apply(sha256);
  const triggers = [host.identity, bundleSha, planSha, i.revision ?? ""];

  // The first connection waits for the machine to boot: unlimited dial attempts, bounded by
  // the resource's own timeout.
  const timeout = `${i.sshTimeoutSeconds}s`;
  const ready = new command.remote.Command(
    `${name}-ready`,
    {
      connection: { ...host.connection, dialErrorLimit: -1, perDialTimeout: 10 },
      create: hostReadyCommand({ home: i.home, homeIsMount: host.homeIsMount, sudo }),
      triggers: [host.identity],
    },
    { ...opts, customTimeouts: { create: timeout, update: timeout } },
  );
  const stage = new command.remote.Command(
    `${name}-stage`,
    { connection: host.connection, create: remoteStageCommand({ stageDir: STAGING_DIR, sudo }), triggers: [host.identity] },
    { ...opts, dependsOn: [ready] },
  );
  const bundle = new command.remote.CopyToRemote(
    `${name}-bundle`,
    { connection: host.connection, source: new pulumi.asset.FileAsset(assetPath), remotePath: staged.bundlePath, triggers: [host.identity, bundleSha] },
    { ...opts, dependsOn: [stage] },
  );
  const plan = new command.remote.CopyToRemote(
    `${name}-plan`,
    { connection: host.connection, source: i.planJson.apply((t) => new pulumi.asset.StringAsset(t)), remotePath: staged.planPath, triggers },
    { ...opts, dependsOn: [stage] },
  );
  const apply = new command.remote.Command(
    `${name}-apply`,
    {
      connection: host.connection,
      create: remoteApplyCommand({ bundlePath: staged.bundlePath, planPath: staged.planPath, sudo, keepPlan: true }),
      triggers,
      // The agent logs paths, actions and hashes of non-secret files, never secret content.
      logging: "stdoutAndStderr",
    },
    { ...opts, dependsOn: [bundle, plan, ...(i.dependsOn ?? [])] },
  );
  // The EBS volume grows in place when sizeGiB is raised; its filesystem does not by itself.
  // After the volume's modification (dependsOn), grow it online; again whenever the size or
  // the machine changes (a no-op when it already fills the device).
  const growFs =
    host.dataVolume && host.dataVolumeGiB !== undefined
      ? new command.remote.Command(
          `${name}-grow-fs`,
          {
            connection: host.connection,
            create: growFsCommand({ mountPoint: i.home, expectedBytes: host.dataVolumeGiB * 1024 ** 3, sudo }),
            triggers: [host.identity, host.dataVolumeGiB],
            logging: "stdoutAndStderr",
          },
          { ...opts, dependsOn: [ready, host.dataVolume] },
        )
      : undefined;
  // An existing host outlives the stack: on delete, stop the daemon and take its secrets
  // away. (An EC2 host is terminated; its kept data volume is covered in the README.)
  const remove = host.removeOnDelete
    ? new command.remote.Command(`${name}-remove`, { connection: host.connection, delete: remoteRemoveCommand({ ...removalTargets(mirrorPaths(i.home)), sudo }) }, { ...opts, dependsOn: [apply] })
    : undefined;
  return { ready, stage, bundle, plan, apply, growFs, remove };
}
