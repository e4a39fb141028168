/**
 * SmartMirror built by the package's plugin, the way a Python, Go, .NET or YAML stack gets it:
 * the engine starts the plugin (test/provider/plugin.ts) with its own address, calls Configure,
 * then Construct with the inputs the other language's SDK sent to the engine, and the plugin
 * registers the component's children with the engine's ResourceMonitor - here the recording
 * engine of test/pulumi, which answers with the shared cloud fakes.
 *
 * The inputs are encoded as the engine encodes them for a provider that accepts secrets and
 * output values (sdk/go/common/resource/plugin/provider_plugin.go Construct: KeepSecrets,
 * KeepUnknowns, KeepOutputValues): the any-language shape (host.existing, tls.privateCa), secrets
 * wrapped in the secret signature, and one input as an output value carrying its dependency.
 */
import * as grpc from "@grpc/grpc-js";
import * as structproto from "google-protobuf/google/protobuf/struct_pb";
import { ConfigureRequest, type ConfigureResponse, ConstructRequest, type ConstructResponse } from "@pulumi/pulumi/proto/provider_pb";
import { tempDir } from "../../testbed/resources";
import { leaks, plainParts } from "../pulumi/lifecycle";
import { isSecret, RecordingEngine, ROOT_STACK_TYPE, secret, SIG_KEY, type Recording, type Registration } from "../pulumi/recordingEngine";
import { call, PACKAGE_ROOT, startPlugin, type RunningPlugin } from "./plugin";

const PROJECT = "smart-mirror-yaml";
const STACK = "syd";
const TOKEN = "smart-mirror:index:SmartMirror";
const STACK_URN = `urn:pulumi:${STACK}::${PROJECT}::${ROOT_STACK_TYPE}::${PROJECT}-${STACK}`;
/** sdk/nodejs/runtime/rpc.ts specialOutputValueSig: an Output with its value, secretness and dependencies. */
const OUTPUT_VALUE_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4";
/** A resource of the calling program that the host address comes from (e.g. its VM). */
const HOST_RESOURCE_URN = `urn:pulumi:${STACK}::${PROJECT}::aws:ec2/instance:Instance::mirror-vm`;

/** The secret inputs' plain values: none may appear outside a secret wrapper anywhere. */
const SECRETS = {
  hostPrivateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nY29uc3RydWN0LXRlc3QtZGVwbG95LWtleQ==\n-----END OPENSSH PRIVATE KEY-----\n",
  catalogToken: "BBDC-construct-catalog-token-7f3a",
  webhookSecret: "construct-webhook-hmac-91c2",
  cloneToken: "construct-clone-token-5d8e",
  registerToken: "BBDC-construct-admin-token-2b6c",
};

const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ5dGVzYnl0ZXNieXRlc2J5dGVzYnl0ZXNieXRlc2J5";

/** An output value as the engine forwards it (known here: an update). */
function outputValue(value: unknown, dependencies: string[]): Record<string, unknown> {
  return { [SIG_KEY]: OUTPUT_VALUE_SIG, value, dependencies };
}

/** SmartMirror's inputs as a YAML program sends them (examples/yaml), config secrets still secret. */
function yamlInputs(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    displayName: "Sydney mirror",
    domainName: "mirror-syd.example.com",
    primary: {
      url: "https://bitbucket.example.com",
      sshUrl: "ssh://git@bitbucket.example.com:7999",
      hostKeys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMLSLrCXW0pcoxGUW/EJTuGUPZLoE6StPXIw8GBCqaZE"],
      catalogToken: secret(SECRETS.catalogToken),
    },
    host: {
      existing: {
        address: outputValue("10.20.0.7", [HOST_RESOURCE_URN]),
        user: "root",
        privateKey: secret(SECRETS.hostPrivateKey),
        hostKey: HOST_KEY,
      },
    },
    tls: { privateCa: { clientsTrustPrivateCa: true, organization: "Example Corp" } },
    mirror: { projects: ["PROJ", "OPS"], auth: "tokens", cloneTokens: secret([SECRETS.cloneToken]), webhookSecret: secret(SECRETS.webhookSecret) },
    registerAccessKey: { token: secret(SECRETS.registerToken) },
    ...overrides,
  };
}

function constructRequest(name: string, inputs: Record<string, unknown>, monitor: string): ConstructRequest {
  const req = new ConstructRequest();
  req.setProject(PROJECT);
  req.setStack(STACK);
  req.setDryrun(false);
  req.setParallel(16);
  req.setMonitorendpoint(monitor);
  req.setType(TOKEN);
  req.setName(name);
  req.setParent(STACK_URN);
  req.setInputs(structproto.Struct.fromJavaScript(inputs as Record<string, structproto.JavaScriptValue>));
  req.setAcceptsOutputValues(true);
  // The engine sends the stack's config decrypted, with the names of the secret keys beside it.
  req.getConfigMap().set("aws:region", "ap-southeast-2");
  req.getConfigMap().set(`${PROJECT}:hostPrivateKey`, SECRETS.hostPrivateKey);
  req.setConfigsecretkeysList([`${PROJECT}:hostPrivateKey`]);
  // host.address depends on the program's VM: the engine passes the input's dependencies.
  req.getInputdependenciesMap().set("host", new ConstructRequest.PropertyDependencies().setUrnsList([HOST_RESOURCE_URN]));
  return req;
}

let engine: RecordingEngine;
let plugin: RunningPlugin;
let configured: ConfigureResponse;

beforeAll(async () => {
  engine = await RecordingEngine.start({ project: PROJECT, stack: STACK });
  plugin = await startPlugin(PACKAGE_ROOT, tempDir("construct-user-project"), [engine.address]);
  const req = new ConfigureRequest();
  req.setArgs(structproto.Struct.fromJavaScript({}));
  req.setAcceptsecrets(true);
  req.setAcceptresources(true);
  configured = await call<ConfigureRequest, ConfigureResponse>(plugin.client.configure.bind(plugin.client), req);
}, 300_000);

afterAll(async () => {
  await plugin?.stop();
  await engine?.close();
});

async function construct(name: string, inputs: Record<string, unknown>): Promise<{ res: ConstructResponse; rec: Recording }> {
  const rec = engine.begin(false);
  const res = await call<ConstructRequest, ConstructResponse>(plugin.client.construct.bind(plugin.client), constructRequest(name, inputs, engine.address));
  return { res, rec };
}

/** A state value: an output value's `value`, or the value itself. */
function unwrap(v: unknown): unknown {
  return v && typeof v === "object" && (v as Record<string, unknown>)[SIG_KEY] === OUTPUT_VALUE_SIG ? (v as Record<string, unknown>).value : v;
}

/** The value at a dotted path of a registration's inputs. */
function at(reg: Registration, dotted: string): unknown {
  return dotted.split(".").reduce<unknown>((v, k) => (v && typeof v === "object" ? (v as Record<string, unknown>)[k] : undefined), reg.inputs);
}

test("Configure: the provider takes secrets, resource references and output values", () => {
  expect(configured.getAcceptsecrets()).toBe(true);
  expect(configured.getAcceptresources()).toBe(true);
  expect(configured.getAcceptoutputs()).toBe(true);
});

describe("Construct with the any-language inputs (existing host, private CA, secrets, an output value)", () => {
  let res: ConstructResponse;
  let rec: Recording;
  let componentUrn: string;
  let state: Record<string, unknown>;

  beforeAll(async () => {
    ({ res, rec } = await construct("mirror", yamlInputs()));
    componentUrn = res.getUrn();
    state = res.getState()?.toJavaScript() as Record<string, unknown>;
  }, 120_000);

  test("registers the component under the stack and its children under the component", () => {
    expect(componentUrn).toBe(`urn:pulumi:${STACK}::${PROJECT}::${TOKEN}::mirror`);
    const component = rec.registrations.find((r) => r.urn === componentUrn);
    expect(component).toMatchObject({ type: TOKEN, parent: STACK_URN, custom: false });
    const childTypes = new Set(rec.registrations.filter((r) => r.parent === componentUrn).map((r) => r.type));
    for (const t of ["tls:index/privateKey:PrivateKey", "tls:index/selfSignedCert:SelfSignedCert", "tls:index/locallySignedCert:LocallySignedCert", "command:remote:Command"]) expect(childTypes).toContain(t);
    // Nothing is registered outside the component (no stray resources at the stack's root).
    const urns = new Set(rec.registrations.map((r) => r.urn));
    const orphans = rec.registrations.filter((r) => r.urn !== componentUrn && !urns.has(r.parent) && r.parent !== componentUrn);
    expect(orphans.map((r) => r.urn)).toEqual([]);
    expect(rec.logs.filter((l) => l.severity === "error")).toEqual([]);
  });

  test("secret inputs reach the children still secret; no plaintext anywhere the engine records", () => {
    const values = [SECRETS.hostPrivateKey.trim(), SECRETS.catalogToken, SECRETS.webhookSecret, SECRETS.cloneToken, SECRETS.registerToken];
    expect(leaks(rec, values)).toEqual([]);
    const response = JSON.stringify(plainParts(state));
    for (const v of values) expect(response).not.toContain(v);
    // The deploy's SSH connection carries the deploy key, as a secret.
    const commands = rec.registrations.filter((r) => r.type === "command:remote:Command" && r.parent === componentUrn);
    expect(commands.length).toBeGreaterThan(0);
    for (const c of commands) {
      const key = at(c, "connection");
      expect([c.name, isSecret(key) || isSecret(at(c, "connection.privateKey"))]).toEqual([c.name, true]);
    }
    // The secrets really travelled (wrapped), so the check above is not vacuous.
    const wire = JSON.stringify(rec.registrations.map((r) => r.inputs));
    expect(wire).toContain(JSON.stringify(SECRETS.registerToken).slice(1, -1));
  });

  test("the host address (an output value) is used, with its dependency on the program's resource", () => {
    const deploys = rec.registrations.filter((r) => r.type === "command:remote:Command" && r.parent === componentUrn);
    expect(deploys.some((d) => JSON.stringify(d.inputs).includes("10.20.0.7"))).toBe(true);
    expect(deploys.some((d) => d.dependencies.includes(HOST_RESOURCE_URN))).toBe(true);
  });

  test("returns the outputs: URLs, sync key, host address, properties, CA certificate", () => {
    const out = Object.fromEntries(Object.entries(state).map(([k, v]) => [k, unwrap(v)]));
    expect(out).toMatchObject({
      mirrorUrl: "https://mirror-syd.example.com",
      cloneUrlTemplate: "https://mirror-syd.example.com/scm/{PROJECT}/{repo}.git",
      statusUrl: "https://mirror-syd.example.com/status",
      hostAddress: "10.20.0.7",
    });
    expect(out.syncPublicKey).toMatch(/^ssh-ed25519 AAAA\S+$/);
    expect(out.propertiesText).toMatch(/^setup\.displayName=Sydney mirror$/m);
    expect(out.propertiesText).toMatch(/^plugin\.mirroring\.upstream\.url=https:\/\/bitbucket\.example\.com$/m);
    expect(out.caCertificatePem).toMatch(/-----BEGIN CERTIFICATE-----/);
    expect(typeof out.deploySummary).toBe("string");
    // The state's outputs name what they depend on, so the engine orders dependents after the deploy.
    expect([...res.getStatedependenciesMap().keys()].sort()).toEqual(expect.arrayContaining(["hostAddress", "syncPublicKey"]));
  });
});

test("Construct with both host.aws and host.existing fails, naming the fix, and registers nothing", async () => {
  const both = yamlInputs({
    host: {
      aws: { subnetId: "subnet-0123456789abcdef0", ssh: { adminCidrs: ["203.0.113.7/32"] } },
      existing: { address: "10.20.0.7", privateKey: secret(SECRETS.hostPrivateKey), hostKey: HOST_KEY },
    },
  });
  const err = await construct("broken", both).then(
    () => undefined,
    (e: grpc.ServiceError) => e,
  );
  expect(err).toBeDefined();
  expect(err?.details).toMatch(/host: sets host\.aws and host\.existing .*keep exactly one of/);
  expect(err?.details).not.toContain(SECRETS.hostPrivateKey.trim());
  expect(engine.recording.registrations).toEqual([]);
}, 120_000);
