/** markSecrets: the listed inputs become secret; a listed input the schema lacks is an error naming the fix. */
import { markSecrets, secretPaths, type PackageSchema } from "../../provider/schemaSecrets";

const derived = (): PackageSchema => ({
  name: "smart-mirror",
  resources: { "smart-mirror:index:SmartMirror": { inputProperties: { host: { $ref: "#/types/smart-mirror:index:Host" } } } },
  types: {
    "smart-mirror:index:ExistingHost": { type: "object", properties: { address: { type: "string" }, privateKey: { type: "string" } } },
    "smart-mirror:index:Primary": { type: "object", properties: { catalogToken: { type: "string" }, url: { type: "string" } } },
  },
});

test("marks exactly the listed properties, without touching the input", () => {
  const input = derived();
  const out = markSecrets(input, { ExistingHost: ["privateKey"], Primary: ["catalogToken"] });
  expect(secretPaths(out)).toEqual(["ExistingHost.privateKey", "Primary.catalogToken"]);
  expect(secretPaths(input)).toEqual([]);
  expect(out.types["smart-mirror:index:Primary"].properties?.url).toEqual({ type: "string" });
});

test("a listed secret the derived schema lacks (a renamed argument) is an error naming every one and the fix", () => {
  expect(() => markSecrets(derived(), { ExistingHost: ["privateKey", "sshKey"], Bastion: ["privateKey"] })).toThrow(
    "secret inputs missing from the derived schema: ExistingHost.sshKey, Bastion.privateKey — update SECRET_INPUTS in components/args.ts to the argument types",
  );
});
