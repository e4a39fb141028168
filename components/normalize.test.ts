/**
 * The two shapes of SmartMirror's arguments: host and tls read in either shape, exactly one kind
 * chosen, every problem named with its fix, and validation's paths relabelled to what the caller
 * wrote.
 */
import * as pulumi from "@pulumi/pulumi";
import type { SmartMirrorArgs } from "./args";
import { chooseKind, HOST_KINDS, inputsShape, normalizeSmartMirrorArgs, relabelProblem, TLS_KINDS } from "./normalize";

const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n";
const AWS = { subnetId: "subnet-0abc", ssh: { adminCidrs: ["203.0.113.7/32"] } };
const EXISTING = { address: "10.0.0.5", privateKey: KEY, hostKey: "ssh-ed25519 AAAA" };

describe("chooseKind: host", () => {
  test.each([
    ["kind shape, aws", { kind: "aws", ...AWS }, { kind: "aws", ...AWS }, "host"],
    ["kind shape, existing", { kind: "existing", ...EXISTING }, { kind: "existing", ...EXISTING }, "host"],
    ["any-language shape, aws", { aws: AWS }, { kind: "aws", ...AWS }, "host.aws"],
    ["any-language shape, existing", { existing: EXISTING }, { kind: "existing", ...EXISTING }, "host.existing"],
    ["an explicitly unset other kind (null, as other languages send it)", { aws: AWS, existing: null }, { kind: "aws", ...AWS }, "host.aws"],
    ["kind: undefined falls back to the any-language shape", { kind: undefined, existing: EXISTING }, { kind: "existing", ...EXISTING }, "host.existing"],
  ])("%s", (_name, raw, value, path) => {
    const c = chooseKind("host", raw, HOST_KINDS, "EXAMPLE");
    expect(c.problem).toBeUndefined();
    expect(c.value).toEqual(value);
    expect(c.path).toBe(path);
  });

  test.each([
    ["missing", undefined, /^host: is required — set exactly one of host\.aws, host\.existing, e\.g\. EXAMPLE$/],
    ["not an object", "aws", /^host: is required/],
    ["an array", [AWS], /^host: is required/],
    ["no kind at all (kind shape without kind)", { ...AWS }, /^host: sets none of host\.aws, host\.existing — set exactly one, e\.g\. EXAMPLE$/],
    ["empty object", {}, /^host: sets none of/],
    ["both kinds", { aws: AWS, existing: EXISTING }, /^host: sets host\.aws and host\.existing — keep exactly one of host\.aws, host\.existing$/],
    ["unknown kind", { kind: "gcp" }, /^host\.kind: "gcp" is not one of "aws", "existing" — set exactly one of host\.aws, host\.existing/],
    ["both shapes at once", { kind: "aws", ...AWS, existing: EXISTING }, /^host: mixes kind "aws" with host\.existing — use one shape: host\.aws: \{ \.\.\. \} without kind, or kind: "aws" with the fields beside it$/],
    ["a kind's settings that are not an object", { aws: "subnet-0abc" }, /^host\.aws: must be a plain object of its settings — e\.g\. EXAMPLE$/],
    ["an Output in place of the object", pulumi.output({ aws: AWS }), /^host: is an Output, but its kind decides which resources exist — pass a plain object/],
  ])("%s: refused, naming the fix", (_name, raw, says) => {
    const c = chooseKind("host", raw, HOST_KINDS, "EXAMPLE");
    expect(c.value).toBeUndefined();
    expect(c.problem).toMatch(says);
  });
});

describe("normalizeSmartMirrorArgs", () => {
  const base = (): SmartMirrorArgs => ({
    displayName: "Sydney mirror",
    domainName: "mirror-syd.example.com",
    primary: { url: "https://bitbucket.example.com", sshUrl: "ssh://git@bitbucket.example.com:7999", hostKeys: ["ssh-ed25519 AAAA"], repos: ["P/r"] },
    host: { kind: "aws", ...AWS },
    tls: { kind: "acme", email: "ops@example.com" },
    mirror: { projects: "ALL", auth: "tokens", cloneTokens: ["t"] },
  });

  test("the kind shape passes through unchanged", () => {
    const n = normalizeSmartMirrorArgs(base());
    expect(n.problems).toEqual([]);
    expect(n.args).toEqual(base());
    expect(n.paths).toEqual({ host: "host", tls: "tls" });
  });

  test.each([
    ["aws + acme", base()],
    ["existing + provided", { ...base(), host: { kind: "existing", ...EXISTING }, tls: { kind: "provided", certificatePem: "C", privateKeyPem: "K" } } as SmartMirrorArgs],
    ["aws + privateCa, projects listed", { ...base(), tls: { kind: "privateCa", clientsTrustPrivateCa: true }, mirror: { projects: ["PROJ"] } } as SmartMirrorArgs],
  ])("the any-language shape of %s normalizes to the same arguments", (_name, kindShape) => {
    const inputs = inputsShape(kindShape);
    expect(inputs.host).not.toHaveProperty("kind");
    expect(inputs.tls).not.toHaveProperty("kind");
    const n = normalizeSmartMirrorArgs(inputs);
    expect(n.problems).toEqual([]);
    const expected = kindShape.mirror?.projects === "ALL" ? { ...kindShape, mirror: { ...kindShape.mirror, projects: undefined } } : kindShape;
    expect(n.args).toEqual(expected);
    expect(n.paths).toEqual({ host: `host.${(kindShape.host as { kind: string }).kind}`, tls: `tls.${(kindShape.tls as { kind: string }).kind}` });
  });

  test("host and tls problems are reported together; the input is not modified", () => {
    const a = { ...base(), host: {}, tls: { acme: {}, privateCa: { clientsTrustPrivateCa: true } } } as unknown as SmartMirrorArgs;
    const before = JSON.stringify(a);
    const n = normalizeSmartMirrorArgs(a);
    expect(n.problems).toEqual([expect.stringMatching(/^host: sets none of/), expect.stringMatching(/^tls: sets tls\.acme and tls\.privateCa — keep exactly one of tls\.acme, tls\.provided, tls\.privateCa$/)]);
    expect(n.args.host).toBeUndefined();
    expect(n.args.tls).toBeUndefined();
    expect(JSON.stringify(a)).toBe(before);
  });

  test("TLS kinds are the three the component builds", () => {
    expect(chooseKind("tls", { privateCa: { clientsTrustPrivateCa: true } }, TLS_KINDS, "E").value).toEqual({ kind: "privateCa", clientsTrustPrivateCa: true });
    expect(chooseKind("tls", { acme: {} }, TLS_KINDS, "E").value).toEqual({ kind: "acme" });
  });
});

describe("relabelProblem", () => {
  const any = { host: "host.aws", tls: "tls.acme" };
  test.each([
    ["host.subnetId: is required — set host.subnetId to a subnet", any, "host.aws.subnetId: is required — set host.aws.subnetId to a subnet"],
    ["host.ssh.bastion.user: is required — set the SSH user", any, "host.aws.ssh.bastion.user: is required — set the SSH user"],
    ['mirror.auth: "anonymous" on a host open to the internet (host.allowedCidrs) — restrict host.allowedCidrs', any, 'mirror.auth: "anonymous" on a host open to the internet (host.aws.allowedCidrs) — restrict host.aws.allowedCidrs'],
    ["tls: no zone is given — set dns.zoneId, or tls.zoneId", any, "tls: no zone is given — set dns.zoneId, or tls.acme.zoneId"],
    ["host.aws.subnetId: already relabelled", any, "host.aws.subnetId: already relabelled"],
    ["ssh-keyscan -t ed25519 HOST; the host. ends a sentence", any, "ssh-keyscan -t ed25519 HOST; the host. ends a sentence"],
    ["mirror.example.host.com stays a name", any, "mirror.example.host.com stays a name"],
    ["host.subnetId: in the kind shape nothing changes", { host: "host", tls: "tls" }, "host.subnetId: in the kind shape nothing changes"],
  ])("%s", (problem, paths, expected) => {
    expect(relabelProblem(problem, paths)).toBe(expected);
  });
});
