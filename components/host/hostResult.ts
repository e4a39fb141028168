/**
 * What every host kind hands to the rest of the component: where clients connect, how the
 * deploy logs in (with the host key pinned), and an identity that changes when the machine is
 * replaced (a deploy trigger: a new machine needs the whole plan again).
 */
import type * as aws from "@pulumi/aws";
import type * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type { BastionArgs, ExistingHostArgs } from "../args";
import { parseHostKeys } from "../../sync/config/values";
import { Invalid } from "../../sync/config/problems";

export interface HostResult {
  /** Address clients reach; the DNS record's target. */
  publicAddress: pulumi.Output<string>;
  connection: command.types.input.remote.ConnectionArgs;
  /** The login user (plain: it decides whether commands need sudo). */
  sshUser: string;
  identity: pulumi.Input<string>;
  /** The home is a separately mounted volume: the deploy refuses to run before it is mounted. */
  homeIsMount: boolean;
  /** The machine outlives the stack: the deploy gets a delete step that stops the daemon and removes its secrets. */
  removeOnDelete?: boolean;
  instance?: aws.ec2.Instance;
  dataVolume?: aws.ebs.Volume;
  /** The data volume's size as asked (GiB): the deploy grows the filesystem to it. */
  dataVolumeGiB?: number;
}

export function proxyConnection(b: BastionArgs): command.types.input.remote.ProxyConnectionArgs {
  return {
    host: b.host,
    port: b.port ?? 22,
    user: b.user,
    privateKey: pulumi.secret(b.privateKey),
    hostKey: b.hostKey,
    dialErrorLimit: 10,
    perDialTimeout: 15,
  };
}

/** "type base64" of a pinned key given as "type base64 [comment]" or a known_hosts line. */
export function normalizeHostKey(line: string): string {
  const r = parseHostKeys(line, "host.hostKey");
  if (r instanceof Invalid) throw new Error(`host.hostKey: ${r.message}`);
  return `${r[0].type} ${r[0].base64}`;
}

export function existingHost(args: ExistingHostArgs): HostResult {
  return {
    publicAddress: pulumi.output(args.publicAddress ?? args.address),
    connection: {
      host: args.address,
      port: args.port ?? 22,
      user: args.user ?? "root",
      privateKey: pulumi.secret(args.privateKey),
      hostKey: normalizeHostKey(args.hostKey),
      proxy: args.bastion ? proxyConnection(args.bastion) : undefined,
    },
    sshUser: args.user ?? "root",
    identity: args.address,
    homeIsMount: false,
    removeOnDelete: true,
  };
}
