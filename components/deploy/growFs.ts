/**
 * Grow the data volume's filesystem to its block device, online. Pure (text out); the tests
 * run the text against real ext4 and xfs filesystems on loop devices.
 *
 * Raising `dataVolume.sizeGiB` only modifies the EBS volume; the filesystem on it keeps its
 * size until someone runs resize2fs (ext4) or xfs_growfs (xfs). This step does, on every
 * deploy whose size changed: it waits (bounded) until the kernel sees the device at least at
 * the requested size (an EBS modification reaches the instance a little after the API call
 * returns), then grows the filesystem mounted at the home. Idempotent: a filesystem already
 * filling its device is left alone.
 */
import { shellQuote } from "./commands";

export interface GrowFsArgs {
  /** Where the data volume is mounted (the mirror home). */
  mountPoint: string;
  /** The size asked of the volume, in bytes: wait until the device is at least this big. */
  expectedBytes: number;
  /** How long to wait for the device to show the new size. Default 300. */
  waitSeconds?: number;
  sudo?: boolean;
}

export function growFsCommand(a: GrowFsArgs): string {
  const mp = shellQuote(a.mountPoint);
  const s = a.sudo ? "sudo -n " : "";
  // Double quotes: the messages expand $dev and friends.
  const say = (msg: string) => `echo "smart-mirror deploy: ${msg}" >&2`;
  return [
    "set -eu",
    `if ! mountpoint -q ${mp}; then ${say(`the data volume is not mounted at ${a.mountPoint.replace(/["$`\\]/g, "")}`)}; exit 1; fi`,
    `dev=$(findmnt -n -o SOURCE --target ${mp})`,
    `fstype=$(findmnt -n -o FSTYPE --target ${mp})`,
    `want=${Math.floor(a.expectedBytes)}`,
    `tries=${a.waitSeconds ?? 300}`,
    `while [ "$(${s}blockdev --getsize64 "$dev")" -lt "$want" ]; do`,
    '  tries=$((tries - 1))',
    `  if [ "$tries" -le 0 ]; then ${say(`$dev is still $(${s}blockdev --getsize64 "$dev") bytes, not $want: is the volume modification finished? (aws ec2 describe-volumes-modifications)`)}; exit 1; fi`,
    "  sleep 1",
    "done",
    'case "$fstype" in',
    `  ext2|ext3|ext4) ${s}resize2fs "$dev" ;;`,
    `  xfs) ${s}xfs_growfs ${mp} ;;`,
    `  *) ${say("cannot grow a $fstype filesystem; grow it by hand")}; exit 1 ;;`,
    "esac",
    `df -B1 --output=size,target ${mp} | tail -n 1`,
  ].join("\n");
}
