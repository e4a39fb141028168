import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as path from "node:path";
import { onCleanup, tempDir } from "../../testbed/resources";
import { formatAddress, listen, parseListenAddress } from "./listen";
import { request } from "../../testbed/httpClient";

describe("parseListenAddress", () => {
  test.each<[string, unknown]>([
    ["unix:/run/smart-mirror/http.sock", { kind: "unix", path: "/run/smart-mirror/http.sock" }],
    ["127.0.0.1:7990", { kind: "tcp", host: "127.0.0.1", port: 7990 }],
    ["localhost:0", { kind: "tcp", host: "localhost", port: 0 }],
    ["[::1]:8080", { kind: "tcp", host: "::1", port: 8080 }],
    [":9100", { kind: "tcp", host: "0.0.0.0", port: 9100 }],
  ])("%s", (spec, want) => {
    expect(parseListenAddress(spec)).toEqual(want);
  });

  test.each(["unix:", "7990", "host:99999", "::1:80", "http://x:1", `unix:/${"x".repeat(120)}`])("rejects %p with a hint", (spec) => {
    expect(() => parseListenAddress(spec)).toThrow(/listen address/);
  });

  test("formatAddress round-trips", () => {
    for (const s of ["unix:/a/b.sock", "127.0.0.1:1", "[::1]:2"]) expect(formatAddress(parseListenAddress(s))).toBe(s);
  });
});

describe("listen on a unix socket", () => {
  const hello = () => http.createServer((_req, res) => res.end("hi"));
  const close = (s: http.Server) => new Promise<void>((resolve) => s.close(() => resolve()));

  test("replaces a stale socket file left by a dead process, and sets mode 0660", async () => {
    const sock = path.join(tempDir("listen"), "http.sock");
    // A socket file with nobody behind it: bind with a raw handle, then drop the fd without unlinking.
    const dead = net.createServer().listen(sock);
    await new Promise((r) => dead.once("listening", r));
    fs.renameSync(sock, sock + ".keep");
    await new Promise<void>((r) => dead.close(() => r()));
    fs.renameSync(sock + ".keep", sock);
    expect(fs.lstatSync(sock).isSocket()).toBe(true);

    const server = hello();
    const at = await listen(server, `unix:${sock}`);
    onCleanup(() => close(server));
    expect((await request(at, { path: "/" })).body).toBe("hi");
    expect(fs.statSync(sock).mode & 0o777).toBe(0o660);
  });

  test("never displaces a live server", async () => {
    const sock = path.join(tempDir("listen"), "http.sock");
    const first = hello();
    await listen(first, `unix:${sock}`);
    onCleanup(() => close(first));
    await expect(listen(hello(), `unix:${sock}`)).rejects.toThrow(/another process is listening/);
    expect((await request({ kind: "unix", path: sock }, { path: "/" })).body).toBe("hi");
  });

  test("never deletes a file that is not a socket", async () => {
    const file = path.join(tempDir("listen"), "important.txt");
    fs.writeFileSync(file, "keep me");
    await expect(listen(hello(), `unix:${file}`)).rejects.toThrow(/not a socket/);
    expect(fs.readFileSync(file, "utf8")).toBe("keep me");
  });

  test("custom socket mode; socket file removed on close", async () => {
    const sock = path.join(tempDir("listen"), "http.sock");
    const server = hello();
    await listen(server, `unix:${sock}`, { socketMode: 0o600 });
    expect(fs.statSync(sock).mode & 0o777).toBe(0o600);
    await close(server);
    expect(fs.existsSync(sock)).toBe(false);
  });

  test("TCP port conflicts surface as errors", async () => {
    const a = hello();
    const at = await listen(a, "127.0.0.1:0");
    onCleanup(() => close(a));
    await expect(listen(hello(), formatAddress(at))).rejects.toThrow(/EADDRINUSE/);
  });
});
