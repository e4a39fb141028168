import * as fs from "node:fs";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import { createCa } from "../../testbed/tls";
import { PeerHttp } from "./peerHttp";

/**
 * The peer's certificate is checked for the farm's name, not the address connected to, and
 * against the farm's CA; the token goes in the Authorization header. A real TLS server with a
 * bench CA certificate for mirror.test only (no IP SAN): connecting to 127.0.0.1 works only
 * because the name checked is the farm's.
 */
describe("PeerHttp", () => {
  let server: https.Server;
  let port: number;
  let caPem: string;
  const seen: Array<{ host?: string; auth?: string; servername?: string }> = [];

  beforeAll(async () => {
    const ca = await createCa();
    caPem = ca.certPem;
    const cert = await ca.issueServerCert(["mirror.test"]);
    server = https.createServer({ cert: fs.readFileSync(cert.chainPath), key: fs.readFileSync(cert.keyPath) }, (req, res) => {
      seen.push({ host: req.headers.host, auth: req.headers.authorization, servername: (req.socket as unknown as { servername?: string }).servername });
      res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ node: "n1" }));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const peer = () => ({ url: `https://127.0.0.1:${port}`, host: "127.0.0.1", port });

  test("verified for the farm's name at the listed address, with SNI, Host and the token", async () => {
    const h = new PeerHttp({ serverName: "mirror.test", caPem }, "tok");
    const r = await h.request(peer(), "GET", "/farm/announce", { timeoutMs: 10_000 });
    expect(r).toEqual({ status: 200, body: JSON.stringify({ node: "n1" }) });
    expect(seen.at(-1)).toEqual({ host: "mirror.test", auth: "Bearer tok", servername: "mirror.test" });
    await h.request(peer(), "GET", "/status/ready", { timeoutMs: 10_000, auth: false });
    expect(seen.at(-1)?.auth).toBeUndefined();
    h.close();
  });

  test("another name, or a CA that did not sign it, is refused", async () => {
    const wrongName = new PeerHttp({ serverName: "other.test", caPem }, "tok");
    await expect(wrongName.request(peer(), "GET", "/", { timeoutMs: 10_000 })).rejects.toThrow(/Hostname\/IP does not match|altnames/);
    wrongName.close();
    const systemCas = new PeerHttp({ serverName: "mirror.test" }, "tok");
    await expect(systemCas.request(peer(), "GET", "/", { timeoutMs: 10_000 })).rejects.toThrow(/certificate/i);
    systemCas.close();
  });
});
