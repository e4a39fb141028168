/**
 * The per-region program: `pulumi up -s eu-west-1`. Reads the stack's structured config
 * (docs/stack-config.md), builds one SmartMirror and exports the stack outputs other tools
 * rely on (mirrorUrl, cloneUrlTemplate, statusUrl, syncPublicKey, hostAddress), plus the ones
 * the README's "Stack outputs" table lists (infra/index.test.ts keeps the two equal).
 */
import * as pulumi from "@pulumi/pulumi";
import { SmartMirror } from "../components";
import { argsFromConfig, StackConfig, StackSecrets } from "./config";

const config = new pulumi.Config();
const stack: StackConfig = {
  displayName: config.require("displayName"),
  domainName: config.require("domainName"),
  region: config.get("region"),
  primary: config.requireObject<StackConfig["primary"]>("primary"),
  host: config.requireObject<StackConfig["host"]>("host"),
  tls: config.requireObject<StackConfig["tls"]>("tls"),
  dns: config.getObject<StackConfig["dns"]>("dns"),
  mirror: config.getObject<StackConfig["mirror"]>("mirror"),
  registerAccessKey: config.getObject<StackConfig["registerAccessKey"]>("registerAccessKey"),
  deploy: config.getObject<StackConfig["deploy"]>("deploy"),
  alarms: config.getObject<StackConfig["alarms"]>("alarms"),
  farm: config.getObject<StackConfig["farm"]>("farm"),
};
const secrets: StackSecrets = {
  catalogToken: config.getSecret("catalogToken"),
  webhookSecret: config.getSecret("webhookSecret"),
  eventsSecret: config.getSecret("eventsSecret"),
  cloneTokens: config.getSecret("cloneTokens"),
  accessKeyToken: config.getSecret("accessKeyToken"),
  hostPrivateKey: config.getSecret("hostPrivateKey"),
  bastionPrivateKey: config.getSecret("bastionPrivateKey"),
  tlsPrivateKeyPem: config.getSecret("tlsPrivateKeyPem"),
};

/**
 * One mirror per stack, under a fixed name: `pulumi stack rename` changes getStack(), and a
 * component named after the stack would then get new URNs for itself and every child, that
 * is, a replacement of the whole mirror. Stacks made while it was named after the stack keep
 * their resources through the alias; the children follow by Pulumi's alias inheritance
 * (their names start with the component's: "<name>-sg" was "<stack>-sg").
 */
// Not exported: every export of this module is a stack output.
const MIRROR_RESOURCE_NAME = "mirror";
const mirror = new SmartMirror(MIRROR_RESOURCE_NAME, argsFromConfig(stack, secrets, { region: new pulumi.Config("aws").get("region") }), {
  aliases: [{ name: pulumi.getStack() }],
});

export const mirrorUrl = mirror.mirrorUrl;
export const cloneUrlTemplate = mirror.cloneUrlTemplate;
export const statusUrl = mirror.statusUrl;
export const syncPublicKey = mirror.syncPublicKey;
export const hostAddress = mirror.hostAddress;
export const globalUrl = mirror.globalUrl;
export const caCertificatePem = mirror.caCertificatePem;
export const propertiesText = mirror.propertiesText;
export const nodeCount = mirror.nodeCount;
