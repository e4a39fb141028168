/**
 * The per-region program under Pulumi mocks, fed the example stack file eu-west-1 as Pulumi
 * would feed it: it builds one SmartMirror under a stable name (aliased to the stack name it
 * had before) and exports the outputs the README's table lists.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { allAliases } from "@pulumi/pulumi/resource";
import { tempDir, waitFor } from "../testbed/resources";
import { installMocks, promiseOf } from "../testbed/pulumiMocks";
import { asPulumiConfig, readStackConfig } from "../testbed/stackFiles";

const world = installMocks();

/** The names in the first column of the README's "Stack outputs" table. */
export function readmeOutputs(readme: string): string[] {
  const section = readme.split(/^### Stack outputs$/m)[1];
  if (section === undefined) throw new Error('README.md has no "### Stack outputs" section');
  const table = section.split(/\n\s*\n/).find((block) => block.trimStart().startsWith("|"));
  if (!table) throw new Error('README.md "### Stack outputs" has no table');
  return table
    .split("\n")
    .map((l) => /^\|\s*`([A-Za-z0-9_]+)`\s*\|/.exec(l)?.[1])
    .filter((n): n is string => n !== undefined);
}

/** Every resource the program's SmartMirror registers (itself included), with its options. */
const mockSeen: Array<{ type: string; name: string; opts: pulumi.ResourceOptions; resource: pulumi.Resource }> = [];
jest.mock("../components", () => {
  const actual = jest.requireActual("../components") as typeof import("../components");
  class RecordedSmartMirror extends actual.SmartMirror {
    constructor(name: string, args: ConstructorParameters<typeof actual.SmartMirror>[1], opts: pulumi.ComponentResourceOptions = {}) {
      const record: pulumi.ResourceTransformation = (a) => void mockSeen.push({ type: a.type, name: a.name, opts: a.opts, resource: a.resource });
      super(name, args, { ...opts, transformations: [...(opts.transformations ?? []), record] });
    }
  }
  return { ...actual, SmartMirror: RecordedSmartMirror };
});
const seen = mockSeen;
let program: Record<string, pulumi.Output<unknown>>;

beforeAll(() => {
  const bundle = path.join(tempDir("infra-bundle"), "smart-mirror.js");
  fs.writeFileSync(bundle, "// bundle\n");
  const config = asPulumiConfig(readStackConfig("eu-west-1"));
  config["smart-mirror:deploy"] = JSON.stringify({ bundlePath: bundle });
  config["smart-mirror:catalogToken"] = "BBDC-token";
  pulumi.runtime.setAllConfig(config, ["smart-mirror:catalogToken"]);
  // Required only now: the program reads its configuration when it loads.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  program = require("./index") as Record<string, pulumi.Output<unknown>>;
});

test("pulumi up -s eu-west-1: one mirror, the contract outputs", async () => {
  for (const k of ["mirrorUrl", "cloneUrlTemplate", "statusUrl", "syncPublicKey", "hostAddress"]) expect(Object.keys(program)).toContain(k);
  expect(await promiseOf(program.mirrorUrl)).toBe("https://mirror-dub.example.com");
  expect(await promiseOf(program.cloneUrlTemplate)).toBe("https://mirror-dub.example.com/scm/{PROJECT}/{repo}.git");
  expect(await promiseOf(program.statusUrl)).toBe("https://mirror-dub.example.com/status");
  expect(await promiseOf(program.syncPublicKey)).toMatch(/^ssh-ed25519 /);
  expect(await promiseOf(program.hostAddress)).toBe("198.51.100.7");
  expect(await promiseOf(program.globalUrl)).toBe("https://git.example.com");
  expect(await promiseOf(program.propertiesText)).toContain("setup.baseUrl=https://mirror-dub.example.com\n");

  // The global record's region comes from the stack file.
  await waitFor("the latency record", () => world.resources.some((r) => r.name.endsWith("-dns-global")), 60000);
  const global = world.resources.find((r) => r.name.endsWith("-dns-global"));
  expect(global?.inputs.setIdentifier).toBe("eu-west-1");
  // No access-key registration without its token.
  expect(world.resources.filter((r) => r.type === "command:local:Command")).toEqual([]);
});

test("the README's outputs table and the program's exports are the same set", () => {
  const documented = readmeOutputs(fs.readFileSync(path.join(__dirname, "..", "README.md"), "utf8"));
  expect(documented).toContain("mirrorUrl");
  expect([...documented].sort()).toEqual(Object.keys(program).sort());
});

test("pulumi stack rename: the component's name does not follow the stack, and the stack-named resources of older stacks are aliased", async () => {
  const component = seen.find((r) => r.type === "smart-mirror:index:SmartMirror");
  if (!component) throw new Error("no SmartMirror registered");
  // A rename changes getStack() ("test" under mocks); the component's name must not depend on it.
  expect(component.name).not.toBe(pulumi.getStack());
  expect(component.name).toBe("mirror");
  expect(component.opts.aliases).toEqual([{ name: pulumi.getStack() }]);

  // Every child is named "<component>-...", so it inherits the alias: the engine maps
  // "<stack>-sg" (how stacks made before this were named) onto "mirror-sg" instead of replacing it.
  const project = pulumi.getProject();
  const stack = pulumi.getStack();
  const children = seen.filter((r) => r.opts.parent === component.resource);
  expect(children.length).toBeGreaterThan(10);
  for (const c of children) expect(c.name.startsWith(`${component.name}-`)).toBe(true);
  const sg = children.find((c) => c.type === "aws:ec2/securityGroup:SecurityGroup");
  if (!sg) throw new Error("no security group");
  const aliasUrns = await Promise.all(allAliases([], sg.name, sg.type, component.resource, component.name).map((u) => promiseOf(u)));
  expect(aliasUrns).toContain(`urn:pulumi:${stack}::${project}::smart-mirror:index:SmartMirror$aws:ec2/securityGroup:SecurityGroup::${stack}-sg`);
});
