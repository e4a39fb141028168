import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { onCleanup, tempDir } from "../../testbed/resources";
import { DATA_VOLUME_SCRIPT, DATA_VOLUME_SCRIPT_PATH, HOST_PACKAGES, renderCloudInit } from "./cloudInit";

const VALUES = {
  fqdn: "mirror-syd.example.com",
  deployPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMLSLrCXW0pcoxGUW/EJTuGUPZLoE6StPXIw8GBCqaZE deploy",
  hostKey: {
    privateOpenssh: "-----BEGIN OPENSSH PRIVATE KEY-----\nbm90IGEgcmVhbCBrZXk=\n-----END OPENSSH PRIVATE KEY-----",
    publicOpenssh: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ5dGVzYnl0ZXNieXRlc2J5dGVzYnl0ZXNieXRlc2J5\n",
  },
  dataVolume: { volumeId: "vol-0123456789abcdef0", deviceName: "/dev/sdf", mountPoint: "/var/lib/smart-mirror" },
};

describe("renderCloudInit", () => {
  test("snapshot", () => {
    expect(renderCloudInit(VALUES)).toMatchSnapshot();
  });

  test("is a #cloud-config document with the packages, keys and the data-volume step", () => {
    const text = renderCloudInit(VALUES);
    expect(text.startsWith("#cloud-config\n")).toBe(true);
    const doc = yaml.load(text) as Record<string, unknown>;
    expect(doc.packages).toEqual([...HOST_PACKAGES]);
    for (const p of ["git", "openssh-client", "nginx", "nodejs"]) expect(doc.packages).toContain(p);
    expect(doc.ssh_pwauth).toBe(false);
    expect(doc.ssh_genkeytypes).toEqual([]);
    expect(doc.ssh_keys).toEqual({ ed25519_private: `${VALUES.hostKey.privateOpenssh}\n`, ed25519_public: VALUES.hostKey.publicOpenssh.trim() });
    expect(doc.ssh_authorized_keys).toEqual([VALUES.deployPublicKey]);
    const files = doc.write_files as Array<{ path: string; content: string; permissions: string }>;
    expect(files).toEqual([expect.objectContaining({ path: DATA_VOLUME_SCRIPT_PATH, permissions: "0755", content: DATA_VOLUME_SCRIPT })]);
    expect((doc.runcmd as string[][])[0]).toEqual([DATA_VOLUME_SCRIPT_PATH, "vol-0123456789abcdef0", "/dev/sdf", "/var/lib/smart-mirror"]);
  });

  test("the data-volume script is valid POSIX sh", () => {
    const r = spawnSync("sh", ["-n"], { input: DATA_VOLUME_SCRIPT });
    expect(r.stderr.toString()).toBe("");
    expect(r.status).toBe(0);
  });
});

/**
 * The script for real: a loop device stands in for the EBS volume (passed as the device name,
 * as on a Xen instance). Formats a blank device, keeps the data of a formatted one, refuses a
 * device it cannot classify, and writes fstab only once.
 */
describe("data-volume script on a real block device", () => {
  let dir: string;
  let script: string;

  function loopDevice(sizeMb: number, firstSector?: Buffer): string {
    const img = path.join(dir, `disk-${Math.random().toString(36).slice(2)}.img`);
    fs.writeFileSync(img, firstSector ?? "");
    fs.truncateSync(img, sizeMb * 1024 * 1024);
    const dev = execFileSync("losetup", ["-f", "--show", img]).toString().trim();
    onCleanup(() => {
      spawnSync("losetup", ["-d", dev]);
    });
    return dev;
  }

  function run(dev: string, mnt: string, fstab: string) {
    const r = spawnSync("sh", [script, "vol-0feedfacecafe0000", dev, mnt, fstab], { encoding: "utf8", timeout: 60000 });
    onCleanup(() => {
      spawnSync("umount", [mnt]);
    });
    return r;
  }

  beforeAll(() => {
    dir = tempDir("cloudinit-volume");
    script = path.join(dir, "smart-mirror-data-volume");
    fs.writeFileSync(script, DATA_VOLUME_SCRIPT, { mode: 0o755 });
  });

  test("blank: formatted, mounted, fstab entry; again: same filesystem, data kept, no second fstab line", () => {
    const dev = loopDevice(64);
    const mnt = path.join(dir, "home-a");
    const fstab = path.join(dir, "fstab-a");
    fs.writeFileSync(fstab, "# fstab\n");

    const first = run(dev, mnt, fstab);
    expect(first.stderr).toBe("");
    expect(first.status).toBe(0);
    expect(first.stdout).toMatch(/is blank; creating an ext4 filesystem/);
    expect(spawnSync("mountpoint", ["-q", mnt]).status).toBe(0);
    const uuid = execFileSync("blkid", ["-o", "value", "-s", "UUID", dev]).toString().trim();
    fs.writeFileSync(path.join(mnt, "repo-marker"), "precious");
    execFileSync("umount", [mnt]);

    const second = run(dev, mnt, fstab);
    expect(second.status).toBe(0);
    expect(second.stdout).toMatch(/already has data; not formatting/);
    expect(execFileSync("blkid", ["-o", "value", "-s", "UUID", dev]).toString().trim()).toBe(uuid);
    expect(fs.readFileSync(path.join(mnt, "repo-marker"), "utf8")).toBe("precious");
    const lines = fs.readFileSync(fstab, "utf8").split("\n").filter((l) => l.startsWith("UUID="));
    expect(lines).toEqual([`UUID=${uuid} ${mnt} ext4 defaults,noatime,nofail 0 2`]);

    // Already mounted: still fine, nothing changes.
    const third = run(dev, mnt, fstab);
    expect(third.status).toBe(0);
    expect(fs.readFileSync(path.join(mnt, "repo-marker"), "utf8")).toBe("precious");
  });

  test("a device with a partition table but no filesystem is never formatted", () => {
    // A classic MBR with one Linux partition (type 0x83) from sector 2048, 16 MiB long.
    const mbr = Buffer.alloc(512);
    mbr[446 + 4] = 0x83;
    mbr.writeUInt32LE(2048, 446 + 8);
    mbr.writeUInt32LE(32768, 446 + 12);
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    const dev = loopDevice(32, mbr);
    const before = execFileSync("blkid", ["-p", "-o", "value", "-s", "PTTYPE", dev]).toString().trim();
    expect(before).toBe("dos");
    const mnt = path.join(dir, "home-b");
    const r = run(dev, mnt, path.join(dir, "fstab-b"));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/no mountable filesystem/);
    expect(execFileSync("blkid", ["-p", "-o", "value", "-s", "PTTYPE", dev]).toString().trim()).toBe("dos");
    expect(spawnSync("mountpoint", ["-q", mnt]).status).not.toBe(0);
  });

  test('volume id "-" (a farm node): takes the EBS volume that is not the root disk, ignoring partition links', () => {
    const dev = loopDevice(64);
    const byId = path.join(dir, "by-id");
    fs.mkdirSync(byId, { recursive: true });
    // Nitro's names: the volume and its partitions; no requested device name exists.
    fs.symlinkSync(dev, path.join(byId, "nvme-Amazon_Elastic_Block_Store_vol0feedfacecafe0001"));
    fs.symlinkSync("/dev/null", path.join(byId, "nvme-Amazon_Elastic_Block_Store_vol0feedfacecafe0001-part1"));
    const mnt = path.join(dir, "home-c");
    const r = spawnSync("sh", [script, "-", "/dev/sdf-absent", mnt, path.join(dir, "fstab-c")], { encoding: "utf8", timeout: 60000, env: { ...process.env, SMART_MIRROR_DISK_BY_ID: byId } });
    onCleanup(() => {
      spawnSync("umount", [mnt]);
    });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`${dev} is blank; creating an ext4 filesystem`);
    expect(spawnSync("mountpoint", ["-q", mnt]).status).toBe(0);
  });
});
