/**
 * EC2 instance sizing, decided from the type name alone (pure: no API call at preview time).
 *
 * Why the default is m6i.xlarge (4 vCPU, 16 GiB): a mirror's load is serving clones and
 * fetches. `git upload-pack` runs one `pack-objects` per clone; with the daemon's daily repack
 * (bitmaps) most of a full clone is reused pack data, but every fetch and every clone of
 * recently pushed history compresses and delta-searches objects on a CPU (pack.threads defaults
 * to the number of CPUs), and a CI fleet starts many at once. Memory matters twice: each
 * pack-objects holds its object list and delta window (hundreds of MiB for large repositories),
 * and what is left becomes page cache, which is what makes repeated clones of hot repositories
 * fast. 4 balanced vCPUs and 16 GiB serve tens of concurrent clones of mid-sized repositories
 * without swapping; the sync daemon and nginx themselves need well under 1 GiB.
 *
 * The minimum is 2 vCPU and 4 GiB: below that, one large clone can take the only CPU or push
 * the daemon into OOM, which stalls syncing for every repository. Burstable (t*) types meet it
 * nominally but run out of CPU credits under sustained pack generation, so they only get a warning.
 */

export const DEFAULT_INSTANCE_TYPE = "m6i.xlarge";
export const MINIMUM_VCPU = 2;
export const MINIMUM_MEMORY_GIB = 4;

export interface InstanceShape {
  vcpu: number;
  memoryGiB: number;
  burstable: boolean;
  arch: "x86_64" | "arm64";
}

// Memory per vCPU of the common families (GiB), from the EC2 instance type pages.
const GIB_PER_VCPU: Record<string, number> = { c: 2, m: 4, r: 8, x: 16, z: 8, i: 8, im: 4, is: 6, d: 8, a: 2, h: 4 };

// Burstable families: [vCPU, GiB] per size (t2 has 1 vCPU up to small).
const T_SIZES: Record<string, [number, number]> = {
  nano: [2, 0.5],
  micro: [2, 1],
  small: [2, 2],
  medium: [2, 4],
  large: [2, 8],
  xlarge: [4, 16],
  "2xlarge": [8, 32],
};

const TYPE_RE = /^([a-z]+)(\d+)([a-z-]*)\.([a-z0-9]+)$/;

/** Graviton types carry a "g" in their attributes (m6g, c7gn, t4g, im4gn, x2gd, g5g); a1 is Graviton 1. */
export function instanceArchitecture(type: string): "x86_64" | "arm64" {
  const m = TYPE_RE.exec(type);
  if (!m) return "x86_64";
  const [, family, generation, attrs] = m;
  return attrs.includes("g") || (family === "a" && generation === "1") ? "arm64" : "x86_64";
}

function vcpuOfSize(size: string): number | undefined {
  if (size === "medium") return 1;
  if (size === "large") return 2;
  if (size === "xlarge") return 4;
  const n = /^(\d+)xlarge$/.exec(size);
  if (n) return 4 * Number(n[1]);
  if (size === "metal") return 64; // every metal type is far above the minimum
  return undefined;
}

/** vCPU and memory of a type, or undefined when the name is not one of the families we know. */
export function instanceShape(type: string): InstanceShape | undefined {
  const m = TYPE_RE.exec(type);
  if (!m) return undefined;
  const [, family, generation, , size] = m;
  const arch = instanceArchitecture(type);
  if (family === "t") {
    const s = T_SIZES[size];
    if (!s) return undefined;
    const vcpu = generation === "2" && ["nano", "micro", "small"].includes(size) ? 1 : s[0];
    return { vcpu, memoryGiB: s[1], burstable: true, arch };
  }
  const perVcpu = GIB_PER_VCPU[family];
  const vcpu = vcpuOfSize(size);
  if (perVcpu === undefined || vcpu === undefined) return undefined;
  return { vcpu, memoryGiB: vcpu * perVcpu, burstable: false, arch };
}

/** Why a type is refused (below the minimum, or not an instance type name at all) and what to use; undefined when acceptable. */
export function instanceTypeProblem(type: string): { message: string; fix: string } | undefined {
  if (!TYPE_RE.test(type)) {
    return { message: `"${type}" is not an EC2 instance type name`, fix: `write family.size, e.g. ${DEFAULT_INSTANCE_TYPE} (the default)` };
  }
  const shape = instanceShape(type);
  if (!shape) return undefined;
  if (shape.vcpu < MINIMUM_VCPU || shape.memoryGiB < MINIMUM_MEMORY_GIB) {
    return {
      message: `"${type}" has ${shape.vcpu} vCPU and ${shape.memoryGiB} GiB, below the minimum of ${MINIMUM_VCPU} vCPU and ${MINIMUM_MEMORY_GIB} GiB (pack generation for clones needs CPU and memory)`,
      fix: `use ${DEFAULT_INSTANCE_TYPE} (the default), or at least c6i.large / m6i.large`,
    };
  }
  return undefined;
}

/** Advice that does not stop the deployment (burstable types, unknown families). */
export function instanceTypeWarning(type: string): string | undefined {
  if (!TYPE_RE.test(type)) return undefined;
  const shape = instanceShape(type);
  if (!shape) return `host.instanceType "${type}": unknown family, its size cannot be checked against the minimum of ${MINIMUM_VCPU} vCPU / ${MINIMUM_MEMORY_GIB} GiB`;
  if (shape.burstable) {
    return `host.instanceType "${type}" is burstable: sustained pack generation exhausts its CPU credits and clones slow to a crawl; prefer ${DEFAULT_INSTANCE_TYPE}`;
  }
  return undefined;
}
