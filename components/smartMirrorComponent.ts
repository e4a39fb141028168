/**
 * SmartMirror: one read-only Git mirror of a primary, in one region. The only module that
 * knows all the parts: host (EC2 or existing), TLS, DNS, the rendered files (properties,
 * nginx site, systemd unit) in a deploy plan, the deploy itself, and optionally the
 * "approve the mirror" registration of its SSH key on the primary.
 *
 * Thin on purpose (pulumi-awsx style): arguments are checked by validateSmartMirrorArgs (pure,
 * every problem at once, each with its fix) before any resource exists; every text put on the
 * host comes from a pure renderer the tests run for real; this class only wires them together.
 * Children are named `${name}-...` and parented here, so providers passed to the component
 * (opts.providers / opts.provider) flow to them, and aliases can move them later.
 *
 * The constructor's declared argument type is SmartMirrorInputs, the any-language shape: Pulumi's
 * component analyzer reads this class to derive the package schema (provider/). TypeScript
 * callers import SmartMirror from ./smartMirror, whose type also takes the `kind:` shape; both
 * reach this constructor, which normalizes either one.
 */
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import * as tls from "@pulumi/tls";
import type { SmartMirrorInputs } from "./args";
import { accessKeyTargets, registerAccessKey } from "./approve/registerAccessKey";
import { deployToHost } from "./deploy/remoteDeploy";
import { stagedPaths } from "./deploy/commands";
import { DAEMON_USER, DEFAULT_HOME, mirrorPaths, STAGING_DIR } from "./deploy/layout";
import { buildMirrorPlan, serializePlan } from "./deploy/plan";
import { createDnsRecords, createHealthCheck } from "./dns/records";
import { createAlarms } from "./alarms/cloudwatch";
import { DEFAULT_INSTANCE_TYPE } from "./host/instanceTypes";
import { createAwsHost } from "./host/awsHost";
import { existingHost, HostResult } from "./host/hostResult";
import { renderNginxSite } from "./render/nginx";
import { renderProperties } from "./render/properties";
import { daemonExtraProperties, propertiesValues } from "./propertiesFromArgs";
import { drainTimeoutSecOf, renderDaemonUnit } from "./render/systemd";
import { createTls } from "./tls/certificate";
import { normalizedOrThrow } from "./normalize";
import { packageRoot } from "./packageRoot";
import { assertValidArgs, validationWarnings } from "./validate";
import { createFarm, farmIdOf } from "./farm/farm";
import { withFarm } from "./farm/plan";

export const SMART_MIRROR_TYPE = "smart-mirror:index:SmartMirror";

/** dist/smart-mirror.js of this package (npm run build). */
export const DEFAULT_BUNDLE_PATH = path.join(packageRoot(__dirname), "dist", "smart-mirror.js");

export class SmartMirror extends pulumi.ComponentResource {
  /** https://<domainName> */
  public readonly mirrorUrl: pulumi.Output<string>;
  /** https://<domainName>/scm/{PROJECT}/{repo}.git (Bitbucket's layout). */
  public readonly cloneUrlTemplate: pulumi.Output<string>;
  /** https://<domainName>/status */
  public readonly statusUrl: pulumi.Output<string>;
  /** The mirror's SSH public key: grant it read access on the primary ("approve the mirror"). */
  public readonly syncPublicKey: pulumi.Output<string>;
  /** Where clients connect (the DNS records' target). */
  public readonly hostAddress: pulumi.Output<string>;
  /** The rendered bitbucket.properties (it holds no secrets: those live in their own files). */
  public readonly propertiesText: pulumi.Output<string>;
  /** https://<dns.globalName> when set. */
  public readonly globalUrl: pulumi.Output<string | undefined>;
  /** tls.kind "privateCa": the CA certificate git clients must trust. */
  public readonly caCertificatePem: pulumi.Output<string | undefined>;
  /** The agent's JSON summary of the last apply (a farm: what was rolled out, see README "Mirror farm"). */
  public readonly deploySummary: pulumi.Output<string>;
  /** How many machines serve the mirror: 1, or a farm's nodes. */
  public readonly nodeCount: pulumi.Output<number>;

  constructor(name: string, args: SmartMirrorInputs, opts?: pulumi.ComponentResourceOptions) {
    // Every problem at once, before anything is registered.
    assertValidArgs(name, args);
    super(SMART_MIRROR_TYPE, name, {}, opts);
    const n = normalizedOrThrow(args);

    for (const w of validationWarnings(args)) pulumi.log.warn(w, this);

    const home = n.deploy?.home ?? DEFAULT_HOME;
    const paths = mirrorPaths(home);
    const globalName = n.dns?.globalName;
    const dnsNames = [n.domainName, ...(globalName ? [globalName] : [])];

    // ---- host (a farm's nodes are made below, from the plan)
    const farm = n.farm && n.host.kind === "aws" ? { args: n.farm, host: n.host, id: farmIdOf(name) } : undefined;
    const host: HostResult | undefined = farm
      ? undefined
      : n.host.kind === "aws"
        ? createAwsHost({ name, args: n.host, domainName: n.domainName, home, parent: this })
        : existingHost(n.host);

    // ---- the mirror's own SSH key (for the primary); only its public half leaves the state
    const syncKey = new tls.PrivateKey(`${name}-sync-key`, { algorithm: "ED25519" }, { parent: this, additionalSecretOutputs: ["privateKeyOpenssh", "privateKeyPem"] });
    const syncPublicKey = syncKey.publicKeyOpenssh.apply((k) => k.trim());

    // ---- TLS and DNS
    const awsRegion = n.region ?? new pulumi.Config("aws").get("region");
    const tlsMaterial = createTls(n.tls, { name, dnsNames, zoneId: n.dns?.zoneId, region: awsRegion, parent: this });
    const records = n.dns && host ? createDnsRecords({ name, dns: n.dns, domainName: n.domainName, region: n.region, target: host.publicAddress, parent: this }) : undefined;

    // ---- CloudWatch alarms (optional): on the readiness health check (made for them when the
    // global name did not make one) and the instance.
    if (n.alarms) {
      createAlarms({
        name,
        domainName: n.domainName,
        snsTopicArn: n.alarms.snsTopicArn,
        healthCheckSnsTopicArn: n.alarms.healthCheckSnsTopicArn,
        minutes: n.alarms.minutes,
        healthCheck: records?.healthCheck ?? createHealthCheck(name, n.domainName, this),
        instance: host?.instance,
        instanceType: n.host.kind === "aws" ? (n.host.instanceType ?? DEFAULT_INSTANCE_TYPE) : undefined,
        region: awsRegion,
        parent: this,
      });
    }

    // ---- rendered files
    const propertiesText = pulumi.output(n.displayName).apply((displayName) => renderProperties(propertiesValues(n, displayName, home)));
    const nginxSite = renderNginxSite({ serverName: n.domainName, serverAliases: globalName ? [globalName] : [], certPath: paths.tlsCert, keyPath: paths.tlsKey, upstreamSocket: paths.socket });
    // TimeoutStopSec from the drain bound, so a restart never kills a draining daemon.
    const daemonUnit = renderDaemonUnit({ user: DAEMON_USER, home, bundlePath: paths.bundle, drainTimeoutSec: drainTimeoutSecOf(daemonExtraProperties(n, home)) });
    const m = n.mirror ?? {};
    const optional = pulumi.all([n.primary.catalogToken, m.webhookSecret, m.cloneTokens, n.primary.caCertificatesPem, m.events?.secret]);
    // A farm's internal credential (peers send it as a bearer token): generated, secret, only in the plan.
    const farmToken = farm ? new random.RandomPassword(`${name}-farm-token`, { length: 48, special: false }, { parent: this }).result : undefined;
    const farmPart = pulumi.all([farmToken, tlsMaterial.caCertificatePem]);
    const planJson = pulumi.secret(
      pulumi
        .all([propertiesText, syncKey.privateKeyOpenssh, syncPublicKey, tlsMaterial.certificateChainPem, tlsMaterial.privateKeyPem, optional, farmPart])
        .apply(([properties, privateKey, publicKey, chain, tlsKey, [catalogToken, webhookSecret, cloneTokens, primaryCaPem, eventsSecret], [token, caPem]]) => {
          const plan = buildMirrorPlan({
              paths,
              propertiesText: properties,
              mirrorPrivateKey: privateKey,
              mirrorPublicKey: publicKey,
              // With a fixed repository list there is no REST catalog and no token to lay down.
              catalogToken: n.primary.repos ? undefined : catalogToken,
              webhookSecret,
              eventsSecret,
              cloneTokens,
              primaryCaPem,
              tlsCertificateChainPem: chain,
              tlsPrivateKeyPem: tlsKey,
              nginxSite,
              daemonUnit,
              stagedBundle: stagedPaths(STAGING_DIR).bundlePath,
            });
          return serializePlan(farm ? withFarm(plan, { paths, farmToken: token as string, caCertificatePem: caPem, farmId: farm.id, region: awsRegion }) : plan);
        }),
    );

    // ---- approve the mirror (before the first deploy, so the first sync can already fetch)
    const accessKey = n.registerAccessKey
      ? registerAccessKey({
          name,
          primaryUrl: n.primary.url.trim().replace(/\/+$/, ""),
          token: n.registerAccessKey.token,
          publicKey: syncPublicKey,
          targets: accessKeyTargets(n.registerAccessKey, { projects: m.projects, repos: n.primary.repos }),
          primaryCaPem: n.primary.caCertificatesPem,
          parent: this,
        })
      : undefined;

    // ---- deploy: a farm pulls its plan (S3 + SSM, components/farm); a single host gets it over SSH
    const bundlePath = n.deploy?.bundlePath ?? DEFAULT_BUNDLE_PATH;
    const farmed = farm
      ? createFarm({
          name,
          domainName: n.domainName,
          region: awsRegion,
          host: farm.host,
          farm: farm.args,
          dns: n.dns,
          home,
          farmId: farm.id,
          planJson,
          bundlePath,
          revision: n.deploy?.revision,
          dependsOn: accessKey ? [accessKey] : [],
          parent: this,
        })
      : undefined;
    const deployment = host
      ? deployToHost({
          name,
          host,
          home,
          bundlePath,
          planJson,
          sshTimeoutSeconds: n.deploy?.sshTimeoutSeconds ?? 600,
          revision: n.deploy?.revision,
          dependsOn: accessKey ? [accessKey] : [],
          parent: this,
        })
      : undefined;

    this.mirrorUrl = pulumi.output(`https://${n.domainName}`);
    this.cloneUrlTemplate = pulumi.output(`https://${n.domainName}/scm/{PROJECT}/{repo}.git`);
    this.statusUrl = pulumi.output(`https://${n.domainName}/status`);
    this.syncPublicKey = syncPublicKey;
    this.hostAddress = host ? host.publicAddress : (farmed as NonNullable<typeof farmed>).address;
    this.propertiesText = propertiesText;
    this.globalUrl = pulumi.output(globalName ? `https://${globalName}` : undefined);
    this.caCertificatePem = pulumi.output(tlsMaterial.caCertificatePem);
    this.deploySummary = deployment ? deployment.apply.stdout : (farmed as NonNullable<typeof farmed>).summary;
    this.nodeCount = pulumi.output(farmed ? farmed.nodeCount : 1);

    this.registerOutputs({
      mirrorUrl: this.mirrorUrl,
      cloneUrlTemplate: this.cloneUrlTemplate,
      statusUrl: this.statusUrl,
      syncPublicKey: this.syncPublicKey,
      hostAddress: this.hostAddress,
      propertiesText: this.propertiesText,
      globalUrl: this.globalUrl,
      caCertificatePem: this.caCertificatePem,
      deploySummary: this.deploySummary,
      nodeCount: this.nodeCount,
    });
  }
}
