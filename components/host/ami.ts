/**
 * Which image to look up for an OS and CPU architecture, and the login user it comes with.
 * Pure; the component passes the result to aws.ec2.getAmi. Owners are the publishers' official
 * AWS accounts (Canonical, Debian), so a look-alike image from another account never matches.
 */
import { createHash } from "node:crypto";

export type HostOs = "ubuntu-24.04" | "debian-12";

export const DEFAULT_OS: HostOs = "ubuntu-24.04";

export interface AmiQuery {
  owners: string[];
  mostRecent: true;
  filters: Array<{ name: string; values: string[] }>;
}

const CANONICAL = "099720109477";
const DEBIAN = "136693071363";

export function amiQuery(os: HostOs, arch: "x86_64" | "arm64"): AmiQuery {
  const deb = arch === "arm64" ? "arm64" : "amd64";
  const name = os === "ubuntu-24.04" ? `ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-${deb}-server-*` : `debian-12-${deb}-*`;
  return {
    owners: [os === "ubuntu-24.04" ? CANONICAL : DEBIAN],
    mostRecent: true,
    filters: [
      { name: "name", values: [name] },
      { name: "architecture", values: [arch] },
      { name: "virtualization-type", values: ["hvm"] },
      { name: "root-device-type", values: ["ebs"] },
    ],
  };
}

/** The image's default user (cloud-init's default_user), who gets the deploy key and passwordless sudo. */
export function defaultLoginUser(os: HostOs): string {
  return os === "ubuntu-24.04" ? "ubuntu" : "admin";
}

/**
 * The login user of an image, from its name as the official publishers write it (Canonical:
 * "ubuntu/images/...", Debian: "debian-12-..."); undefined for an image of someone else.
 */
export function loginUserOfImage(imageName: string): string | undefined {
  if (/^ubuntu\//.test(imageName) || /ubuntu-(jammy|noble|focal)/.test(imageName)) return "ubuntu";
  if (/^debian-\d+-/.test(imageName)) return "admin";
  return undefined;
}

/**
 * The instance's logical name. What decides the machine's image and its mount point (OS, CPU
 * architecture, the home) is part of it, so changing any of them is a clean replacement: a new
 * instance from a freshly looked-up image of the right OS and architecture (a rename gives a
 * new URN, so `ignoreChanges: ["ami"]` cannot carry the old image over, which it would in an
 * in-place replacement), the kept data volume re-attached and mounted at the new home by the
 * new instance's cloud-init, and the deploy logging in as the new image's user. An in-place
 * update would instead stop the instance and ask AWS to run an x86 image on a Graviton type
 * (refused), or keep the old OS while the deploy dials the new OS's user.
 * The default machine keeps the name it always had, so existing stacks see no change.
 */
export function instanceName(name: string, key: { os: HostOs; arch: "x86_64" | "arm64"; home: string; defaultHome: string }): string {
  if (key.os === DEFAULT_OS && key.arch === "x86_64" && key.home === key.defaultHome) return `${name}-host`;
  const home = key.home === key.defaultHome ? "" : `-${createHash("sha256").update(key.home).digest("hex").slice(0, 8)}`;
  return `${name}-host-${key.os.replace(/\./g, "")}-${key.arch}${home}`;
}

/** Why a pinned image cannot run on the instance type, with the fix; undefined when it can. */
export function pinnedImageProblem(amiId: string, imageArch: string | undefined, instanceType: string, arch: "x86_64" | "arm64"): string | undefined {
  if (!imageArch || imageArch === arch) return undefined;
  return `host.amiId ${amiId} is an ${imageArch} image, but host.instanceType ${instanceType} is ${arch}: pin an ${arch} image of the same OS, or remove host.amiId to look one up (changing the image replaces the instance; the data volume is kept and re-attached)`;
}
