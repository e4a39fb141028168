/**
 * A first clone from a farm peer: the peer's /scm/ URL under the farm's TLS name, and git's
 * environment to reach it. The farm token travels as configuration in the environment
 * (GIT_CONFIG_COUNT, http.extraHeader), never on git's command line where `ps` shows it; the
 * peer's address is pinned for the farm's name (http.curloptResolve, like curl --resolve), so
 * git verifies the peer's certificate for the farm's name while connecting to the listed
 * address. Pure.
 */
import type { SeedSource } from "../daemon/engine";
import type { RepoId } from "../types";
import type { Peer } from "./peersFile";

export interface SeedTls {
  serverName: string;
  /** The farm's CA bundle file (mirror.farm.caCertificatesFile); undefined = system CAs. */
  caFile?: string;
  token: string;
}

/** GIT_CONFIG_* and other per-process git configuration the base environment may carry: ours replace them. */
const INHERITED = /^(GIT_CONFIG_(COUNT|KEY_\d+|VALUE_\d+|PARAMETERS)|GIT_SSL_CAINFO|GIT_SSL_NO_VERIFY|GIT_HTTP_EXTRA_HEADER)$/;

export function seedSource(peer: Peer, id: RepoId, tls: SeedTls, base: NodeJS.ProcessEnv): SeedSource {
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(base).filter(([k]) => !INHERITED.test(k)));
  const address = peer.host.includes(":") ? `[${peer.host}]` : peer.host;
  const config: Array<[string, string]> = [
    ["http.extraHeader", `Authorization: Bearer ${tls.token}`],
    ["http.curloptResolve", `${tls.serverName}:${peer.port}:${address}`],
    // Never follow a redirect with the token elsewhere.
    ["http.followRedirects", "false"],
  ];
  if (tls.caFile) config.push(["http.sslCAInfo", tls.caFile]);
  env.GIT_CONFIG_COUNT = String(config.length);
  config.forEach(([k, v], i) => {
    env[`GIT_CONFIG_KEY_${i}`] = k;
    env[`GIT_CONFIG_VALUE_${i}`] = v;
  });
  // No prompt, no helper asked for a password: the token is all there is.
  env.GIT_TERMINAL_PROMPT = "0";
  env.GIT_ASKPASS = "/bin/false";
  const port = peer.port === 443 ? "" : `:${peer.port}`;
  return { url: `https://${tls.serverName}${port}/scm/${encodeURIComponent(id.project)}/${encodeURIComponent(id.slug)}.git`, env, peer: peer.url };
}
