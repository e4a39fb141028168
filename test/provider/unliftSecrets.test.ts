/** The provider re-marks the schema's secret fields of an object input the SDK lifted to one secret. */
import * as pulumi from "@pulumi/pulumi";
import { remarkSecrets, secretInputPaths, unliftSecretObjects } from "../../provider/unliftSecrets";

const secretNow = async (v: unknown) => pulumi.Output.isInstance(v) && (await pulumi.isSecret(v));

test("every secret field of the schema has its path in the inputs", () => {
  expect(secretInputPaths().sort()).toEqual(
    [
      "host.aws.ssh.bastion.privateKey",
      "host.existing.bastion.privateKey",
      "host.existing.privateKey",
      "mirror.cloneTokens",
      "mirror.events.secret",
      "mirror.webhookSecret",
      "primary.catalogToken",
      "registerAccessKey.token",
      "tls.acme.route53Config",
      "tls.provided.privateKeyPem",
    ].sort(),
  );
});

test("a lifted mirror keeps the events' secret secret and their URLs plain", async () => {
  const lifted = pulumi.secret({ projects: ["PROJ"], events: { urls: ["https://ci.example.com/h"], secret: "evsec-0123456789abcdef" } });
  const { mirror } = (await unliftSecretObjects({ mirror: lifted })) as { mirror: { projects: string[]; events: { urls: string[]; secret: unknown } } };
  expect(await secretNow(mirror.events.secret)).toBe(true);
  expect(mirror.events.urls).toEqual(["https://ci.example.com/h"]);
  expect(mirror.projects).toEqual(["PROJ"]);
});

test("a lifted host becomes an object again: secret fields secret, the rest plain, absent ones absent", async () => {
  const lifted = pulumi.secret({ existing: { address: "10.0.0.1", hostKey: "ssh-ed25519 AAAA", privateKey: "KEY", bastion: { host: "b", user: "u", privateKey: "BKEY" } } });
  const { host } = (await unliftSecretObjects({ host: lifted, domainName: "m.example.com" })) as { host: { existing: Record<string, unknown> & { bastion: Record<string, unknown> } } };
  expect(await secretNow(host.existing.privateKey)).toBe(true);
  expect(await secretNow(host.existing.bastion.privateKey)).toBe(true);
  expect(host.existing.address).toBe("10.0.0.1");
  expect(host.existing.hostKey).toBe("ssh-ed25519 AAAA");
  expect(host.existing.bastion.user).toBe("u");
  expect(remarkSecrets("host", { aws: { ssh: { adminCidrs: [] } } })).toEqual({ aws: { ssh: { adminCidrs: [] } } });
});
