/**
 * The per-region program: `pulumi up -s eu-west-1`. Reads the stack's structured config
 * (docs/stack-config.md), builds one SmartMirror and exports the stack outputs other tools
 * rely on (mirrorUrl, cloneUrlTemplate, statusUrl, syncPublicKey, hostAddress).
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
};
const secrets: StackSecrets = {
  catalogToken: config.getSecret("catalogToken"),
  webhookSecret: config.getSecret("webhookSecret"),
  cloneTokens: config.getSecret("cloneTokens"),
  accessKeyToken: config.getSecret("accessKeyToken"),
  hostPrivateKey: config.getSecret("hostPrivateKey"),
  bastionPrivateKey: config.getSecret("bastionPrivateKey"),
  tlsPrivateKeyPem: config.getSecret("tlsPrivateKeyPem"),
};

// One mirror per stack, named after the stack (eu-west-1, ap-southeast-2, ...).
const mirror = new SmartMirror(pulumi.getStack(), argsFromConfig(stack, secrets, { region: new pulumi.Config("aws").get("region") }));

export const mirrorUrl = mirror.mirrorUrl;
export const cloneUrlTemplate = mirror.cloneUrlTemplate;
export const statusUrl = mirror.statusUrl;
export const syncPublicKey = mirror.syncPublicKey;
export const hostAddress = mirror.hostAddress;
export const globalUrl = mirror.globalUrl;
export const caCertificatePem = mirror.caCertificatePem;
