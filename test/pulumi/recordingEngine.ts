/**
 * A recording Pulumi engine for tests: the gRPC ResourceMonitor and Engine services a Pulumi
 * program (or a component provider's Construct) talks to, in the pattern of the SDK's own
 * language-host tests (sdk/nodejs/tests/runtime/langhost/run.spec.ts). It records every
 * RegisterResource, RegisterResourceOutputs, Invoke and log message exactly as they arrive on
 * the wire (secrets still wrapped in their signature objects), and answers like the engine:
 * a preview returns the inputs with every computed output unknown (absent); an update adds
 * what the cloud providers would compute, from the shared fakes (testbed/cloudFakes.ts).
 * Nothing else is faked: the program, the SDK, its serialization and the runner are real.
 */
import * as grpc from "@grpc/grpc-js";
import * as emptyproto from "google-protobuf/google/protobuf/empty_pb";
import * as structproto from "google-protobuf/google/protobuf/struct_pb";
import * as engrpc from "@pulumi/pulumi/proto/engine_grpc_pb";
import * as engproto from "@pulumi/pulumi/proto/engine_pb";
import * as provproto from "@pulumi/pulumi/proto/provider_pb";
import * as resrpc from "@pulumi/pulumi/proto/resource_grpc_pb";
import * as resproto from "@pulumi/pulumi/proto/resource_pb";
import { fakeId, fakeInvoke, fakeOutputs, fakeSecretOutputs } from "../../testbed/cloudFakes";

export const ROOT_STACK_TYPE = "pulumi:pulumi:Stack";
/** The wire signature of a secret value (sdk/nodejs/runtime/rpc.ts specialSigKey/specialSecretSig). */
export const SIG_KEY = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

export interface Registration {
  type: string;
  name: string;
  urn: string;
  /** The parent's URN ("" for the root stack). */
  parent: string;
  custom: boolean;
  /** A multi-language component (the engine would call its provider's Construct). */
  remote: boolean;
  /** The explicit provider reference `urn::id` ("" = the default provider). */
  provider: string;
  providers: Record<string, string>;
  /** The inputs as serialized by the SDK: secrets wrapped, unknowns as the unknown sentinel. */
  inputs: Record<string, unknown>;
  dependencies: string[];
  propertyDependencies: Record<string, string[]>;
  protect: boolean | undefined;
  retainOnDelete: boolean | undefined;
  deleteBeforeReplace: boolean;
  ignoreChanges: string[];
  replaceOnChanges: string[];
  additionalSecretOutputs: string[];
  aliases: unknown[];
  deletedWith: string;
  version: string;
  importId: string;
}

export interface RecordedInvoke {
  token: string;
  args: Record<string, unknown>;
  provider: string;
  version: string;
}

export type LogSeverity = "debug" | "info" | "warning" | "error";

export interface RecordedLog {
  severity: LogSeverity;
  message: string;
  urn: string;
}

/** What a provider answers for one resource: its ID and outputs (beyond the echoed inputs). */
export interface ProviderAnswer {
  id: string;
  outputs: Record<string, unknown>;
  /** Output names the provider's schema marks secret. */
  secretOutputs: string[];
}

/** The cloud side: what providers compute and what data sources answer. */
export interface CloudFakes {
  create(type: string, name: string, inputs: Record<string, unknown>): ProviderAnswer;
  /** undefined: no fake for this token (the invoke fails with a message naming it). */
  invoke(token: string, args: Record<string, unknown>): Record<string, unknown> | undefined;
}

/** The fakes of testbed/cloudFakes.ts. */
export const defaultCloudFakes: CloudFakes = {
  create: (type, name, inputs) => ({ id: fakeId(type, name), outputs: fakeOutputs(type, name, inputs), secretOutputs: fakeSecretOutputs(type) }),
  invoke: fakeInvoke,
};

export interface RecordingEngineOptions {
  project: string;
  stack: string;
  fakes?: CloudFakes;
}

/** Everything one program run sent to the engine. */
export interface Recording {
  dryRun: boolean;
  registrations: Registration[];
  /** RegisterResourceOutputs by URN (component and stack outputs), wire form. */
  outputs: Map<string, Record<string, unknown>>;
  invokes: RecordedInvoke[];
  logs: RecordedLog[];
  rootUrn: string;
}

const SEVERITIES: Record<number, LogSeverity> = {
  [engproto.LogSeverity.DEBUG]: "debug",
  [engproto.LogSeverity.INFO]: "info",
  [engproto.LogSeverity.WARNING]: "warning",
  [engproto.LogSeverity.ERROR]: "error",
};

/** Feature flags the current engine reports (pkg/resource/deploy/source_eval.go SupportsFeature). */
const SUPPORTED_FEATURES = new Set(["secrets", "resourceReferences", "outputValues", "deletedWith", "replaceWith", "aliasSpecs", "transforms", "invokeTransforms", "parameterization", "resourceHooks", "errorHooks"]);

export function secret(value: unknown): Record<string, unknown> {
  return { [SIG_KEY]: SECRET_SIG, value };
}

export function isSecret(v: unknown): boolean {
  return typeof v === "object" && v !== null && (v as Record<string, unknown>)[SIG_KEY] === SECRET_SIG;
}

/** The qualified type of a URN (`parentType$type`), used to build a child's URN the way the engine does. */
function qualifiedType(urn: string): string {
  return urn.split("::")[2] ?? "";
}

function toJs(s: structproto.Struct | undefined): Record<string, unknown> {
  return (s?.toJavaScript() ?? {}) as Record<string, unknown>;
}

function fromJs(v: Record<string, unknown>): structproto.Struct {
  return structproto.Struct.fromJavaScript(v as Record<string, structproto.JavaScriptValue>);
}

type Handler<Req, Res> = (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => void;

/**
 * Serves ResourceMonitor and Engine on one loopback port (the runner takes the same address
 * for --monitor and --engine). Start a run with begin(dryRun); read its Recording after the
 * program exits.
 */
export class RecordingEngine {
  private readonly server: grpc.Server;
  private current: Recording = RecordingEngine.emptyRecording(true);
  private readonly fakes: CloudFakes;

  private constructor(
    readonly address: string,
    server: grpc.Server,
    private readonly options: RecordingEngineOptions,
  ) {
    this.server = server;
    this.fakes = options.fakes ?? defaultCloudFakes;
  }

  static async start(options: RecordingEngineOptions): Promise<RecordingEngine> {
    const server = new grpc.Server();
    const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    const engine = new RecordingEngine(`127.0.0.1:${port}`, server, options);
    server.addService(resrpc.ResourceMonitorService, engine.monitorService());
    server.addService(engrpc.EngineService, engine.engineService());
    return engine;
  }

  private static emptyRecording(dryRun: boolean): Recording {
    return { dryRun, registrations: [], outputs: new Map(), invokes: [], logs: [], rootUrn: "" };
  }

  get project(): string {
    return this.options.project;
  }

  get stack(): string {
    return this.options.stack;
  }

  /** Starts recording a new run (preview when dryRun); returns the fresh Recording. */
  begin(dryRun: boolean): Recording {
    this.current = RecordingEngine.emptyRecording(dryRun);
    return this.current;
  }

  get recording(): Recording {
    return this.current;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
  }

  private urnOf(type: string, name: string, parent: string): string {
    const parentType = parent && qualifiedType(parent) !== ROOT_STACK_TYPE ? `${qualifiedType(parent)}$` : "";
    return `urn:pulumi:${this.options.stack}::${this.options.project}::${parentType}${type}::${name}`;
  }

  /** The engine's answer to one registration: inputs echoed, plus on update what the provider computes. */
  private answer(reg: Registration): { id: string; object: Record<string, unknown> } {
    if (!reg.custom || reg.remote) return { id: "", object: {} };
    // A preview knows only the inputs; every computed output stays unknown (absent), and so does the ID.
    if (this.current.dryRun) return { id: "", object: reg.inputs };
    const provider = reg.type.startsWith("pulumi:providers:") ? { id: `${reg.name}-provider-id`, outputs: {}, secretOutputs: [] } : this.fakes.create(reg.type, reg.name, reg.inputs);
    const object: Record<string, unknown> = { ...reg.inputs, ...provider.outputs };
    for (const key of [...provider.secretOutputs, ...reg.additionalSecretOutputs]) {
      if (key in object && !isSecret(object[key])) object[key] = secret(object[key]);
    }
    return { id: provider.id, object };
  }

  private monitorService(): grpc.UntypedServiceImplementation {
    const supportsFeature: Handler<resproto.SupportsFeatureRequest, resproto.SupportsFeatureResponse> = (call, cb) => {
      cb(null, new resproto.SupportsFeatureResponse().setHassupport(SUPPORTED_FEATURES.has(call.request.getId())));
    };
    const registerResource: Handler<resproto.RegisterResourceRequest, resproto.RegisterResourceResponse> = (call, cb) => {
      const req = call.request;
      const reg: Registration = {
        type: req.getType(),
        name: req.getName(),
        urn: this.urnOf(req.getType(), req.getName(), req.getParent()),
        parent: req.getParent(),
        custom: req.getCustom(),
        remote: req.getRemote(),
        provider: req.getProvider(),
        providers: Object.fromEntries(req.getProvidersMap().entries()),
        inputs: toJs(req.getObject()),
        dependencies: [...req.getDependenciesList()].sort(),
        propertyDependencies: Object.fromEntries([...req.getPropertydependenciesMap().entries()].map(([k, v]) => [k, [...v.getUrnsList()].sort()])),
        protect: req.hasProtect() ? req.getProtect() : undefined,
        retainOnDelete: req.hasRetainondelete() ? req.getRetainondelete() : undefined,
        deleteBeforeReplace: req.getDeletebeforereplace(),
        ignoreChanges: req.getIgnorechangesList(),
        replaceOnChanges: req.getReplaceonchangesList(),
        additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
        aliases: req.getAliasesList().map((a) => a.toObject()),
        deletedWith: req.getDeletedwith(),
        version: req.getVersion(),
        importId: req.getImportid(),
      };
      if (reg.type === ROOT_STACK_TYPE) this.current.rootUrn = reg.urn;
      this.current.registrations.push(reg);
      const { id, object } = this.answer(reg);
      cb(null, new resproto.RegisterResourceResponse().setUrn(reg.urn).setId(id).setObject(fromJs(object)));
    };
    const registerResourceOutputs: Handler<resproto.RegisterResourceOutputsRequest, emptyproto.Empty> = (call, cb) => {
      this.current.outputs.set(call.request.getUrn(), toJs(call.request.getOutputs()));
      cb(null, new emptyproto.Empty());
    };
    const invoke: Handler<resproto.ResourceInvokeRequest, provproto.InvokeResponse> = (call, cb) => {
      const req = call.request;
      const recorded: RecordedInvoke = { token: req.getTok(), args: toJs(req.getArgs()), provider: req.getProvider(), version: req.getVersion() };
      this.current.invokes.push(recorded);
      const result = this.fakes.invoke(recorded.token, recorded.args);
      if (result === undefined) {
        cb({ code: grpc.status.UNIMPLEMENTED, details: `recording engine: no fake answers the invoke ${recorded.token}; add one to testbed/cloudFakes.ts (fakeInvoke)` });
        return;
      }
      cb(null, new provproto.InvokeResponse().setReturn(fromJs(result)));
    };
    const registerPackage: Handler<resproto.RegisterPackageRequest, resproto.RegisterPackageResponse> = (call, cb) => {
      cb(null, new resproto.RegisterPackageResponse().setRef(`${call.request.getName()}@${call.request.getVersion()}`));
    };
    const signalAndWaitForShutdown: Handler<emptyproto.Empty, emptyproto.Empty> = (_call, cb) => cb(null, new emptyproto.Empty());
    return { supportsFeature, registerResource, registerResourceOutputs, invoke, registerPackage, signalAndWaitForShutdown };
  }

  private engineService(): grpc.UntypedServiceImplementation {
    const log: Handler<engproto.LogRequest, emptyproto.Empty> = (call, cb) => {
      const req = call.request;
      this.current.logs.push({ severity: SEVERITIES[req.getSeverity()] ?? "info", message: req.getMessage(), urn: req.getUrn() });
      cb(null, new emptyproto.Empty());
    };
    const getRootResource: Handler<engproto.GetRootResourceRequest, engproto.GetRootResourceResponse> = (_call, cb) => {
      cb(null, new engproto.GetRootResourceResponse().setUrn(this.current.rootUrn));
    };
    const setRootResource: Handler<engproto.SetRootResourceRequest, engproto.SetRootResourceResponse> = (call, cb) => {
      this.current.rootUrn = call.request.getUrn();
      cb(null, new engproto.SetRootResourceResponse());
    };
    const requirePulumiVersion: Handler<engproto.RequirePulumiVersionRequest, engproto.RequirePulumiVersionResponse> = (_call, cb) => {
      cb(null, new engproto.RequirePulumiVersionResponse());
    };
    return { log, getRootResource, setRootResource, requirePulumiVersion };
  }
}
