/** Entry of latencyProxyProcess.ts: run one latency proxy (options as JSON in argv[2]) until killed. */
import { startLatencyProxy } from "./latencyProxy";

startLatencyProxy(JSON.parse(process.argv[2] ?? "{}")).then(
  (p) => process.stdout.write(`listening ${p.host} ${p.port}\n`),
  (e: unknown) => {
    process.stderr.write(`latency proxy: ${String(e)}\n`);
    process.exit(1);
  },
);
process.on("SIGTERM", () => process.exit(0));
