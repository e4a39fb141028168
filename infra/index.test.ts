/**
 * The per-region program under Pulumi mocks, fed the example stack file eu-west-1 as Pulumi
 * would feed it: it builds one SmartMirror named after the stack and exports the contract
 * outputs.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { tempDir, waitFor } from "../test/bench/resources";
import { installMocks, promiseOf } from "../components/testing/mocks";
import { asPulumiConfig, readStackConfig } from "./stackFiles";

const world = installMocks();

test("pulumi up -s eu-west-1: one mirror, the five contract outputs", async () => {
  const bundle = path.join(tempDir("infra-bundle"), "smart-mirror.js");
  fs.writeFileSync(bundle, "// bundle\n");
  const config = asPulumiConfig(readStackConfig("eu-west-1"));
  config["smart-mirror:deploy"] = JSON.stringify({ bundlePath: bundle });
  config["smart-mirror:catalogToken"] = "BBDC-token";
  pulumi.runtime.setAllConfig(config, ["smart-mirror:catalogToken"]);

  // Required only now: the program reads its configuration when it loads.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const program = require("./index") as Record<string, pulumi.Output<unknown>>;

  expect(Object.keys(program).sort()).toEqual(["caCertificatePem", "cloneUrlTemplate", "globalUrl", "hostAddress", "mirrorUrl", "statusUrl", "syncPublicKey"].sort());
  expect(await promiseOf(program.mirrorUrl)).toBe("https://mirror-dub.example.com");
  expect(await promiseOf(program.cloneUrlTemplate)).toBe("https://mirror-dub.example.com/scm/{PROJECT}/{repo}.git");
  expect(await promiseOf(program.statusUrl)).toBe("https://mirror-dub.example.com/status");
  expect(await promiseOf(program.syncPublicKey)).toMatch(/^ssh-ed25519 /);
  expect(await promiseOf(program.hostAddress)).toBe("198.51.100.7");
  expect(await promiseOf(program.globalUrl)).toBe("https://git.example.com");

  // Named after the stack ("test" under mocks); the global record's region comes from the stack file.
  await waitFor("the latency record", () => world.resources.some((r) => r.name.endsWith("-dns-global")), 60000);
  const component = world.resources.find((r) => r.type === "smart-mirror:index:SmartMirror");
  expect(component?.name).toBe(pulumi.getStack());
  const global = world.resources.find((r) => r.name.endsWith("-dns-global"));
  expect(global?.inputs.setIdentifier).toBe("eu-west-1");
  // No access-key registration without its token.
  expect(world.resources.filter((r) => r.type === "command:local:Command")).toEqual([]);
});
