import { amiQuery, defaultLoginUser } from "./ami";
import { DEFAULT_INSTANCE_TYPE, instanceArchitecture, instanceShape, instanceTypeProblem, instanceTypeWarning } from "./instanceTypes";

describe("instance sizing", () => {
  test.each([
    ["m6i.xlarge", 4, 16, false, "x86_64"],
    ["m6i.large", 2, 8, false, "x86_64"],
    ["c6i.large", 2, 4, false, "x86_64"],
    ["c7gn.2xlarge", 8, 16, false, "arm64"],
    ["r7g.4xlarge", 16, 128, false, "arm64"],
    ["m6g.medium", 1, 4, false, "arm64"],
    ["a1.large", 2, 4, false, "arm64"],
    ["im4gn.large", 2, 8, false, "arm64"],
    ["t3.micro", 2, 1, true, "x86_64"],
    ["t2.micro", 1, 1, true, "x86_64"],
    ["t4g.medium", 2, 4, true, "arm64"],
    ["m5.metal", 64, 256, false, "x86_64"],
  ] as const)("%s: %d vCPU, %d GiB, burstable %s, %s", (type, vcpu, mem, burstable, arch) => {
    expect(instanceShape(type)).toEqual({ vcpu, memoryGiB: mem, burstable, arch });
  });

  test.each(["t3.nano", "t3.micro", "t3.small", "t2.small", "m6g.medium", "c6g.medium", "a1.medium"])("%s is refused, naming the minimum and the default", (type) => {
    const p = instanceTypeProblem(type);
    expect(p?.message).toMatch(/below the minimum of 2 vCPU and 4 GiB/);
    expect(p?.fix).toContain(DEFAULT_INSTANCE_TYPE);
  });

  test.each([DEFAULT_INSTANCE_TYPE, "c6i.large", "m6i.large", "t3.medium", "p4d.24xlarge", "x2iedn.xlarge"])("%s is accepted", (type) => {
    expect(instanceTypeProblem(type)).toBeUndefined();
  });

  test("burstable and unknown families get a warning, not an error", () => {
    expect(instanceTypeWarning("t3.medium")).toMatch(/burstable/);
    expect(instanceTypeWarning("p4d.24xlarge")).toMatch(/unknown family/);
    expect(instanceTypeWarning(DEFAULT_INSTANCE_TYPE)).toBeUndefined();
  });

  test("Graviton types are arm64, the rest x86_64", () => {
    expect(instanceArchitecture("m7g.large")).toBe("arm64");
    expect(instanceArchitecture("g5g.xlarge")).toBe("arm64");
    expect(instanceArchitecture("g5.xlarge")).toBe("x86_64");
    expect(instanceArchitecture("m7i-flex.large")).toBe("x86_64");
  });
});

describe("AMI lookup", () => {
  test("Ubuntu 24.04 from Canonical's account, matching architecture", () => {
    expect(amiQuery("ubuntu-24.04", "arm64")).toEqual({
      owners: ["099720109477"],
      mostRecent: true,
      filters: [
        { name: "name", values: ["ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-*"] },
        { name: "architecture", values: ["arm64"] },
        { name: "virtualization-type", values: ["hvm"] },
        { name: "root-device-type", values: ["ebs"] },
      ],
    });
  });

  test("Debian 12 from Debian's account", () => {
    const q = amiQuery("debian-12", "x86_64");
    expect(q.owners).toEqual(["136693071363"]);
    expect(q.filters[0]).toEqual({ name: "name", values: ["debian-12-amd64-*"] });
  });

  test("login users", () => {
    expect(defaultLoginUser("ubuntu-24.04")).toBe("ubuntu");
    expect(defaultLoginUser("debian-12")).toBe("admin");
  });
});
