/**
 * Which image to look up for an OS and CPU architecture, and the login user it comes with.
 * Pure; the component passes the result to aws.ec2.getAmi. Owners are the publishers' official
 * AWS accounts (Canonical, Debian), so a look-alike image from another account never matches.
 */

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
