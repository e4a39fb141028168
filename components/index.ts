/**
 * The smart-mirror Pulumi package: `import { SmartMirror } from "smart-mirror"`.
 * The component, its argument types, the pure validation and the renderers (for callers that
 * want to check or preview what goes on the host).
 */
export { SmartMirror, SMART_MIRROR_TYPE, DEFAULT_BUNDLE_PATH } from "./smartMirror";
export type { SmartMirrorConstructor } from "./smartMirror";
export { normalizeSmartMirrorArgs } from "./normalize";
export { propertiesValues } from "./propertiesFromArgs";
export { HostOs, DataVolumeType, MirrorAuth, MirrorPush, LogLevel } from "./args";
export type {
  SmartMirrorArgs,
  SmartMirrorInputs,
  NormalizedSmartMirrorArgs,
  Host,
  AwsHost,
  ExistingHost,
  HostKindArgs,
  Tls,
  AcmeTls,
  ProvidedTls,
  PrivateCaTls,
  TlsKindArgs,
  Bastion,
  SshAccess,
  DataVolume,
  Dns,
  Primary,
  MirrorSettings,
  RegisterAccessKey,
  Deploy,
  HostArgs,
  AwsHostArgs,
  ExistingHostArgs,
  BastionArgs,
  SshAccessArgs,
  DataVolumeArgs,
  TlsArgs,
  AcmeTlsArgs,
  ProvidedTlsArgs,
  PrivateCaTlsArgs,
  DnsArgs,
  PrimaryArgs,
  MirrorSettingsArgs,
  RegisterAccessKeyArgs,
  DeployArgs,
} from "./args";
export { validateSmartMirrorArgs, assertValidArgs, SmartMirrorArgsError } from "./validate";
export { DEFAULT_INSTANCE_TYPE, MINIMUM_VCPU, MINIMUM_MEMORY_GIB, instanceShape } from "./host/instanceTypes";
export { renderProperties } from "./render/properties";
export { renderCloudInit } from "./render/cloudInit";
export { LETS_ENCRYPT_PRODUCTION } from "./tls/certificate";
